#include "proxy/http/http2/client_session.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>

#include "proxy/http/http2/block_cache_mem.h"

namespace proxy::http2 {
namespace {

// Before the upstream's SETTINGS arrive we assume the RFC 9113 §6.5.2 recommendation
// (at least 100), which is also what nghttp2 assumes by default.
constexpr uint32_t kAssumedMaxConcurrentStreams = 100;

ClientSession& self(void* user) { return *static_cast<ClientSession*>(user); }

std::string_view view(const uint8_t* p, size_t n) {
  return std::string_view(reinterpret_cast<const char*>(p), n);
}

}  // namespace

void RequestBody::append(const char* data, size_t len) {
  if (ended_) return;
  buf_.append(data, len);
}

void RequestBody::end(const HeaderFields* trailers) {
  ended_ = true;
  if (trailers != nullptr) trailers_ = *trailers;
}

size_t RequestBody::take(uint8_t* out, size_t max) {
  size_t n = std::min(max, unsent());
  std::memcpy(out, buf_.data() + framed_, n);
  framed_ += n;
  if (framed_ > replay_limit_) {
    // Past the replay limit the framed bytes are useless: drop them (in large steps, so
    // the copy stays linear in the body size).
    replayable_ = false;
    if (framed_ >= buf_.size() / 2) {
      buf_.erase(0, framed_);
      framed_ = 0;
    }
  }
  return n;
}

bool RequestBody::rewind() {
  if (!replayable_) return false;
  framed_ = 0;
  return true;
}

Result<std::unique_ptr<ClientSession>> ClientSession::create(Callbacks& callbacks,
                                                             const ClientOptions& options) {
  std::unique_ptr<ClientSession> s(new ClientSession(callbacks));
  CallbacksPtr cbs = newCallbacks();
  OptionPtr opt = newOption();
  if (!cbs || !opt) return Status::error("nghttp2: out of memory");
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs.get(), &nghOnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs.get(), &nghOnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs.get(), &nghOnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs.get(), &nghOnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs.get(), &nghOnStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs.get(), &nghOnFrameSend);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs.get(), &nghOnFrameNotSend);
  // Flow control follows the downstream: WINDOW_UPDATE only for bytes it accepted
  // (consume()), never merely because they arrived (issue 10 item 5, nghttpx's design).
  nghttp2_option_set_no_auto_window_update(opt.get(), 1);
  nghttp2_option_set_peer_max_concurrent_streams(opt.get(), kAssumedMaxConcurrentStreams);
  // Request heads may be as large as server.max_header_size allows (1 MiB by default);
  // nghttp2's own limit for an encoded block is 64 KiB.
  nghttp2_option_set_max_send_header_block_length(opt.get(), 1024 * 1024);
  nghttp2_session* raw = nullptr;
  int rv = nghttp2_session_client_new3(&raw, cbs.get(), s.get(), opt.get(), blockCacheMem());
  if (rv != 0) return Status::error(std::string("nghttp2: ") + nghttp2_strerror(rv));
  s->session_.reset(raw);

  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options.stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, options.max_header_list_size},
  };
  rv = nghttp2_submit_settings(raw, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  if (rv == 0) {
    // The connection window is not a setting (RFC 9113 §6.9.2): raise it with a
    // WINDOW_UPDATE on stream 0 right after the preface.
    rv = nghttp2_session_set_local_window_size(raw, NGHTTP2_FLAG_NONE, 0,
                                               static_cast<int32_t>(options.connection_window));
  }
  if (rv != 0) return Status::error(std::string("nghttp2: ") + nghttp2_strerror(rv));
  return s;
}

ClientSession::~ClientSession() = default;

ClientSession::StreamState* ClientSession::stream(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  return it == streams_.end() || it->second.abandoned ? nullptr : &it->second;
}

int32_t ClientSession::submitRequest(const HeaderFields& headers, RequestBody* body) {
  NvList nva;
  nva.addAll(headers);
  nghttp2_data_provider provider{};
  provider.source.ptr = body;
  provider.read_callback = &nghOnRead;
  int32_t id = nghttp2_submit_request(session_.get(), nullptr, nva.data(), nva.size(),
                                      body != nullptr ? &provider : nullptr, nullptr);
  if (id < 0) return id;
  StreamState& st = streams_[id];
  st.body = body;
  st.request_ended = body == nullptr;
  ++counters_.streams_opened;
  return id;
}

void ClientSession::resumeBody(int32_t stream_id) {
  // Fails harmlessly when the stream is not waiting for data (already framing, or closed).
  (void)nghttp2_session_resume_data(session_.get(), stream_id);
}

void ClientSession::resetStream(int32_t stream_id, uint32_t error_code) {
  if (StreamState* st = stream(stream_id)) {
    st->body = nullptr;
    st->abandoned = true;
  }
  if (nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, stream_id, error_code) == 0) {
    counters_.resets_sent.add(error_code);
  }
}

void ClientSession::abandon(int32_t stream_id, uint32_t error_code) {
  StreamState* st = stream(stream_id);
  if (st == nullptr) return;
  if (st->request_ended && st->response_ended) {
    st->body = nullptr;
    st->abandoned = true;
    return;
  }
  resetStream(stream_id, error_code);
}

void ClientSession::consume(int32_t stream_id, size_t n) {
  if (n > 0) (void)nghttp2_session_consume(session_.get(), stream_id, n);
}

void ClientSession::terminate(uint32_t error_code) {
  (void)nghttp2_session_terminate_session(session_.get(), error_code);
}

Status ClientSession::receive(const char* data, size_t len) {
  ssize_t rv =
      nghttp2_session_mem_recv(session_.get(), reinterpret_cast<const uint8_t*>(data), len);
  if (rv < 0) {
    return Status::error(std::string("h2 upstream: ") + nghttp2_strerror(static_cast<int>(rv)));
  }
  return Status::ok();
}

Status ClientSession::send(std::string& out, size_t max) {
  while (out.size() < max) {
    const uint8_t* p = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_.get(), &p);
    if (n < 0) {
      return Status::error(std::string("h2 upstream: ") + nghttp2_strerror(static_cast<int>(n)));
    }
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  }
  return Status::ok();
}

bool ClientSession::alive() const {
  return nghttp2_session_want_read(session_.get()) != 0 ||
         nghttp2_session_want_write(session_.get()) != 0;
}

bool ClientSession::goingAway() const {
  return nghttp2_session_check_request_allowed(session_.get()) == 0;
}

uint32_t ClientSession::maxConcurrentStreams() const {
  return nghttp2_session_get_remote_settings(session_.get(),
                                             NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

ssize_t ClientSession::nghOnRead(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                                 uint32_t* flags, nghttp2_data_source* source, void* user) {
  (void)source;  // the same pointer as StreamState::body, which a reset clears
  return self(user).readBody(stream_id, buf, length, flags);
}

ssize_t ClientSession::readBody(int32_t stream_id, uint8_t* buf, size_t length, uint32_t* flags) {
  StreamState* st = stream(stream_id);
  // A reset stream is never read again; nghttp2 drops its DATA once the RST is out.
  if (st == nullptr || st->body == nullptr) return NGHTTP2_ERR_DEFERRED;
  RequestBody& body = *st->body;
  size_t n = body.take(buf, length);
  if (body.ended() && body.unsent() == 0) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    st->request_ended = true;
    if (!body.trailers().empty()) {
      // gRPC and friends: the request ends with a HEADERS frame (RFC 9113 §8.1), which
      // nghttp2 lets us queue from inside this callback.
      NvList nva;
      nva.addAll(body.trailers());
      if (nghttp2_submit_trailer(session_.get(), stream_id, nva.data(), nva.size()) == 0) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      }
    }
    return static_cast<ssize_t>(n);
  }
  if (n == 0) return NGHTTP2_ERR_DEFERRED;
  return static_cast<ssize_t>(n);
}

int ClientSession::nghOnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  if (StreamState* st = self(user).stream(frame->hd.stream_id)) st->head.clear();
  return 0;
}

int ClientSession::nghOnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                               size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                               void* user) {
  StreamState* st = self(user).stream(frame->hd.stream_id);
  if (st == nullptr) return 0;
  std::string_view n = view(name, namelen);
  std::string_view v = view(value, valuelen);
  http::MessageHead& head = st->head;
  if (n == ":status") {
    // nghttp2 has checked it is three digits (its HTTP messaging rules are on).
    int status = 0;
    std::from_chars(v.data(), v.data() + v.size(), status);
    head.status = status;
    return 0;
  }
  if (!n.empty() && n[0] == ':') return 0;
  if (n == "content-length") {
    uint64_t len = 0;
    auto r = std::from_chars(v.data(), v.data() + v.size(), len);
    if (r.ec == std::errc() && r.ptr == v.data() + v.size()) {
      head.has_content_length = true;
      head.content_length = len;
    }
  }
  head.appendHeaderName(n.data(), n.size());
  head.appendHeaderValue(v.data(), v.size());
  head.endHeader();
  return 0;
}

int ClientSession::nghOnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  self(user).onFrameRecv(*frame);
  return 0;
}

void ClientSession::onFrameRecv(const nghttp2_frame& frame) {
  int32_t id = frame.hd.stream_id;
  bool end_stream = (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (end_stream && (frame.hd.type == NGHTTP2_HEADERS || frame.hd.type == NGHTTP2_DATA)) {
    if (StreamState* st = stream(id)) st->response_ended = true;
  }
  switch (frame.hd.type) {
    case NGHTTP2_HEADERS: {
      StreamState* st = stream(id);
      if (st == nullptr) return;
      st->head.finishHeaders();
      st->head.http_major = 2;
      st->head.http_minor = 0;
      if (st->final_head_seen) {
        callbacks_.onResponseTrailers(id, st->head);
      } else {
        if (st->head.status >= 200) st->final_head_seen = true;
        callbacks_.onResponseHead(id, st->head, end_stream);
      }
      // The callback may have reset the stream; look it up again.
      st = stream(id);
      if (end_stream && st != nullptr && st->final_head_seen) callbacks_.onResponseEnd(id);
      return;
    }
    case NGHTTP2_DATA: {
      StreamState* st = stream(id);
      if (end_stream && st != nullptr && st->final_head_seen) callbacks_.onResponseEnd(id);
      return;
    }
    case NGHTTP2_RST_STREAM:
      counters_.resets_received.add(frame.rst_stream.error_code);
      if (StreamState* st = stream(id)) st->reset_by_peer = true;
      return;
    case NGHTTP2_SETTINGS:
      if ((frame.hd.flags & NGHTTP2_FLAG_ACK) == 0) settings_received_ = true;
      return;
    case NGHTTP2_GOAWAY:
      counters_.goaways_received.add(frame.goaway.error_code);
      callbacks_.onGoaway(frame.goaway.last_stream_id, frame.goaway.error_code);
      return;
    default:
      return;
  }
}

int ClientSession::nghOnDataChunk(nghttp2_session* s, uint8_t, int32_t stream_id,
                                  const uint8_t* data, size_t len, void* user) {
  ClientSession& me = self(user);
  if (me.stream(stream_id) == nullptr) {
    // Nobody will ever consume these bytes: give the connection window back now.
    (void)nghttp2_session_consume_connection(s, len);
    return 0;
  }
  me.callbacks_.onResponseData(stream_id, reinterpret_cast<const char*>(data), len);
  return 0;
}

int ClientSession::nghOnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                                    void* user) {
  ClientSession& me = self(user);
  auto it = me.streams_.find(stream_id);
  if (it == me.streams_.end()) return 0;
  bool by_peer = it->second.reset_by_peer;
  bool abandoned = it->second.abandoned;
  me.streams_.erase(it);
  if (!abandoned) me.callbacks_.onStreamClose(stream_id, error_code, by_peer);
  return 0;
}

int ClientSession::nghOnFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    self(user).counters_.goaways_sent.add(frame->goaway.error_code);
  }
  return 0;
}

int ClientSession::nghOnFrameNotSend(nghttp2_session*, const nghttp2_frame* frame, int,
                                     void* user) {
  ClientSession& me = self(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto it = me.streams_.find(frame->hd.stream_id);
  if (it == me.streams_.end()) return 0;
  bool abandoned = it->second.abandoned;
  me.streams_.erase(it);
  if (!abandoned) me.callbacks_.onRequestNotSent(frame->hd.stream_id);
  return 0;
}

}  // namespace proxy::http2
