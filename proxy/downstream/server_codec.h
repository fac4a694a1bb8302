// ServerCodec: the protocol half of one client connection (HTTP/1.1 or HTTP/2), chosen once
// per connection by the transport (ALPN, or the h2c preface on a plain listener). A codec
// turns plaintext into requests and responses into plaintext; the transport
// (DownstreamConnection) owns the socket, TLS, the writer, the connection deadlines and
// close. CodecHost is what a codec may ask of its transport. No socket here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/downstream/access_log.h"
#include "proxy/downstream/close_reason.h"
#include "proxy/http/head_writer.h"

namespace proxy::downstream {

struct DownstreamContext;

// The transport services a codec uses. Implemented by DownstreamConnection; outlives its
// codec. Loop thread only.
class CodecHost {
 public:
  virtual ~CodecHost() = default;
  virtual DownstreamContext& context() = 0;
  virtual uint64_t connectionId() const = 0;
  virtual const std::string& peerIp() const = 0;
  virtual bool hasTls() const = 0;
  // Client address, TLS and the X-Forwarded-Client-Cert value, for the forwarded fields.
  virtual http::ForwardContext forwardContext() = 0;
  // Peer and TLS fields of an access-log line (the same for both protocols).
  virtual void fillAccessLog(AccessLog::Entry& e) = 0;

  // True while the connection carries requests (not handshaking, finishing or closing).
  virtual bool open() const = 0;
  virtual bool closing() const = 0;
  // True inside a pump pass, which flushes at its end.
  virtual bool pumping() const = 0;
  // Plaintext waiting for the next flush; codecs append their output here.
  virtual std::string& output() = 0;
  // Bytes not yet handed to the kernel (plaintext waiting plus the write in flight).
  virtual size_t queuedOutput() const = 0;
  // Writes output() and then `data` in one writev, without copying `data`. False under
  // TLS (the caller appends to output() instead). May close this connection.
  virtual bool writeThrough(std::string_view data) = 0;
  // Received plaintext the codec has not taken yet.
  virtual size_t pendingInput() const = 0;
  // Loop ms of the last completed write (or request progress), for the idle deadlines.
  virtual uint64_t lastProgressMs() const = 0;
  virtual void markProgress() = 0;

  // The transport's pump: feeds the codec and flushes. May close this connection.
  virtual void pump() = 0;
  // Sends output() now. May close this connection.
  virtual void flush() = 0;
  // Calls the codec's runQueuedFlush() once, after the loop's current round of I/O
  // callbacks (uv::FlushQueue): what several upstream events bring for this connection
  // then leaves in one write. Idempotent until it runs; dropped once the connection
  // closes. Never calls back from inside.
  virtual void flushLater() = 0;
  // The request side can take input again: pump if reads were stopped or input waits.
  virtual void inputUnblocked() = 0;
  virtual void rearmTimer() = 0;
  virtual void updateReading() = 0;
  // The reason the connection will report when it ends (kDone unless set).
  virtual CloseReason closeReason() const = 0;
  // No more requests: write what is queued, then close with `reason`. May close.
  virtual void finish(CloseReason reason) = 0;
  // Ends the connection now (`reset`: TCP RST instead of FIN).
  virtual void close(CloseReason reason, bool reset = false) = 0;
};

// What a codec says when the client half-closed its side.
enum class EofAction {
  kCloseEarly,       // a request was cut short: close now
  kAnswerThenClose,  // a whole request waits for its response: send it, then close
  kIdle,             // between requests: the transport finishes what is queued and closes
};

// One client connection's protocol. Owned by its DownstreamConnection (unique_ptr), from
// the protocol choice until the connection is freed. Loop thread only. Every method may
// call back into the host; callers check closing() after each.
class ServerCodec {
 public:
  virtual ~ServerCodec() = default;

  // Plaintext from the client; returns the bytes taken (the rest is offered again later).
  virtual size_t receive(const char* data, size_t len) = 0;
  // receive() would take bytes now.
  virtual bool acceptsInput() const = 0;
  // The upstream cannot take more request bytes: decrypt and read no more.
  virtual bool requestBlocked() const = 0;
  // The socket should not be read now.
  virtual bool readBlocked() const { return requestBlocked(); }
  // Appends output that waits to host.output() while the write queue has room.
  virtual void produce() {}
  // After a produce(): the protocol session wants nothing more and its last frames are in
  // the output, so the connection must finish, for the reason returned. HTTP/2: an error
  // GOAWAY went out (a session may queue it while requests are still open), or the
  // client's GOAWAY came and its last stream ended. Checked after every flush.
  virtual std::optional<CloseReason> ended() { return std::nullopt; }
  // End of a pump pass: request bytes go to the upstream.
  virtual void endOfPass() {}
  // A write completed: the write queue has room again.
  virtual void onWriteDone() = 0;
  // What the codec asked for with CodecHost::flushLater(), now. May close the connection.
  virtual void runQueuedFlush() {}
  // Frees per-request objects that ended (called from loop callbacks only).
  virtual void collect() {}
  // The codec's next deadline in loop ms (UINT64_MAX when none) and its expiry.
  virtual uint64_t deadline() const = 0;
  virtual void onDeadline(uint64_t now_ms) = 0;
  // Graceful shutdown: finish the requests in flight, accept no more.
  virtual void drain() = 0;
  // No request is in flight.
  virtual bool idle() const = 0;
  virtual EofAction onPeerEof() = 0;
  // The connection is closing: every request lets go of its upstream.
  virtual void closeAll() = 0;
  // Between requests: give back buffers that are re-grown on the next request.
  virtual void releaseMemory() {}
  // Requests answered completely so far (for the connection's log line).
  virtual uint64_t requestsServed() const = 0;
};

}  // namespace proxy::downstream
