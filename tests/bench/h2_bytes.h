// The few HTTP/2 bytes apm-bench-client needs to hold an HTTP/2 connection open (the idle
// memory figure): the client preface with its SETTINGS, one GET, and a scanner that tells
// when the answer to that GET has ended. Not an HTTP/2 implementation: no flow control,
// no HPACK decoding; enough for one request on stream 1 against a well-behaved server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace bench {

// Preface, an empty SETTINGS, an ACK for the server's SETTINGS (which it sends first) and,
// when `with_request`, a GET / on stream 1 (END_STREAM) with :authority localhost.
std::string h2ClientBytes(bool with_request, bool tls);

// Reads the server's frames and reports when stream 1 has ended.
class H2ResponseScanner {
 public:
  enum class Result { kMore, kDone, kError };
  void reset();
  Result feed(const char* p, size_t n);
  // True when the response head began with the static-table index of ":status 200".
  bool ok() const { return ok_; }

 private:
  uint8_t head_[9] = {};
  size_t head_have_ = 0;
  uint64_t payload_left_ = 0;
  bool first_block_byte_pending_ = false;
  bool end_after_payload_ = false;
  bool ok_ = false;
};

}  // namespace bench
