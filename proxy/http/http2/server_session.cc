#include "proxy/http/http2/server_session.h"

#include <algorithm>
#include <cstdio>

#include "proxy/http/http2/block_cache_mem.h"
#include "proxy/http/http2/server_session_stream.h"

namespace proxy::http2 {
namespace {

std::string_view view(const uint8_t* p, size_t n) {
  return std::string_view(reinterpret_cast<const char*>(p), n);
}

}  // namespace

ServerSession::ServerSession(const ServerSettings& settings, Callbacks& callbacks)
    : settings_(settings),
      callbacks_(callbacks),
      pages_(settings.allocator != nullptr ? settings.allocator : blockCacheMem()) {}

ServerSession::~ServerSession() = default;

std::unique_ptr<ServerSession> ServerSession::create(const ServerSettings& settings,
                                                     Callbacks& callbacks) {
  std::unique_ptr<ServerSession> s(new ServerSession(settings, callbacks));
  if (!s->start()) return nullptr;
  return s;
}

bool ServerSession::start() {
  CallbacksPtr cbs = newCallbacks();
  OptionPtr opt = newOption();
  if (!cbs || !opt) return false;
  // Trampolines: nghttp2's user_data is this session.
  nghttp2_session_callbacks_set_on_begin_headers_callback(
      cbs.get(), [](nghttp2_session*, const nghttp2_frame* frame, void* user) {
        return self(user).onBeginHeaders(*frame);
      });
  nghttp2_session_callbacks_set_on_header_callback(
      cbs.get(), [](nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                    size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
        return self(user).onHeader(*frame, view(name, namelen), view(value, valuelen));
      });
  nghttp2_session_callbacks_set_on_frame_recv_callback(
      cbs.get(), [](nghttp2_session*, const nghttp2_frame* frame, void* user) {
        return self(user).onFrameRecv(*frame);
      });
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
      cbs.get(), [](nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                    void* user) { return self(user).onDataChunk(id, data, len); });
  nghttp2_session_callbacks_set_on_frame_send_callback(
      cbs.get(), [](nghttp2_session*, const nghttp2_frame* frame, void* user) {
        return self(user).onFrameSend(*frame);
      });
  nghttp2_session_callbacks_set_on_begin_frame_callback(
      cbs.get(), [](nghttp2_session*, const nghttp2_frame_hd* hd, void* user) {
        return self(user).onBeginFrame(*hd);
      });
  nghttp2_session_callbacks_set_on_stream_close_callback(
      cbs.get(), [](nghttp2_session*, int32_t id, uint32_t code, void* user) {
        self(user).closeStream(id, code);
        return 0;
      });

  // Windows open only when the proxy has passed bytes on (issue 10 item 5).
  nghttp2_option_set_no_auto_window_update(opt.get(), 1);
  nghttp2_option_set_stream_reset_rate_limit(opt.get(), settings_.stream_reset_burst,
                                             settings_.stream_reset_rate);
  nghttp2_option_set_max_continuations(opt.get(), settings_.max_continuations);
  nghttp2_option_set_max_settings(opt.get(), settings_.max_settings_entries);
  nghttp2_option_set_max_outbound_ack(opt.get(), settings_.max_outbound_acks);
  // We never use RFC 7540 priorities, so closed streams need not be kept for the tree.
  nghttp2_option_set_no_closed_streams(opt.get(), 1);

  nghttp2_session* raw = nullptr;
  pages_.beginSession();
  int rv = nghttp2_session_server_new3(&raw, cbs.get(), this, opt.get(), pages_.mem());
  pages_.endSession();
  if (rv != 0) return false;
  session_.reset(raw);
  // A server never pushes, so it need not send ENABLE_PUSH (RFC 9113 §6.5.2).
  const nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings_.max_header_list_size},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings_.initial_window_size},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  if (nghttp2_submit_settings(raw, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0) {
    return false;
  }
  // The connection window starts at 65535 whatever SETTINGS say (RFC 9113 §6.9.2).
  return nghttp2_session_set_local_window_size(
             raw, NGHTTP2_FLAG_NONE, 0, static_cast<int32_t>(settings_.connection_window_size)) ==
         0;
}

SessionCounters ServerSession::counters() const {
  SessionCounters c = by_code_ ? *by_code_ : SessionCounters();
  c.streams_opened = streams_opened_;
  return c;
}

SessionCounters ServerSession::takeCounters() {
  SessionCounters c = counters();
  by_code_.reset();
  streams_opened_ = 0;
  return c;
}

SessionCounters& ServerSession::byCode() {
  if (!by_code_) by_code_ = std::make_unique<SessionCounters>();
  return *by_code_;
}

void ServerSession::releaseIdlePages() {
  pages_.release();
  streams_.releaseIfEmpty();  // the room a burst of streams left
}

ServerSession::Stream* ServerSession::stream(int32_t stream_id) const {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? nullptr : it->second.get();
}

bool ServerSession::receive(const char* data, size_t len) {
  if (failed_) return false;
  const auto* bytes = reinterpret_cast<const uint8_t*>(data);
  size_t fed = 0;
  for (size_t pos = 0; pos < len && !failed_;) {
    FrameScan::Header h = scan_.next(bytes + pos, len - pos);
    size_t begin = pos + h.begin;
    pos += h.consumed;
    if (h.self_dependent) {
      // A stream error (§5.3.1) taken for the connection's (§5.4.1): nghttp2 skips the
      // frame unread, and the stream may be idle, where no RST_STREAM may go (§6.4). The
      // frames before it are nghttp2's first.
      if (!feed(bytes + fed, pos - fed)) break;
      fed = pos;
      fail(NGHTTP2_PROTOCOL_ERROR, "PRIORITY making a stream depend on itself");
      continue;
    }
    if (h.initial_window) {
      // Judged before nghttp2 takes the frame's last byte and applies it.
      if (!feed(bytes + fed, begin - fed)) break;
      fed = begin;
      checkInitialWindow(h.max_initial_window);
      continue;
    }
    if (!h.found || h.type != NGHTTP2_DATA) continue;
    // nghttp2 ignores DATA on a stream it forgot, without a callback: the frame's stream is
    // judged here, once nghttp2 has taken every byte before it (RFC 9113 §5.1).
    if (!feed(bytes + fed, begin - fed)) break;
    fed = begin;
    if (stream(h.stream_id) == nullptr && client_closed_.holds(h.stream_id)) {
      fail(NGHTTP2_STREAM_CLOSED, "DATA on a stream the client had closed");
    }
  }
  if (!failed_) feed(bytes + fed, len - fed);
  pages_.afterReceive();
  if (!failed_) deliverPending();
  pending_heads_.clear();
  early_data_.clear();
  return !failed_;
}

void ServerSession::checkInitialWindow(uint32_t value) {
  // A larger value is nghttp2's FLOW_CONTROL_ERROR; a smaller one cannot overflow.
  uint32_t now =
      nghttp2_session_get_remote_settings(session_.get(), NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE);
  if (value > NGHTTP2_MAX_WINDOW_SIZE || value <= now) return;
  int64_t growth = int64_t{value} - now;
  for (const auto& entry : streams_) {
    int32_t window = nghttp2_session_get_stream_remote_window_size(session_.get(), entry.first);
    if (window >= 0 && window + growth > NGHTTP2_MAX_WINDOW_SIZE) {
      // nghttp2 would reset the stream alone; RFC 9113 §6.9.2 makes it the connection's.
      fail(NGHTTP2_FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream's window");
      return;
    }
  }
}

bool ServerSession::feed(const uint8_t* data, size_t len) {
  if (len == 0) return !failed_;
  ssize_t rv = nghttp2_session_mem_recv(session_.get(), data, len);
  if (rv < 0) {
    // Every error mem_recv returns is fatal: nghttp2 may not be used again, so the GOAWAY
    // is ours (RFC 9113 §5.4.1).
    fatal_ = true;
    bool flood = rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS;
    fail(flood ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR,
         std::string("nghttp2: ") + nghttp2_strerror(static_cast<int>(rv)));
  }
  return !failed_;
}

void ServerSession::fail(uint32_t goaway_code, std::string reason) {
  if (failed_) return;
  failed_ = true;
  error_reason_ = std::move(reason);
  if (!fatal_) {
    nghttp2_session_terminate_session(session_.get(), goaway_code);
    return;
  }
  raw_goaway_ = goawayFrame(nghttp2_session_get_last_proc_stream_id(session_.get()), goaway_code);
  raw_goaway_code_ = goaway_code;
}

void ServerSession::deliverPending() {
  // Heads wait for the end of the receive() call so that a HEADERS that the same bytes
  // reset (rapid reset, CVE-2023-44487) never opens an upstream request.
  for (int32_t id : pending_heads_) {
    Stream* s = stream(id);
    if (s == nullptr || s->ignored || s->head_state != Stream::Head::kPending) continue;
    s->head_state = Stream::Head::kDelivered;
    ++streams_opened_;
    RequestHead head = std::move(s->head);
    s->head = RequestHead();
    callbacks_.onRequestHead(id, head);
    if ((s = stream(id)) == nullptr || s->ignored) continue;
    bool gone = false;
    for (const EarlyData& early : early_data_) {
      if (early.stream_id != id) continue;
      callbacks_.onRequestData(id, reinterpret_cast<const char*>(early.data), early.len);
      if ((s = stream(id)) == nullptr || s->ignored) {
        gone = true;
        break;
      }
    }
    if (gone) continue;
    if (s->trailers_ready) {
      HeaderFields trailers = std::move(s->trailers);
      s->trailers = HeaderFields();
      callbacks_.onRequestTrailers(id, trailers);
      if ((s = stream(id)) == nullptr || s->ignored) continue;
    }
    if (s->request_ended) callbacks_.onRequestEnd(id);
  }
}

size_t ServerSession::produce(std::string& out, size_t max_bytes) {
  size_t before = out.size();
  if (fatal_) {
    if (!raw_goaway_.empty()) {
      out += raw_goaway_;
      raw_goaway_.clear();
      byCode().goaways_sent.add(raw_goaway_code_);
    }
    return out.size() - before;
  }
  while (out.size() - before < max_bytes) {
    const uint8_t* p = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_.get(), &p);
    pages_.afterSend(n > 0);
    if (n < 0) {
      fatal_ = true;
      fail(NGHTTP2_INTERNAL_ERROR,
           std::string("nghttp2: ") + nghttp2_strerror(static_cast<int>(n)));
      break;
    }
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  }
  deliverDrained();
  return out.size() - before;
}

void ServerSession::deliverDrained() {
  std::vector<int32_t> ids;
  ids.swap(drained_);
  for (int32_t id : ids) {
    // A stream that closed meanwhile already had its last call (onStreamClose).
    if (stream(id) != nullptr) callbacks_.onResponseDrained(id);
  }
}

bool ServerSession::wantsWrite() const {
  if (fatal_) return !raw_goaway_.empty();
  return nghttp2_session_want_write(session_.get()) != 0;
}

bool ServerSession::wantsRead() const {
  return !failed_ && nghttp2_session_want_read(session_.get()) != 0;
}

bool ServerSession::fitsPeerHeaderList(const NvList& nv) const {
  // nghttp2 does not hold our HEADERS to the client's SETTINGS_MAX_HEADER_LIST_SIZE.
  uint64_t limit =
      nghttp2_session_get_remote_settings(session_.get(), NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE);
  return nv.listSize() <= limit;
}

void ServerSession::submitResponse(int32_t stream_id, int status, const HeaderFields& headers,
                                   bool end_stream) {
  Stream* s = stream(stream_id);
  if (fatal_ || s == nullptr || s->ignored || s->response_submitted ||
      s->head_state != Stream::Head::kDelivered) {
    return;
  }
  char status_text[8];
  std::snprintf(status_text, sizeof(status_text), "%03d", std::clamp(status, 100, 999));
  NvList nv;
  nv.reserve(headers.size() + 1);
  nv.add(":status", status_text);
  nv.addAll(headers);
  if (!fitsPeerHeaderList(nv)) {
    resetStream(stream_id, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  s->response_submitted = true;
  s->response_ended = end_stream;
  nghttp2_data_provider body{};
  body.read_callback = cbRead;
  int rv = nghttp2_submit_response(session_.get(), stream_id, nv.data(), nv.size(),
                                   end_stream ? nullptr : &body);
  if (rv != 0) resetStream(stream_id, NGHTTP2_INTERNAL_ERROR);
}

void ServerSession::sendData(int32_t stream_id, const char* data, size_t len) {
  Stream* s = stream(stream_id);
  if (fatal_ || s == nullptr || s->ignored || !s->response_submitted || s->response_ended) {
    return;
  }
  s->out.append(data, len);
  if (s->buffered() > kLowWatermark) s->above_low = true;
  if (s->deferred) {
    s->deferred = false;
    nghttp2_session_resume_data(session_.get(), stream_id);
  }
}

void ServerSession::endResponse(int32_t stream_id, const HeaderFields* trailers) {
  Stream* s = stream(stream_id);
  if (fatal_ || s == nullptr || s->ignored || !s->response_submitted || s->response_ended) {
    return;
  }
  s->response_ended = true;
  if (trailers != nullptr) s->out_trailers = *trailers;
  if (s->deferred) {
    s->deferred = false;
    nghttp2_session_resume_data(session_.get(), stream_id);
  }
}

size_t ServerSession::bufferedResponseBytes(int32_t stream_id) const {
  Stream* s = stream(stream_id);
  return s == nullptr ? 0 : s->buffered();
}

void ServerSession::resetStream(int32_t stream_id, uint32_t error_code) {
  Stream* s = stream(stream_id);
  if (fatal_ || s == nullptr || s->ignored) return;
  s->ignored = true;
  s->out.release();
  nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, stream_id, error_code);
}

void ServerSession::consume(int32_t stream_id, size_t n) {
  Stream* s = stream(stream_id);
  if (fatal_ || s == nullptr) return;
  n = std::min(n, s->unconsumed);
  s->unconsumed -= n;
  nghttp2_session_consume(session_.get(), stream_id, n);
}

void ServerSession::submitGracefulShutdown() {
  if (failed_) return;
  nghttp2_submit_shutdown_notice(session_.get());
  // The PING's round trip tells the caller when the client has seen the notice.
  nghttp2_submit_ping(session_.get(), NGHTTP2_FLAG_NONE, nullptr);
}

void ServerSession::submitGoaway(uint32_t error_code) {
  if (failed_) return;
  if (error_code != NGHTTP2_NO_ERROR) {
    nghttp2_session_terminate_session(session_.get(), error_code);
    return;
  }
  nghttp2_submit_goaway(session_.get(), NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_.get()), error_code,
                        nullptr, 0);
}

void ServerSession::closeAllStreams(uint32_t error_code) {
  std::vector<int32_t> ids;
  for (const auto& entry : streams_) {
    if (entry.second->head_state == Stream::Head::kDelivered) ids.push_back(entry.first);
  }
  std::sort(ids.begin(), ids.end());
  streams_.clear();
  drained_.clear();
  for (int32_t id : ids) callbacks_.onStreamClose(id, error_code);
}

void ServerSession::closeStream(int32_t stream_id, uint32_t error_code) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  std::unique_ptr<Stream> s = std::move(it->second);
  streams_.erase(it);
  // Bytes the caller never consumed would shrink the connection window for good.
  if (s->unconsumed > 0) nghttp2_session_consume_connection(session_.get(), s->unconsumed);
  // A stream the client ended (END_STREAM both ways, or its RST_STREAM) may carry nothing
  // more from it; one the proxy or nghttp2 reset (or was about to) may still get frames
  // in flight.
  if (!s->reset_sent && !s->ignored) client_closed_.note(stream_id);
  if (s->head_state == Stream::Head::kDelivered) callbacks_.onStreamClose(stream_id, error_code);
}

ssize_t ServerSession::readBody(int32_t stream_id, uint8_t* buf, size_t length, uint32_t* flags) {
  Stream* s = stream(stream_id);
  if (s == nullptr) return NGHTTP2_ERR_DEFERRED;  // forgotten by closeAllStreams()
  size_t n = std::min(length, s->buffered());
  if (n == 0 && !s->response_ended) {
    s->deferred = true;  // sendData() or endResponse() resumes it
    return NGHTTP2_ERR_DEFERRED;
  }
  s->out.take(buf, n);
  if (s->above_low && s->buffered() <= kLowWatermark) {
    s->above_low = false;
    drained_.push_back(stream_id);
  }
  if (!s->response_ended || s->buffered() > 0) return static_cast<ssize_t>(n);
  *flags |= NGHTTP2_DATA_FLAG_EOF;
  if (!s->out_trailers.empty()) {
    NvList nv;
    nv.addAll(s->out_trailers);
    // Trailers the client would refuse end the stream as an error, never as a clean end:
    // a gRPC status must not silently go missing.
    if (!fitsPeerHeaderList(nv) ||
        nghttp2_submit_trailer(session_.get(), stream_id, nv.data(), nv.size()) != 0) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    s->out_trailers = HeaderFields();
  }
  return static_cast<ssize_t>(n);
}

ssize_t ServerSession::cbRead(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                              uint32_t* flags, nghttp2_data_source*, void* user) {
  return self(user).readBody(stream_id, buf, length, flags);
}

}  // namespace proxy::http2
