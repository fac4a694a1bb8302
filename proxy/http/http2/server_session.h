// ServerSession: the HTTP/2 server codec for clients (RFC 9113). Client bytes in, request
// events out (ServerSession::Callbacks); response events in, frames out (produce()).
// Used by the downstream connection once ALPN chose h2 (or an h2c preface arrived); owns
// its nghttp2 session and every stream's buffered response bytes. Enforces the hostile-input
// limits of issue 10 item 6. No libuv, no sockets, no exceptions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy/common/flat_map.h"
#include "proxy/http/http2/frame_buffer_pages.h"
#include "proxy/http/http2/frame_scan.h"
#include "proxy/http/http2/session_common.h"

namespace proxy::http2 {

// One request head that nghttp2 validated (pseudo-headers, connection-specific fields,
// RFC 9113 §8.2.2 and §8.3).
struct RequestHead {
  std::string method;     // :method
  std::string scheme;     // :scheme
  std::string authority;  // :authority (empty when the client sent only `host`)
  std::string path;       // :path
  // Regular fields in arrival order, names lower-case, no pseudo-headers. Several `cookie`
  // fields arrive joined into one with "; " (RFC 9113 §8.2.3).
  HeaderFields headers;
  bool end_stream = false;  // HEADERS carried END_STREAM: the request has no body
};

// Limits and windows of one session. Defaults match issue 10.
struct ServerSettings {
  uint32_t max_concurrent_streams = 100;
  // Announced as SETTINGS_MAX_HEADER_LIST_SIZE and enforced (RFC 7541 §4.1 sizes: name +
  // value + 32 per field), for request heads and trailers alike.
  uint32_t max_header_list_size = 64 * 1024;
  uint32_t max_header_fields = 100;           // pseudo-headers included
  uint32_t initial_window_size = 256 * 1024;  // per stream (SETTINGS_INITIAL_WINDOW_SIZE)
  uint32_t connection_window_size = 1024 * 1024;
  // Rapid reset (CVE-2023-44487): RST_STREAMs from the client drain a token bucket of this
  // size, refilled at this rate per second; an empty bucket ends in GOAWAY.
  uint64_t stream_reset_burst = 1000;
  uint64_t stream_reset_rate = 33;
  // CONTINUATION frames allowed after one HEADERS (CVE-2024-28182); more ends the session.
  size_t max_continuations = 8;
  size_t max_settings_entries = 32;  // per SETTINGS frame
  // SETTINGS and PING ACKs queued because the client does not read: more ends the session.
  size_t max_outbound_acks = 1000;
  // Zero-length DATA frames without END_STREAM tolerated per session, plus one for every
  // useful frame (a request head or a non-empty DATA frame); more ends the session.
  uint32_t max_empty_data_frames = 1000;
  // Tests count allocations through this (nghttp2_session_server_new3); null =
  // BlockCache (malloc with per-thread lists of freed small blocks).
  nghttp2_mem* allocator = nullptr;
};

// RST_STREAM code when a request head or trailers break max_header_fields or
// max_header_list_size: the client sent more than we accept (HTTP's 431, for HTTP/2).
inline constexpr uint32_t kHeaderLimitResetCode = NGHTTP2_ENHANCE_YOUR_CALM;

// One HTTP/2 server session. Owned by its downstream connection, freed with it; loop thread
// only. Callbacks run only inside receive(), produce() and closeAllStreams(), never inside
// the submit/send/end/reset/consume calls nor the destructor. Streams live from their
// first HEADERS to onStreamClose and are freed then. Idle, nghttp2 holds about 25 KiB (a
// 16 KiB frame buffer and a 4 KiB stream map, whose pages releaseIdlePages() gives back,
// 2 KiB of HPACK tables, a 2.9 KiB session) and this object about 380 bytes.
class ServerSession {
 public:
  // Response bytes of one stream at or below this many are "drained" (onResponseDrained).
  static constexpr size_t kLowWatermark = 16 * 1024;

  // Implemented by the connection. A callback may call any method of the session but
  // receive() and produce(), and must not destroy it.
  class Callbacks {
   public:
    virtual ~Callbacks() = default;
    // A validated request head. `head` may be moved from. Delivered at the end of the
    // receive() call that completed it, and only if the client did not reset the stream in
    // the same bytes (a rapid-reset batch never reaches the proxy).
    virtual void onRequestHead(int32_t stream_id, RequestHead& head) = 0;
    // DATA payload. These bytes stay charged to the client's flow-control windows until
    // consume(stream_id, n): backpressure crosses the proxy that way.
    virtual void onRequestData(int32_t stream_id, const char* data, size_t len) = 0;
    // Request trailers (may be moved from); onRequestEnd follows.
    virtual void onRequestTrailers(int32_t stream_id, HeaderFields& trailers) = 0;
    // The client sent END_STREAM.
    virtual void onRequestEnd(int32_t stream_id) = 0;
    // The stream is gone: done both ways (error_code 0) or reset by either side. The last
    // call naming stream_id. Streams refused before onRequestHead never produce calls.
    virtual void onStreamClose(int32_t stream_id, uint32_t error_code) = 0;
    // The stream's buffered response bytes fell to kLowWatermark or below, having been
    // above it, because frames were produced.
    virtual void onResponseDrained(int32_t stream_id) = 0;
  };

  // Creates a session and queues our SETTINGS and the connection WINDOW_UPDATE. Null only
  // when nghttp2 cannot allocate.
  static std::unique_ptr<ServerSession> create(const ServerSettings& settings,
                                               Callbacks& callbacks);
  ~ServerSession();
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  // Feeds client bytes (the preface first). False on a connection error: a GOAWAY is queued
  // when the protocol allows one, errorReason() says why, and every later call is ignored;
  // the caller writes what produce() gives, then closes (see closeAllStreams()).
  // Some errors nghttp2 detects end in a GOAWAY while this still returns true: produce()
  // sends it, then wantsRead() and wantsWrite() turn false.
  bool receive(const char* data, size_t len);
  // Appends frames to `out`, stopping once about max_bytes were added (a frame is never
  // split). Returns the bytes appended. May call onStreamClose and onResponseDrained.
  size_t produce(std::string& out, size_t max_bytes);
  bool wantsWrite() const;  // produce() has something to give
  bool wantsRead() const;   // false once the session is over (GOAWAY done, or an error)

  // Submits the response head (":status" then `headers`, names lower-cased if needed).
  // `headers` must hold no connection-specific fields: the caller filters them (RFC 9113
  // §8.2.2). end_stream = no body (a trailers-only gRPC response carries grpc-status here).
  // A head larger than the client's SETTINGS_MAX_HEADER_LIST_SIZE resets the stream
  // (INTERNAL_ERROR) instead. Ignored for unknown streams and after a first call.
  void submitResponse(int32_t stream_id, int status, const HeaderFields& headers, bool end_stream);
  // Queues body bytes (copied) after submitResponse(.., false); DATA frames carry them as
  // the client's windows allow. Ignored for unknown streams or after endResponse().
  void sendData(int32_t stream_id, const char* data, size_t len);
  // Ends the body: END_STREAM after the buffered bytes, on a trailing HEADERS frame when
  // `trailers` is non-null and non-empty.
  void endResponse(int32_t stream_id, const HeaderFields* trailers);
  // Response bytes of the stream not yet framed (0 for unknown streams).
  size_t bufferedResponseBytes(int32_t stream_id) const;
  // Queues RST_STREAM; onStreamClose(stream_id, error_code) follows from produce().
  void resetStream(int32_t stream_id, uint32_t error_code);
  // Gives n request body bytes of the stream back to the client's windows (WINDOW_UPDATE
  // once enough accumulate). Bytes of closed streams are given back without this.
  void consume(int32_t stream_id, size_t n);
  // First step of a graceful shutdown (RFC 9113 §6.8): GOAWAY with last-stream-id 2^31-1
  // and a PING; the client stops opening streams. Follow with submitGoaway() after a
  // round trip.
  void submitGracefulShutdown();
  // GOAWAY with the last stream id we processed: streams up to it finish, newer ones are
  // refused. With a non-zero error_code the session ends once the frame is produced.
  void submitGoaway(uint32_t error_code);
  // For teardown: calls onStreamClose(id, error_code) for every stream that got a head and
  // forgets them all. The session sends nothing more for them.
  void closeAllStreams(uint32_t error_code);

  // Streams known to the session (including ones not yet delivered or being refused).
  size_t openStreams() const { return streams_.size(); }
  // Issue 12: a quiet session gives its frame buffer's and its empty stream map's pages
  // back to the kernel (about 8 KiB per idle connection; see FrameBufferPages).
  // holdsIdlePages() is true when there may be pages to give back: the session ran since
  // the last release. Cheap to ask; the release is at most two system calls.
  bool holdsIdlePages() const { return pages_.releasable(); }
  void releaseIdlePages();
  const FrameBufferPages& pagesForTest() const { return pages_; }
  // Why the session failed or sent an error GOAWAY; empty while all is well.
  const std::string& errorReason() const { return error_reason_; }
  // Resets and GOAWAYs sent/received by code; streams_opened counts heads delivered.
  SessionCounters counters() const;
  // The counts since the last call, then forgets them: a caller that adds them to its
  // worker's stats needs no copy of its own to compute the difference.
  SessionCounters takeCounters();

 private:
  struct Stream;
  ServerSession(const ServerSettings& settings, Callbacks& callbacks);
  bool start();
  Stream* stream(int32_t stream_id) const;
  void fail(uint32_t goaway_code, std::string reason);
  void refuseHeaders(Stream& s, int32_t stream_id);
  void deliverPending();
  void deliverDrained();
  void closeStream(int32_t stream_id, uint32_t error_code);
  bool fitsPeerHeaderList(const NvList& nv) const;

  // nghttp2 callbacks (static trampolines forward to these).
  int onBeginHeaders(const nghttp2_frame& frame);
  int onHeader(const nghttp2_frame& frame, std::string_view name, std::string_view value);
  int onFrameRecv(const nghttp2_frame& frame);
  int onDataChunk(int32_t stream_id, const uint8_t* data, size_t len);
  int onFrameSend(const nghttp2_frame& frame);
  int onBeginFrame(const nghttp2_frame_hd& hd);
  // nghttp2_session_mem_recv on a piece of the input; false once the session failed.
  bool feed(const uint8_t* data, size_t len);
  // Fails the session when a client's SETTINGS_INITIAL_WINDOW_SIZE of `value` would take
  // an open stream's send window past 2^31-1 (RFC 9113 §6.9.2).
  void checkInitialWindow(uint32_t value);
  ssize_t readBody(int32_t stream_id, uint8_t* buf, size_t length, uint32_t* flags);
  static ServerSession& self(void* user) { return *static_cast<ServerSession*>(user); }
  static ssize_t cbRead(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*,
                        nghttp2_data_source*, void*);

  ServerSettings settings_;
  Callbacks& callbacks_;
  FrameBufferPages pages_;  // nghttp2's allocator: outlives session_
  SessionPtr session_;
  FlatMap<int32_t, std::unique_ptr<Stream>> streams_;
  std::vector<int32_t> pending_heads_;  // heads complete in this receive(), in order
  // DATA that came after a head in the same receive(), in order: delivered after the head,
  // from the caller's input (valid until receive() returns), so never copied.
  struct EarlyData {
    int32_t stream_id;
    const uint8_t* data;
    size_t len;
  };
  std::vector<EarlyData> early_data_;
  std::vector<int32_t> drained_;  // streams to tell onResponseDrained
  std::string raw_goaway_;        // our GOAWAY after a fatal nghttp2 error
  std::string error_reason_;
  // Counts by error code, allocated at the first reset or GOAWAY: an idle session that saw
  // none (most) does not carry 60 counters (issue 12: memory per idle HTTP/2 connection).
  std::unique_ptr<SessionCounters> by_code_;
  SessionCounters& byCode();
  FrameScan scan_;                // frame headers of the input, beside nghttp2
  ClosedByClient client_closed_;  // DATA or HEADERS on these: STREAM_CLOSED
  UsedStreamIds used_ids_;        // HEADERS on a lower id never used: PROTOCOL_ERROR
  uint32_t raw_goaway_code_ = 0;
  uint64_t streams_opened_ = 0;
  uint64_t empty_data_frames_ = 0;
  uint64_t useful_frames_ = 0;
  bool failed_ = false;  // no more input is processed
  bool fatal_ = false;   // nghttp2's session may not be used any more
};

}  // namespace proxy::http2
