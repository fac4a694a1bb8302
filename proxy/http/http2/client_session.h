// ClientSession: the HTTP/2 client codec for the h2c upstream (prior knowledge, RFC 9113
// §3.3). Request heads and body bytes in, frames out; frames in, response events out.
// Used by upstream::H2Connection, one per upstream connection. Owns its nghttp2 session;
// reads request bodies from RequestBody objects its caller owns. No libuv, no sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "proxy/common/status.h"
#include "proxy/http/http2/session_common.h"
#include "proxy/http/message.h"

namespace proxy::http2 {

// The bytes of one request body on their way into DATA frames, then its trailers. Keeps
// the bytes already framed while the total stays within `replay_limit`, so that a request
// the upstream refused (RST_STREAM REFUSED_STREAM, or above a GOAWAY's last-stream-id) can
// be sent again exactly. Owned by whoever owns the request (upstream::H2Stream).
class RequestBody {
 public:
  explicit RequestBody(size_t replay_limit) : replay_limit_(replay_limit) {}

  // Queues body bytes (copied). Ignored after end().
  void append(const char* data, size_t len);
  // No more bytes; `trailers` (copied) go out after the body when non-null and non-empty.
  void end(const HeaderFields* trailers);
  // Copies up to `max` unframed bytes to `out` and counts them as framed.
  size_t take(uint8_t* out, size_t max);
  // Starts again from the first byte for a retry. False when framed bytes were dropped
  // (the body outgrew the replay limit): the request can no longer be replayed.
  bool rewind();

  size_t unsent() const { return buf_.size() - framed_; }
  bool ended() const { return ended_; }
  bool replayable() const { return replayable_; }
  const HeaderFields& trailers() const { return trailers_; }

 private:
  std::string buf_;    // body bytes; [0, framed_) already went into DATA frames
  size_t framed_ = 0;  // offset of the first byte not yet framed
  size_t replay_limit_;
  bool replayable_ = true;
  bool ended_ = false;
  HeaderFields trailers_;
};

// Window sizes we announce. The stream window bounds how many response bytes one stream
// may have in flight before the downstream accepts them; the connection window bounds
// the sum over all streams (memory per connection, issue 10 item 5).
struct ClientOptions {
  uint32_t stream_window = 1024 * 1024;
  uint32_t connection_window = 8 * 1024 * 1024;
  uint32_t max_header_list_size = 1024 * 1024;
};

// One client session. Owned by its connection; single thread. Callbacks run only inside
// receive(), send() and submitRequest(); the session may be used again from them except
// for receive() and send() themselves.
class ClientSession {
 public:
  class Callbacks {
   public:
    virtual ~Callbacks() = default;
    // A response head: status and regular fields, http_major 2. Interim (1xx) heads too.
    // `end_stream`: the response ends with this head (no body, no trailers).
    virtual void onResponseHead(int32_t stream_id, http::MessageHead& head, bool end_stream) = 0;
    // Response body bytes; valid during the call. The caller must consume() them later.
    virtual void onResponseData(int32_t stream_id, const char* data, size_t len) = 0;
    // Trailer fields; the response ends with them.
    virtual void onResponseTrailers(int32_t stream_id, http::MessageHead& trailers) = 0;
    // The response is complete (END_STREAM received after a final head).
    virtual void onResponseEnd(int32_t stream_id) = 0;
    // The stream is gone. `error_code` is the RFC 9113 §7 code (0 after a clean end);
    // `reset_by_peer` tells an upstream RST_STREAM from a local reset or GOAWAY.
    virtual void onStreamClose(int32_t stream_id, uint32_t error_code, bool reset_by_peer) = 0;
    // The request's HEADERS could not be sent (GOAWAY arrived first, or the session is
    // closing): the upstream never saw the request. No onStreamClose follows.
    virtual void onRequestNotSent(int32_t stream_id) = 0;
    // The upstream sent GOAWAY: streams above `last_stream_id` are closed with
    // REFUSED_STREAM right after this call (they were never processed).
    virtual void onGoaway(int32_t last_stream_id, uint32_t error_code) = 0;
  };

  // Creates the session and queues the client preface and SETTINGS (ENABLE_PUSH 0, our
  // windows). Fails only when nghttp2 cannot allocate.
  static Result<std::unique_ptr<ClientSession>> create(Callbacks& callbacks,
                                                       const ClientOptions& options);
  ~ClientSession();
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // Starts a request. `headers` begin with :method :scheme :authority :path. With
  // `body` null the HEADERS frame carries END_STREAM; otherwise DATA frames are read from
  // `body`, which must outlive the stream (or until resetStream()). Returns the stream
  // id (> 0) or a negative nghttp2 error code.
  int32_t submitRequest(const HeaderFields& headers, RequestBody* body);
  // New bytes (or the end) were added to a stream's RequestBody: frame them.
  void resumeBody(int32_t stream_id);
  // Sends RST_STREAM; the stream's body is not read again and no callback names it again.
  void resetStream(int32_t stream_id, uint32_t error_code);
  // The caller is done with the stream (its RequestBody may go): the body is not read
  // again and no callback names it again. RST_STREAM(error_code) goes out only when the
  // request or the response is unfinished; otherwise the stream closes on its own.
  void abandon(int32_t stream_id, uint32_t error_code);
  // The application accepted `n` response bytes of a stream: credit for WINDOW_UPDATE.
  // With `stream_id` closed, only the connection window is credited.
  void consume(int32_t stream_id, size_t n);
  // Sends GOAWAY(error_code) and stops taking new streams.
  void terminate(uint32_t error_code);

  // Feeds bytes from the upstream. An error means the connection must be closed.
  Status receive(const char* data, size_t len);
  // Appends frames to send to `out` until it holds at least `max` bytes or nothing is
  // left. An error means the connection must be closed.
  Status send(std::string& out, size_t max);

  // True while the session has anything left to read or write; false once a GOAWAY
  // (either way) has been exchanged and every stream has closed.
  bool alive() const;
  // True once either side sent GOAWAY: no new request may start.
  bool goingAway() const;
  // The upstream's SETTINGS_MAX_CONCURRENT_STREAMS (100 until its SETTINGS arrive).
  uint32_t maxConcurrentStreams() const;
  // The upstream's first SETTINGS frame has arrived (its limits are known).
  bool remoteSettingsReceived() const { return settings_received_; }
  // Streams started and not yet closed (submitted ones waiting for HEADERS included).
  size_t openStreams() const { return streams_.size(); }
  const SessionCounters& counters() const { return counters_; }

 private:
  struct StreamState {
    http::MessageHead head;  // the head or trailers being received
    RequestBody* body = nullptr;
    bool final_head_seen = false;
    bool reset_by_peer = false;
    bool request_ended = false;   // END_STREAM (or the trailers) framed
    bool response_ended = false;  // END_STREAM received
    bool abandoned = false;       // the owner is gone: report nothing more
  };

  ClientSession(Callbacks& callbacks) : callbacks_(callbacks) {}
  // The stream's state while its owner still listens, else null.
  StreamState* stream(int32_t stream_id);

  static ssize_t nghOnRead(nghttp2_session* s, int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* flags, nghttp2_data_source* source, void* user);
  static int nghOnBeginHeaders(nghttp2_session* s, const nghttp2_frame* frame, void* user);
  static int nghOnHeader(nghttp2_session* s, const nghttp2_frame* frame, const uint8_t* name,
                         size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                         void* user);
  static int nghOnFrameRecv(nghttp2_session* s, const nghttp2_frame* frame, void* user);
  static int nghOnDataChunk(nghttp2_session* s, uint8_t flags, int32_t stream_id,
                            const uint8_t* data, size_t len, void* user);
  static int nghOnStreamClose(nghttp2_session* s, int32_t stream_id, uint32_t error_code,
                              void* user);
  static int nghOnFrameSend(nghttp2_session* s, const nghttp2_frame* frame, void* user);
  static int nghOnFrameNotSend(nghttp2_session* s, const nghttp2_frame* frame, int error,
                               void* user);
  ssize_t readBody(int32_t stream_id, uint8_t* buf, size_t length, uint32_t* flags);
  void onFrameRecv(const nghttp2_frame& frame);

  Callbacks& callbacks_;
  SessionPtr session_;
  std::unordered_map<int32_t, StreamState> streams_;
  SessionCounters counters_;
  bool settings_received_ = false;
};

}  // namespace proxy::http2
