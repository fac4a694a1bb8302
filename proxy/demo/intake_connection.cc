#include "proxy/demo/intake_connection.h"

#include <algorithm>
#include <cstdio>

#include "proxy/demo/intake_h2_session.h"
#include "proxy/demo/intake_server.h"
#include "proxy/demo/intake_util.h"

// The transport half of IntakeConnection: accept, reading and the protocol sniff, the h2c
// pump, the write queue with its watermark, lingering close and the timer. The HTTP/1.1
// half (parsing, X-Demo-* behaviours, answers, records) is intake_http1.cc.
namespace proxy::demo {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kSlowReaderPace{100};
// After a Connection: close answer we half-close and drain input for a while instead of
// closing at once: closing a socket with unread input sends RST, which can destroy the
// answer before the client reads it (RFC 9112 §9.6, "lingering close").
constexpr milliseconds kLinger{2000};

}  // namespace

IntakeConnection::IntakeConnection(IntakeServer& server, uint64_t id) : server_(server), id_(id) {}

IntakeConnection::~IntakeConnection() = default;

void IntakeConnection::accept(uv_stream_t* listener) {
  if (uv_tcp_init(server_.loop(), &socket_) != 0 || uv_timer_init(server_.loop(), &timer_) != 0) {
    std::fprintf(stderr, "apm-intake-demo: handle init failed\n");
    std::abort();
  }
  socket_.data = this;
  timer_.data = this;
  open_handles_ = 2;
  int rc = uv_accept(listener, reinterpret_cast<uv_stream_t*>(&socket_));
  if (rc != 0) {
    std::fprintf(stderr, "apm-intake-demo: accept: %s\n", uv_err_name(rc));
    close();
    return;
  }
  uv_tcp_nodelay(&socket_, 1);
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = llOnMessageBegin;
  settings_.on_url = llOnUrl;
  settings_.on_header_field = llOnHeaderField;
  settings_.on_header_value = llOnHeaderValue;
  settings_.on_headers_complete = llOnHeadersComplete;
  settings_.on_body = llOnBody;
  settings_.on_message_complete = llOnMessageComplete;
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
  updateReading();
}

void IntakeConnection::close() {
  if (closing()) return;
  if (req_.head_done && !req_.recorded) writeRecord();
  if (h2_ != nullptr) h2_->abandon();
  state_ = State::kClosing;
  reading_ = false;
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&socket_), uvOnClose);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), uvOnClose);
}

void IntakeConnection::uvOnClose(uv_handle_t* handle) {
  auto* self = static_cast<IntakeConnection*>(handle->data);
  if (--self->open_handles_ == 0) self->server_.erase(self);
}

void IntakeConnection::uvOnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  *buf = static_cast<IntakeConnection*>(handle->data)->server_.readBuffer();
}

void IntakeConnection::uvOnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  static_cast<IntakeConnection*>(stream->data)->onRead(nread, buf);
}

void IntakeConnection::onRead(ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0) return;
  if (nread < 0) {  // EOF or error: nothing more will be answered on this connection
    close();
    return;
  }
  if (state_ == State::kDiscarding) return;
  switch (protocol_) {
    case Protocol::kSniffing:
      sniff(buf->base, static_cast<size_t>(nread));
      break;
    case Protocol::kHttp1:
      parse(buf->base, static_cast<size_t>(nread));
      break;
    case Protocol::kH2c:
      receiveH2(buf->base, static_cast<size_t>(nread));
      break;
  }
  if (closing()) return;
  if (req_.behavior == Behavior::kSlowReader && req_.head_done && !req_.complete &&
      state_ == State::kReading) {
    pace_wait_ = true;
    startTimer(TimerUse::kPace, kSlowReaderPace);
  }
  updateReading();
}

void IntakeConnection::sniff(const char* data, size_t len) {
  // The client connection preface (RFC 9113 §3.4); no HTTP/1.1 request line starts so.
  static const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  constexpr size_t kPrefaceBytes = sizeof kPreface - 1;
  sniffed_.append(data, len);
  size_t n = std::min(sniffed_.size(), kPrefaceBytes);
  if (sniffed_.compare(0, n, kPreface, n) != 0) {
    protocol_ = Protocol::kHttp1;
  } else if (n == kPrefaceBytes) {
    protocol_ = Protocol::kH2c;
    h2_ = std::make_unique<IntakeH2Session>(server_, id_, server_.maxConcurrentStreams());
  } else {
    return;  // still a prefix of the preface: wait for more
  }
  std::string first = std::move(sniffed_);
  sniffed_.clear();
  sniffed_.shrink_to_fit();
  if (protocol_ == Protocol::kHttp1) {
    parse(first.data(), first.size());
  } else {
    receiveH2(first.data(), first.size());
  }
}

void IntakeConnection::receiveH2(const char* data, size_t len) {
  if (!h2_->receive(data, len)) {
    close();
    return;
  }
  pumpH2();
}

void IntakeConnection::pumpH2() {
  if (closing() || state_ == State::kDiscarding) return;
  while (queued_bytes_ < kHighWatermark) {
    std::string out;
    if (!h2_->produce(&out, kGeneratedChunk)) {
      close();
      return;
    }
    if (out.empty()) break;
    queueWrite(std::move(out));
    if (closing()) return;
  }
  if (auto due = h2_->nextDeadline()) {
    auto wait = std::chrono::ceil<milliseconds>(*due - IntakeH2Session::Clock::now());
    startTimer(TimerUse::kH2Deadline, std::max(wait, milliseconds{0}));
  } else if (timer_use_ == TimerUse::kH2Deadline) {
    uv_timer_stop(&timer_);
    timer_use_ = TimerUse::kNone;
  }
  // After a GOAWAY and its last stream, nghttp2 wants neither to read nor to write.
  if (h2_->finished() && queued_bytes_ == 0) startLinger();
}

void IntakeConnection::queueWrite(std::string bytes) {
  if (closing()) return;
  auto* op = new WriteOp{};
  op->bytes = std::move(bytes);
  op->req.data = this;
  uv_buf_t buf = uv_buf_init(op->bytes.data(), static_cast<unsigned>(op->bytes.size()));
  int rc = uv_write(&op->req, reinterpret_cast<uv_stream_t*>(&socket_), &buf, 1, uvOnWrite);
  if (rc != 0) {
    delete op;
    close();
    return;
  }
  queued_bytes_ += op->bytes.size();
}

void IntakeConnection::uvOnWrite(uv_write_t* req, int status) {
  auto* op = reinterpret_cast<WriteOp*>(req);  // req is the first member
  static_cast<IntakeConnection*>(req->data)->onWrite(op, status);
}

void IntakeConnection::onWrite(WriteOp* op, int status) {
  queued_bytes_ -= op->bytes.size();
  delete op;
  if (status == UV_ECANCELED || closing()) return;
  if (status < 0) {
    close();
    return;
  }
  if (h2_ != nullptr) {
    pumpH2();
    if (closing()) return;
    updateReading();
    return;
  }
  if (gen_remaining_ > 0) fillGeneratedBody();
  maybeFinishResponse();
  if (closing()) return;
  updateReading();
}

void IntakeConnection::maybeFinishResponse() {
  if (!response_queued_ || queued_bytes_ > 0) return;
  response_queued_ = false;
  responding_ = false;
  switch (after_) {
    case AfterResponse::kClose:
      close();
      return;
    case AfterResponse::kLinger:
      startLinger();
      return;
    case AfterResponse::kNextRequest:
      resumeParsing();
      return;
  }
}

void IntakeConnection::startLinger() {
  state_ = State::kDiscarding;
  pending_.clear();
  if (!shutdown_sent_) {
    shutdown_sent_ = true;
    auto* req = new uv_shutdown_t{};
    if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&socket_), uvOnShutdown) != 0) {
      delete req;
      close();
      return;
    }
  }
  startTimer(TimerUse::kLinger, kLinger);
  updateReading();
}

void IntakeConnection::uvOnShutdown(uv_shutdown_t* req, int) { delete req; }

void IntakeConnection::resumeParsing() {
  paused_ = false;
  llhttp_resume(&parser_);
  std::string data = std::move(pending_);
  pending_.clear();
  if (!data.empty()) parse(data.data(), data.size());
  if (closing()) return;
  updateReading();
}

void IntakeConnection::updateReading() {
  if (closing()) return;
  bool want =
      state_ == State::kDiscarding || (!paused_ && !pace_wait_ && queued_bytes_ < kHighWatermark);
  auto* stream = reinterpret_cast<uv_stream_t*>(&socket_);
  if (want && !reading_) {
    if (uv_read_start(stream, uvOnAlloc, uvOnRead) != 0) {
      close();
      return;
    }
    reading_ = true;
  } else if (!want && reading_) {
    uv_read_stop(stream);
    reading_ = false;
  }
}

void IntakeConnection::startTimer(TimerUse use, milliseconds after) {
  timer_use_ = use;
  uv_timer_start(&timer_, uvOnTimer, static_cast<uint64_t>(after.count()), 0);
}

void IntakeConnection::uvOnTimer(uv_timer_t* timer) {
  static_cast<IntakeConnection*>(timer->data)->onTimer();
}

void IntakeConnection::onTimer() {
  TimerUse use = timer_use_;
  timer_use_ = TimerUse::kNone;
  switch (use) {
    case TimerUse::kDelay:
      respond();
      return;
    case TimerUse::kPace:
      pace_wait_ = false;
      updateReading();
      return;
    case TimerUse::kLinger:
      close();
      return;
    case TimerUse::kH2Deadline:
      h2_->onDeadline(IntakeH2Session::Clock::now());
      pumpH2();
      if (closing()) return;
      updateReading();
      return;
    case TimerUse::kNone:
      return;
  }
}

}  // namespace proxy::demo
