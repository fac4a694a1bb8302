#include "proxy/downstream/http2_codec.h"

#include <uv.h>

#include <algorithm>
#include <limits>

#include "proxy/downstream/downstream_connection.h"
#include "proxy/downstream/http2_stream.h"

namespace proxy::downstream {

static_assert(kHttp2ErrorCodes == http2::kErrorCodeCount + 1,
              "WorkerStats keeps one counter per HTTP/2 error code plus one for unknown codes");

Http2Codec::Http2Codec(Http2Host& host) : host_(host) {}

Http2Codec::~Http2Codec() { closeAll(); }

bool Http2Codec::start() {
  const config::ServerConfig& s = host_.h2Context().config->server;
  http2::ServerSettings settings;
  settings.max_concurrent_streams = s.http2_max_concurrent_streams;
  // server.max_header_size bounds a request head in either protocol; over HTTP/2 it is
  // also what SETTINGS_MAX_HEADER_LIST_SIZE announces (issue 10 item 3).
  settings.max_header_list_size = static_cast<uint32_t>(
      std::min<uint64_t>(s.max_header_size, std::numeric_limits<uint32_t>::max()));
  settings.max_header_fields = s.max_header_fields;
  session_ = http2::ServerSession::create(settings, *this);
  if (session_ == nullptr) return false;
  host_.h2Context().stats->http2_connections.add();
  return true;
}

bool Http2Codec::receive(const char* data, size_t len) {
  receiving_ = true;
  bool ok = session_->receive(data, len);
  receiving_ = false;
  syncCounters();
  return ok;
}

void Http2Codec::produce(std::string& out, size_t max_bytes) {
  session_->produce(out, max_bytes);
  syncCounters();
}

bool Http2Codec::wantsWrite() const { return session_ != nullptr && session_->wantsWrite(); }
bool Http2Codec::wantsRead() const { return session_ != nullptr && session_->wantsRead(); }
const std::string& Http2Codec::errorReason() const { return session_->errorReason(); }

void Http2Codec::drain() {
  if (session_ != nullptr) session_->submitGracefulShutdown();
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
  DownstreamContext& ctx = host_.h2Context();
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

uint64_t Http2Codec::nextDeadline() const {
  uint64_t deadline = std::numeric_limits<uint64_t>::max();
  for (const auto& entry : streams_) deadline = std::min(deadline, entry.second->deadline());
  return deadline;
}

void Http2Codec::checkDeadlines(uint64_t now_ms) {
  for (auto& entry : streams_) {
    if (entry.second->deadline() <= now_ms) entry.second->onDeadline();
  }
}

Http2Stream* Http2Codec::find(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void Http2Codec::onRequestHead(int32_t stream_id, http2::RequestHead& head) {
  DownstreamContext& ctx = host_.h2Context();
  ++streams_seen_;
  ctx.stats->http2_streams_total.add();
  ctx.stats->http2_streams_active.add();
  auto stream = std::make_unique<Http2Stream>(*this, stream_id, uv_now(ctx.loop));
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
  host_.h2Context().stats->http2_streams_active.sub();
}

void Http2Codec::onResponseDrained(int32_t stream_id) {
  if (Http2Stream* s = find(stream_id)) s->onResponseDrained();
}

void Http2Codec::syncCounters() {
  if (session_ == nullptr) return;
  const http2::SessionCounters& now = session_->counters();
  WorkerStats& stats = *host_.h2Context().stats;
  auto add = [](const http2::ErrorCodeCounts& from, http2::ErrorCodeCounts& seen,
                std::array<Counter, kHttp2ErrorCodes>& to) {
    for (size_t i = 0; i < kHttp2ErrorCodes; ++i) {
      uint64_t delta = from.by_code[i] - seen.by_code[i];
      if (delta != 0) to[i].add(delta);
    }
    seen = from;
  };
  add(now.resets_sent, synced_.resets_sent, stats.http2_resets_sent);
  add(now.resets_received, synced_.resets_received, stats.http2_resets_received);
  add(now.goaways_sent, synced_.goaways_sent, stats.http2_goaways_sent);
  add(now.goaways_received, synced_.goaways_received, stats.http2_goaways_received);
}

}  // namespace proxy::downstream
