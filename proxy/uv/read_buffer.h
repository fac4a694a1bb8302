// ReadBuffer: the one read buffer a worker loop shares among all its sockets. libuv
// calls alloc, read, then the read callback for one stream at a time, so a single
// buffer serves every connection as long as each read callback consumes (or copies)
// its bytes before returning. Owned by the Worker; loop thread only.
#pragma once

#include <uv.h>

#include <cstddef>
#include <memory>

namespace proxy::uv {

class ReadBuffer {
 public:
  static constexpr size_t kSize = 64 * 1024;
  ReadBuffer() : data_(new char[kSize]) {}
  uv_buf_t get() { return uv_buf_init(data_.get(), kSize); }

 private:
  std::unique_ptr<char[]> data_;
};

}  // namespace proxy::uv
