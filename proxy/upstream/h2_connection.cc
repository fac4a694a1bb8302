#include "proxy/upstream/h2_connection.h"

#include <algorithm>
#include <string>
#include <utility>

#include "proxy/common/check.h"
#include "proxy/common/log.h"
#include "proxy/upstream/h2_pool.h"
#include "proxy/upstream/h2_stream.h"

namespace proxy::upstream {
namespace {

// Frames are produced only while fewer bytes than this wait for the socket, so request
// bodies stay queued in their streams, where the downstream's watermarks see them,
// instead of piling up in this connection's write buffer.
constexpr size_t kWriteHighWater = 64 * 1024;
// Streams per connection at most, whatever the upstream allows: beyond this, a second
// connection spreads the load (and bounds the harm of one connection's loss).
constexpr size_t kMaxStreamsPerConnection = 1000;

uint64_t toMillis(config::Millis d) { return static_cast<uint64_t>(d.count()); }

}  // namespace

H2Connection::H2Connection(H2Pool& pool, uint64_t id)
    : pool_(pool), id_(id), writer_(stream(), *this) {
  auto created = http2::ClientSession::create(*this, http2::ClientOptions{});
  PROXY_CHECK(created.isOk(), "cannot create an nghttp2 client session (out of memory)");
  codec_ = std::move(created).value();
}

H2Connection::~H2Connection() {
  PROXY_CHECK(open_handles_ == 0, "h2 upstream connection freed with open handles");
}

Status H2Connection::connect() {
  uv_loop_t* loop = pool_.loop();
  uv_timer_init(loop, &timer_);  // cannot fail
  timer_.data = this;
  uv_timer_init(loop, &flush_timer_);
  flush_timer_.data = this;
  open_handles_ += 2;
  Status st = pool_.connector().connect(handle_, this, this, attempt_);
  if (attempt_.handle_open) ++open_handles_;
  if (!st) return st;
  uv_timer_start(&timer_, &H2Connection::uvOnTimer, toMillis(pool_.config().connect_timeout), 0);
  return Status::ok();
}

size_t H2Connection::room() const {
  // No stream before the upstream's SETTINGS: a request sent beyond a limit it has not
  // told us yet would be refused (and retried) for nothing. It costs one round trip on
  // a new connection only.
  if (state_ != State::kReady || !settings_seen_ || codec_->goingAway()) return 0;
  size_t cap = std::min<size_t>(codec_->maxConcurrentStreams(), kMaxStreamsPerConnection);
  size_t open = codec_->openStreams();
  return cap > open ? cap - open : 0;
}

bool H2Connection::attach(H2Stream* stream) {
  int32_t id = codec_->submitRequest(stream->headers(), stream->body());
  if (id < 0) {
    log::debug("h2 upstream: request not submitted",
               {{"upstream", id_}, {"error", nghttp2_strerror(id)}});
    return false;
  }
  streams_[id] = stream;
  stream->attached(this, id);
  if (idle_timer_on_) {
    uv_timer_stop(&timer_);
    idle_timer_on_ = false;
  }
  scheduleFlush();
  return true;
}

void H2Connection::detach(H2Stream* stream, uint32_t reset_code) {
  int32_t id = stream->streamId();
  streams_.erase(id);
  codec_->abandon(id, reset_code);
  // Bytes the downstream never consumed would otherwise shrink the connection window
  // for good (the stream's own window dies with it).
  codec_->consume(id, stream->unconsumedBytes());
  stream->detached();
  scheduleFlush();
}

void H2Connection::resumeBody(H2Stream* stream) {
  codec_->resumeBody(stream->streamId());
  scheduleFlush();
}

void H2Connection::consume(H2Stream* stream, size_t n) {
  codec_->consume(stream->streamId(), n);
  scheduleFlush();
}

void H2Connection::scheduleFlush() {
  // While connecting, onConnect() flushes; once closing, nothing is sent.
  if (state_ == State::kConnecting || state_ == State::kClosing) return;
  // Already due: starting it again would only move it within libuv's timer heap (a
  // gRPC call asks four to six times: open, body, end, window credit). The callback
  // runs with the timer stopped, so a flush asked for from inside it schedules anew.
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&flush_timer_)) != 0) return;
  uv_timer_start(&flush_timer_, &H2Connection::uvOnFlushTimer, 0, 0);
}

void H2Connection::close(const char* detail) {
  if (closing()) return;
  log::debug(
      "h2 upstream connection closes",
      {{"upstream", id_}, {"streams", static_cast<uint64_t>(streams_.size())}, {"detail", detail}});
  state_ = State::kClosing;
  pool_.connector().abandon(attempt_);
  std::vector<H2Stream*> left;
  for (auto& entry : streams_) left.push_back(entry.second);
  for (H2Stream* s : left) {
    // A failure may cancel another stream of this list: fail() ignores a done stream.
    s->fail(s->finalHeadSeen() ? UpstreamError::kClosedMidBody : UpstreamError::kClosedEarly,
            detail);
  }
  auto closeHandle = [this](uv_handle_t* h) {
    if (!uv_is_closing(h)) uv_close(h, &H2Connection::uvOnClose);
  };
  closeHandle(reinterpret_cast<uv_handle_t*>(&timer_));
  closeHandle(reinterpret_cast<uv_handle_t*>(&flush_timer_));
  if (attempt_.handle_open) closeHandle(reinterpret_cast<uv_handle_t*>(&handle_));
}

void H2Connection::uvOnClose(uv_handle_t* h) {
  auto* self = static_cast<H2Connection*>(h->data);
  if (--self->open_handles_ == 0) self->pool_.erase(self);
}

void H2Connection::onUpstreamConnected(const Status& status) {
  if (closing()) return;
  uv_timer_stop(&timer_);
  if (!status) {
    pool_.stats().upstream_connect_failures.add();
    close(status.message().c_str());
    pool_.onConnectFailed(this, status.message().c_str());
    return;
  }
  state_ = State::kReady;
  // A real HTTP/2 server sends SETTINGS first thing (RFC 9113 §3.4); one that does not
  // within connect_timeout is treated as a failed connect.
  uv_timer_start(&timer_, &H2Connection::uvOnTimer, toMillis(pool_.config().connect_timeout), 0);
  uv_read_start(stream(), &H2Connection::uvOnAlloc, &H2Connection::uvOnRead);
  flush();  // the preface and our SETTINGS
  if (closing()) {
    lost("the upstream reset the connection");  // the preface could not be written
    return;
  }
  pool_.dispatch();
  afterEvent();
}

void H2Connection::uvOnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  *buf = static_cast<H2Connection*>(h->data)->pool_.readBuffer().get();
}

void H2Connection::uvOnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  static_cast<H2Connection*>(s->data)->onRead(nread, buf);
}

void H2Connection::onRead(ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0 || closing()) return;
  if (nread < 0) {
    lost(nread == UV_EOF ? "upstream closed the connection" : uv_strerror(static_cast<int>(nread)));
    return;
  }
  Status st = codec_->receive(buf->base, static_cast<size_t>(nread));
  if (!st) {
    lost(st.message().c_str());
    return;
  }
  if (!settings_seen_ && codec_->remoteSettingsReceived()) {
    settings_seen_ = true;
    uv_timer_stop(&timer_);
    pool_.onConnected();
  }
  flush();  // WINDOW_UPDATEs, SETTINGS ACK, RST_STREAMs the events caused
  // Each sink flushes what this read produced for it (ResponseSink::onUpstreamEventDone).
  std::vector<H2Stream*> touched;
  touched.swap(touched_);
  for (H2Stream* s : touched) s->eventDone();
  if (!closing()) afterEvent();
  pool_.dispatch();
}

void H2Connection::lost(const char* detail) {
  if (settings_seen_) {
    close(detail);
    pool_.dispatch();
    return;
  }
  // Accepted, then closed, reset or answered with something that is not HTTP/2 before
  // its first SETTINGS (a server restarting, a full backlog, not an h2c port): a failed
  // connect, so the waiting calls fail once every address has failed in a row, instead
  // of a new connection being dialled at once, again and again. (Already closed when the
  // preface could not be written.)
  std::string why = std::string(detail) + " before its SETTINGS";
  pool_.connector().failedAfterConnect(attempt_);
  close(why.c_str());
  pool_.stats().upstream_connect_failures.add();
  pool_.onConnectFailed(this, why.c_str());
}

void H2Connection::flush() {
  if (state_ != State::kReady && state_ != State::kDraining) return;
  while (writer_.queued() < kWriteHighWater) {
    Status st = codec_->send(out_, kWriteHighWater);
    if (!st) {
      close(st.message().c_str());
      return;
    }
    if (out_.empty()) break;
    int rc = writer_.write(out_);
    out_.clear();
    if (rc < 0) {
      close(uv_strerror(rc));
      return;
    }
  }
  std::vector<H2Stream*> live;
  for (auto& entry : streams_) live.push_back(entry.second);
  for (H2Stream* s : live) s->notifyIfDrained();
}

void H2Connection::afterEvent() {
  if (closing()) return;
  if (!codec_->alive()) {
    // Both sides are done: a GOAWAY was exchanged and its last stream closed.
    close("h2 upstream session over");
    return;
  }
  bool idle = streams_.empty() && codec_->openStreams() == 0;
  if (idle && state_ == State::kDraining) {
    close("upstream sent GOAWAY and the last stream ended");
  } else if (idle && state_ == State::kReady && settings_seen_ && !idle_timer_on_) {
    uv_timer_start(&timer_, &H2Connection::uvOnTimer, toMillis(pool_.config().idle_timeout), 0);
    idle_timer_on_ = true;
  }
}

void H2Connection::onWriteDone(int status) {
  if (status == UV_ECANCELED || closing()) return;
  if (status < 0) {
    lost(uv_strerror(status));
    return;
  }
  flush();
  if (!closing()) afterEvent();
  pool_.dispatch();
}

void H2Connection::uvOnFlushTimer(uv_timer_t* t) {
  static_cast<H2Connection*>(t->data)->onFlushTimer();
}

void H2Connection::onFlushTimer() {
  flush();
  if (!closing()) afterEvent();
  pool_.dispatch();
}

void H2Connection::uvOnTimer(uv_timer_t* t) { static_cast<H2Connection*>(t->data)->onTimer(); }

void H2Connection::onTimer() {
  if (state_ == State::kConnecting) {
    pool_.stats().upstream_connect_failures.add();
    pool_.connector().timedOut(attempt_);
    close("connect timeout");
    pool_.onConnectFailed(this, "connect timeout");
    return;
  }
  if (state_ == State::kReady && !settings_seen_) {
    pool_.stats().upstream_connect_failures.add();
    pool_.connector().failedAfterConnect(attempt_);
    close("no SETTINGS from the upstream within connect_timeout (not HTTP/2?)");
    pool_.onConnectFailed(this, "no SETTINGS from the upstream within connect_timeout");
    return;
  }
  idle_timer_on_ = false;
  if (state_ == State::kReady && streams_.empty() && codec_->openStreams() == 0) {
    close("idle");
  }
}

H2Stream* H2Connection::find(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

void H2Connection::onResponseHead(int32_t id, http::MessageHead& head, bool) {
  H2Stream* s = find(id);
  if (s == nullptr) return;
  touched_.push_back(s);
  s->deliverHead(head);
}

void H2Connection::onResponseData(int32_t id, const char* data, size_t len) {
  H2Stream* s = find(id);
  if (s == nullptr) {
    codec_->consume(id, len);  // nobody will: return the credit now
    return;
  }
  touched_.push_back(s);
  s->deliverData(data, len);
}

void H2Connection::onResponseTrailers(int32_t id, http::MessageHead& trailers) {
  if (H2Stream* s = find(id)) s->deliverTrailers(trailers);
}

void H2Connection::onResponseEnd(int32_t id) {
  if (H2Stream* s = find(id)) s->complete();
}

void H2Connection::onStreamClose(int32_t id, uint32_t error_code, bool reset_by_peer) {
  H2Stream* s = find(id);
  if (s == nullptr) return;
  if (error_code == NGHTTP2_REFUSED_STREAM && !s->responseStarted()) {
    // RFC 9113 §8.7: a refused stream, or one above a GOAWAY's last-stream-id, was not
    // processed, so sending it again is safe.
    detach(s, NGHTTP2_NO_ERROR);
    if (s->prepareRetry(reset_by_peer)) {
      pool_.countRetry();
      pool_.requeue(s);
      return;
    }
    // Counted with the requests no upstream stream could take: the "upstream errors"
    // alert then sees an upstream that refuses everything.
    pool_.stats().upstream_overloaded.add();
    s->fail(UpstreamError::kRefused,
            reset_by_peer ? "upstream refused the stream (REFUSED_STREAM); not resent again"
                          : "upstream closed the connection (GOAWAY) before the stream; not "
                            "resent again");
    return;
  }
  std::string detail =
      error_code == NGHTTP2_NO_ERROR
          ? std::string("upstream ended the stream before the response")
          : std::string("upstream reset the stream: ") + http2::errorCodeName(error_code);
  // Not REFUSED_STREAM (above): the upstream may have processed the call. The client
  // hears the reset's own meaning, whether or not a response head came first.
  UpstreamError error = error_code == NGHTTP2_CANCEL ? UpstreamError::kStreamCancelled
                        : error_code == NGHTTP2_ENHANCE_YOUR_CALM
                            ? UpstreamError::kStreamRefusedBusy
                            : UpstreamError::kStreamReset;
  s->fail(error, detail.c_str());
}

void H2Connection::onRequestNotSent(int32_t id) {
  H2Stream* s = find(id);
  if (s == nullptr) return;
  detach(s, NGHTTP2_NO_ERROR);
  pool_.requeue(s);  // the upstream never saw it: not a retry
}

void H2Connection::onGoaway(int32_t last_stream_id, uint32_t error_code) {
  log::debug("h2 upstream sent GOAWAY", {{"upstream", id_},
                                         {"last_stream_id", static_cast<int64_t>(last_stream_id)},
                                         {"error", http2::errorCodeName(error_code)}});
  if (state_ == State::kReady) state_ = State::kDraining;
}

}  // namespace proxy::upstream
