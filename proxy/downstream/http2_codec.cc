#include "proxy/downstream/http2_codec.h"

#include <uv.h>

#include <algorithm>
#include <limits>

#include "proxy/common/log.h"
#include "proxy/downstream/downstream_connection.h"
#include "proxy/downstream/downstream_limits.h"
#include "proxy/downstream/http2_stream.h"

namespace proxy::downstream {
namespace {

// Between the graceful GOAWAY and the final one (RFC 9113 §6.8: "at least one round trip").
constexpr uint64_t kGoawayGraceMs = 1000;
// A connection with no stream that has been quiet this long gives its frame buffer's pages
// back (ServerSession::releaseIdlePages; issue 12, memory per idle connection). Agents
// send every few seconds, so this is once per flush at most; a busy connection never.
constexpr uint64_t kReleasePagesAfterMs = 500;

}  // namespace

static_assert(kHttp2ErrorCodes == http2::kErrorCodeCount + 1,
              "WorkerStats keeps one counter per HTTP/2 error code plus one for unknown codes");

Http2Codec::Http2Codec(CodecHost& host) : host_(host) {}

Http2Codec::~Http2Codec() { closeAll(); }

bool Http2Codec::start() {
  const config::ServerConfig& s = host_.context().config->server;
  http2::ServerSettings settings;
  settings.max_concurrent_streams = s.http2_max_concurrent_streams;
  // server.max_header_size bounds a request head in either protocol; over HTTP/2 it is
  // also what SETTINGS_MAX_HEADER_LIST_SIZE announces (issue 10 item 3).
  settings.max_header_list_size = static_cast<uint32_t>(
      std::min<uint64_t>(s.max_header_size, std::numeric_limits<uint32_t>::max()));
  settings.max_header_fields = s.max_header_fields;
  session_ = http2::ServerSession::create(settings, *this);
  if (session_ == nullptr) return false;
  host_.context().stats->http2_connections.add();
  return true;
}

size_t Http2Codec::receive(const char* data, size_t len) {
  host_.markProgress();
  receiving_ = true;
  bool ok = session_->receive(data, len);  // false: errorReason() says why
  receiving_ = false;
  syncCounters();
  if (host_.closing()) return len;
  if (!ok || !session_->wantsRead()) {
    // A connection error (the session queued its GOAWAY), or the session is done: the
    // client's GOAWAY with no stream left. Send what is queued, then close.
    host_.finish(sessionEndReason());
    return len;
  }
  host_.rearmTimer();
  return len;
}

bool Http2Codec::readBlocked() const { return host_.queuedOutput() >= kHighWatermark; }

void Http2Codec::produce() {
  if (receiving_ || !host_.open() || session_ == nullptr) return;
  size_t queued = host_.queuedOutput();
  if (queued >= kHighWatermark || !session_->wantsWrite()) return;
  session_->produce(host_.output(), kHighWatermark - queued);
  syncCounters();
}

std::optional<CloseReason> Http2Codec::ended() {
  // nghttp2 queues the GOAWAY of some connection errors (DATA on a closed stream, a frame
  // on stream 0 that must not be there) and goes on with the open streams: only once that
  // GOAWAY has been produced does it want to read and write nothing more. A stream still
  // waiting for its upstream must not keep such a connection open past every deadline.
  // The same holds after the client's GOAWAY: once its last stream is answered, nothing
  // more can come (RFC 9113 §6.8), and the connection closes instead of idling.
  // A drain's or an idle timeout's own final GOAWAY is finished by its own path.
  if (session_ == nullptr || final_goaway_ || session_->wantsRead() || session_->wantsWrite()) {
    return std::nullopt;
  }
  return sessionEndReason();
}

CloseReason Http2Codec::sessionEndReason() const {
  if (!session_->errorReason().empty()) {
    log::debug("http2 session ended", {{"conn", host_.connectionId()},
                                       {"peer", host_.peerIp()},
                                       {"reason", session_->errorReason()}});
    return CloseReason::kBadRequest;
  }
  if (final_goaway_) return endReason();
  // No GOAWAY of ours with an error, none final: the client sent one.
  log::debug("client sent GOAWAY", {{"conn", host_.connectionId()}, {"peer", host_.peerIp()}});
  return CloseReason::kPeerClosed;
}

void Http2Codec::onWriteDone() {
  collect();      // a libuv callback: no stream is inside one of its calls
  host_.flush();  // more frames may wait for room in the write queue
  if (host_.closing()) return;
  host_.updateReading();
}

void Http2Codec::flushSoon() {
  // Inside a pump pass the pass flushes at its end; inside receive() nothing may produce.
  // Otherwise (an upstream event: a response head, data, its end) the flush waits for
  // the loop's round of I/O to end, so the answers one upstream read brings for several
  // streams of this connection go out in one TLS record and one write.
  if (host_.pumping() || receiving_) return;
  host_.flushLater();
}

void Http2Codec::runQueuedFlush() {
  host_.flush();
  if (host_.closing()) return;
  if (final_goaway_ && openStreams() == 0) {
    host_.finish(endReason());  // the drain's last stream just ended
    return;
  }
  host_.rearmTimer();  // a stream's deadline may have changed (a response paused, a stream done)
}

void Http2Codec::drain() {
  if (drain_started_ms_ != 0) return;
  drain_started_ms_ = uv_now(host_.context().loop);
  if (session_ != nullptr) session_->submitGracefulShutdown();
  host_.flush();
  if (host_.closing()) return;
  host_.rearmTimer();
}

CloseReason Http2Codec::endReason() const {
  return drain_started_ms_ != 0 ? CloseReason::kDrain : CloseReason::kIdleTimeout;
}

void Http2Codec::finalGoaway() {
  if (session_ == nullptr || final_goaway_) return;
  final_goaway_ = true;
  session_->submitGoaway(0);
}

void Http2Codec::closeAll() {
  if (session_ == nullptr || closed_) return;
  closed_ = true;
  // Streams let go of their upstream leases and wait in the graveyard: this may run
  // inside one of their own calls (a write error while flushing), so none is freed here,
  // and the session stays allocated (unused) until the codec goes.
  session_->closeAllStreams(NGHTTP2_CANCEL);
  DownstreamContext& ctx = host_.context();
  for (auto& entry : streams_) {
    entry.second->onClosed(NGHTTP2_CANCEL);
    ctx.stats->http2_streams_active.sub();
    graveyard_.push_back(std::move(entry.second));
  }
  streams_.clear();
  syncCounters();
  ctx.stats->http2_connections.sub();
}

void Http2Codec::collect() { graveyard_.clear(); }

uint64_t Http2Codec::streamDeadline() const {
  uint64_t deadline = std::numeric_limits<uint64_t>::max();
  for (const auto& entry : streams_) deadline = std::min(deadline, entry.second->deadline());
  return deadline;
}

uint64_t Http2Codec::idleTimeoutMs() const {
  const config::ServerConfig& s = host_.context().config->server;
  return toMs(streams_seen_ == 0 ? s.request_header_timeout : s.idle_timeout);
}

uint64_t Http2Codec::deadline() const {
  uint64_t deadline = streamDeadline();
  if (openStreams() == 0) {
    deadline = std::min(deadline, host_.lastProgressMs() + idleTimeoutMs());
    if (session_->holdsIdlePages()) {
      deadline = std::min(deadline, host_.lastProgressMs() + kReleasePagesAfterMs);
    }
  }
  if (drain_started_ms_ != 0 && !final_goaway_) {
    deadline = std::min(deadline, drain_started_ms_ + kGoawayGraceMs);
  }
  return deadline;
}

void Http2Codec::onDeadline(uint64_t now_ms) {
  if (drain_started_ms_ != 0 && !final_goaway_ && now_ms >= drain_started_ms_ + kGoawayGraceMs) {
    finalGoaway();
  }
  // Streams whose deadline passed are picked first: ending one may flush, and a write
  // error then closes the connection, which empties streams_.
  std::vector<int32_t> due;
  for (const auto& entry : streams_) {
    if (entry.second->deadline() <= now_ms) due.push_back(entry.first);
  }
  for (int32_t id : due) {
    if (host_.closing()) return;
    if (Http2Stream* s = find(id)) s->onDeadline();
  }
  if (host_.closing()) return;
  bool idle_expired = openStreams() == 0 && now_ms >= host_.lastProgressMs() + idleTimeoutMs();
  if (idle_expired || (final_goaway_ && openStreams() == 0)) {
    // RFC 9113 §6.8: say why before closing, so the client opens no stream in vain.
    finalGoaway();
    host_.finish(endReason());
    return;
  }
  host_.flush();
  if (host_.closing()) return;
  // After the flush: a frame it wrote makes the buffer busy again until the next quiet.
  if (openStreams() == 0 && now_ms >= host_.lastProgressMs() + kReleasePagesAfterMs) {
    session_->releaseIdlePages();
    streams_.releaseIfEmpty();
    if (graveyard_.empty()) std::vector<std::unique_ptr<Http2Stream>>().swap(graveyard_);
  }
  host_.rearmTimer();
}

Http2Stream* Http2Codec::find(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void Http2Codec::onRequestHead(int32_t stream_id, http2::RequestHead& head) {
  DownstreamContext& ctx = host_.context();
  ++streams_seen_;
  ctx.stats->http2_streams_total.add();
  ctx.stats->http2_streams_active.add();
  auto stream = std::make_unique<Http2Stream>(*this, stream_id);
  Http2Stream* s = stream.get();
  streams_.emplace(stream_id, std::move(stream));
  s->onRequestHead(head);
}

void Http2Codec::onRequestData(int32_t stream_id, const char* data, size_t len) {
  if (Http2Stream* s = find(stream_id)) {
    s->onRequestData(data, len);
  } else {
    session_->consume(stream_id, len);
  }
}

void Http2Codec::onRequestTrailers(int32_t stream_id, http2::HeaderFields& trailers) {
  if (Http2Stream* s = find(stream_id)) s->onRequestTrailers(trailers);
}

void Http2Codec::onRequestEnd(int32_t stream_id) {
  if (Http2Stream* s = find(stream_id)) s->onRequestEnd();
}

void Http2Codec::onStreamClose(int32_t stream_id, uint32_t error_code) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  it->second->onClosed(error_code);
  graveyard_.push_back(std::move(it->second));
  streams_.erase(it);
  host_.context().stats->http2_streams_active.sub();
}

void Http2Codec::onResponseDrained(int32_t stream_id) {
  if (Http2Stream* s = find(stream_id)) s->onResponseDrained();
}

void Http2Codec::syncCounters() {
  if (session_ == nullptr) return;
  // takeCounters() hands over only what happened since the last call, so the codec keeps
  // no copy of the session's counters (488 bytes per connection).
  http2::SessionCounters fresh = session_->takeCounters();
  WorkerStats& stats = *host_.context().stats;
  auto add = [](const http2::ErrorCodeCounts& from, std::array<Counter, kHttp2ErrorCodes>& to) {
    for (size_t i = 0; i < kHttp2ErrorCodes; ++i) {
      if (from.by_code[i] != 0) to[i].add(from.by_code[i]);
    }
  };
  add(fresh.resets_sent, stats.http2_resets_sent);
  add(fresh.resets_received, stats.http2_resets_received);
  add(fresh.goaways_sent, stats.http2_goaways_sent);
  add(fresh.goaways_received, stats.http2_goaways_received);
}

}  // namespace proxy::downstream
