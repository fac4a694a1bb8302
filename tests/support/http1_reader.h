// The one HTTP/1.1 response reader of the tests (RFC 9112 §6.3 framing): status line and
// headers, Content-Length, chunked and close-delimited bodies, 1xx interim responses,
// HEAD/204/304 without a body. Incremental and transport-free: bytes in, a Response out.
// The TCP client, the TLS client and apm-bench-client all read through it. No Catch2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxy::testsupport {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Name lookup in a header list is case-insensitive.
bool equalsIgnoreCase(std::string_view a, std::string_view b);
std::optional<std::string> findHeader(const Headers& headers, std::string_view name);
size_t countHeader(const Headers& headers, std::string_view name);

// One HTTP/1.1 response as read off the wire.
struct Response {
  int status = 0;  // 0: no complete status line and head arrived
  std::string reason;
  Headers headers;
  std::string body;               // de-chunked (empty when the reader discards bodies)
  bool chunked = false;           // framed with Transfer-Encoding: chunked
  bool complete = false;          // head and body fully framed (or a close-delimited body ended)
  bool timed_out = false;         // the deadline passed first
  bool closed = false;            // the peer closed (or reset) the connection while reading
  std::vector<Response> interim;  // 1xx responses that came before this one
  std::optional<std::string> header(std::string_view name) const {
    return findHeader(headers, name);
  }
};

// Reads one response from the bytes fed to it. Owned by its caller; reset() makes it read
// the next response on the same connection and keeps its buffers (no allocation per
// response body byte, so a load generator can use it in its hot loop).
class Http1Reader {
 public:
  struct Options {
    bool stop_at_interim = false;  // a 1xx response is the result (else kept in `interim`)
    bool head_request = false;     // the response has no body (RFC 9112 §6.3 rule 1)
    bool discard_body = false;     // count body bytes without keeping them
  };

  explicit Http1Reader(Options options);
  Http1Reader() : Http1Reader(Options{}) {}

  // Consumes bytes of this response from the front of `data`; returns how many. Stops at
  // the end of the response: the rest (a pipelined next response) is not consumed.
  size_t feed(std::string_view data);
  // The peer closed the connection: a close-delimited body ends here.
  void finish();
  // The response is complete (head and body framed).
  bool done() const { return state_ == State::kDone; }
  // The bytes do not frame an HTTP/1.1 response; feeding more changes nothing.
  bool broken() const { return state_ == State::kBroken; }
  Response& response() { return response_; }
  // Body bytes of the final response (also counted when discarded).
  uint64_t bodyBytes() const { return body_bytes_; }
  // Bytes consumed for this response, interim responses included (its size on the wire).
  size_t wireBytes() const { return wire_bytes_; }
  // Forgets the response and reads the next one with the same options.
  void reset();

 private:
  enum class State {
    kHead,
    kLength,
    kChunkSize,
    kChunkData,
    kChunkCrlf,
    kTrailers,
    kUntilClose,
    kDone,
    kBroken
  };

  size_t feedHead(std::string_view data);
  size_t feedLine(std::string_view data);
  size_t feedBody(std::string_view data, State next);
  bool parseHead();
  bool onLine(std::string_view line);
  void startBody();

  Options options_;
  State state_ = State::kHead;
  std::string head_;  // the head so far (kHead), kept between responses for its capacity
  std::string line_;  // a chunk-size, chunk-end or trailer line so far
  uint64_t remaining_ = 0;
  uint64_t body_bytes_ = 0;
  size_t wire_bytes_ = 0;
  Response response_;
};

}  // namespace proxy::testsupport
