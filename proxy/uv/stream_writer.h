// StreamWriter: one write in flight per libuv stream. Bytes are first offered to the
// kernel with uv_try_write (no copy); only what the kernel does not take is copied
// into a WriteOp that owns it until its callback. libuv glue shared by the downstream
// and upstream connections; owned as a member by the connection that owns the stream.
#pragma once

#include <uv.h>

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

namespace proxy::uv {

// Converts a libuv error code to "ECONNRESET (connection reset by peer)".
std::string errorText(int uv_err);

class StreamWriter {
 public:
  // Told when an in-flight write finished (status 0) or failed (< 0, UV_ECANCELED
  // after uv_close). Called from libuv's write callback; the owner is still alive.
  class Owner {
   public:
    virtual ~Owner() = default;
    virtual void onWriteDone(int status) = 0;
  };

  // `stream` and `owner` must outlive every write (they do: libuv runs write
  // callbacks before the stream's close callback).
  StreamWriter(uv_stream_t* stream, Owner& owner) : stream_(stream), owner_(owner) {}
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  // Sends `data`, or keeps what the kernel cannot take now. Returns 0 or a libuv error
  // (the connection is then broken; the owner closes it). Never calls the owner back.
  int write(std::string_view data) { return write({data}); }
  // The same for several pieces sent in order with one writev (empty pieces are fine).
  int write(std::initializer_list<std::string_view> pieces);
  // Bytes accepted but not yet handed to the kernel.
  size_t queued() const { return pending_.size() + in_flight_; }
  bool writing() const { return in_flight_ > 0; }
  // True once any byte may have reached the kernel since clearTouched(): the kernel took
  // some at once, or a write was submitted. False after a failed write() proves that
  // nothing of it left this process.
  bool touched() const { return touched_; }
  void clearTouched() { touched_ = false; }
  // Frees the pending buffer's capacity (connection idle).
  void releaseMemory();

 private:
  struct WriteOp;
  static void uvOnWrite(uv_write_t* req, int status);
  int startWrite();

  uv_stream_t* stream_;
  Owner& owner_;
  std::string pending_;   // waiting for the in-flight write to finish
  size_t in_flight_ = 0;  // bytes owned by the current WriteOp
  bool touched_ = false;
};

}  // namespace proxy::uv
