// IntakeConnection's HTTP/1.1 half: llhttp callbacks, the X-Demo-* behaviours, the answers
// (routes, generated and echoed bodies, errors) and the per-request record and log line.
// The transport (reading, writing, timers, h2c) is intake_connection.cc.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "proxy/demo/intake_connection.h"
#include "proxy/demo/intake_routes.h"
#include "proxy/demo/intake_server.h"
#include "proxy/demo/intake_util.h"

namespace proxy::demo {
namespace {

constexpr size_t kBodyHeadBytes = 64;

std::string hex(uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(n));
  return buf;
}

}  // namespace

void IntakeConnection::parse(const char* data, size_t len) {
  llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  if (closing() || err == HPE_OK) return;
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    const char* pos = llhttp_get_error_pos(&parser_);
    if (state_ == State::kDiscarding || pos == nullptr || err == HPE_PAUSED_UPGRADE) {
      pending_.clear();
    } else {
      pending_.assign(pos, static_cast<size_t>(data + len - pos));
    }
    return;
  }
  onParseError(err);
}

void IntakeConnection::onParseError(llhttp_errno_t err) {
  if (!server_.quiet()) {
    std::fprintf(stderr, "conn=%llu parse_error=%s reason=\"%s\"\n",
                 static_cast<unsigned long long>(id_), llhttp_errno_name(err),
                 llhttp_get_error_reason(&parser_));
  }
  if (req_.head_done && !req_.recorded) writeRecord();
  if (responding_) {  // a response is already on the wire: nothing clean left to say
    close();
    return;
  }
  answerAndDiscard("400 Bad Request", R"({"error":"bad request"})");
  pending_.clear();
}

int IntakeConnection::llOnMessageBegin(llhttp_t* p) {
  auto* self = static_cast<IntakeConnection*>(p->data);
  self->req_ = Request{};
  ++self->seq_;
  return 0;
}

int IntakeConnection::llOnUrl(llhttp_t* p, const char* at, size_t len) {
  static_cast<IntakeConnection*>(p->data)->req_.target.append(at, len);
  return 0;
}

int IntakeConnection::llOnHeaderField(llhttp_t* p, const char* at, size_t len) {
  Request& r = static_cast<IntakeConnection*>(p->data)->req_;
  if (r.headers.empty() || r.last_was_value) r.headers.emplace_back();
  r.headers.back().first.append(at, len);
  r.last_was_value = false;
  return 0;
}

int IntakeConnection::llOnHeaderValue(llhttp_t* p, const char* at, size_t len) {
  Request& r = static_cast<IntakeConnection*>(p->data)->req_;
  if (r.headers.empty()) return 0;
  r.headers.back().second.append(at, len);
  r.last_was_value = true;
  return 0;
}

int IntakeConnection::llOnHeadersComplete(llhttp_t* p) {
  return static_cast<IntakeConnection*>(p->data)->onHeadersComplete();
}

int IntakeConnection::llOnBody(llhttp_t* p, const char* at, size_t len) {
  return static_cast<IntakeConnection*>(p->data)->onBody(at, len);
}

int IntakeConnection::llOnMessageComplete(llhttp_t* p) {
  return static_cast<IntakeConnection*>(p->data)->onMessageComplete();
}

int IntakeConnection::onHeadersComplete() {
  Request& r = req_;
  r.method = llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(&parser_)));
  r.head_done = true;
  r.keep_alive = llhttp_should_keep_alive(&parser_) != 0;
  for (const auto& [name, value] : r.headers) {
    if (equalsIgnoreCase(name, "x-demo-behavior")) {
      static const std::pair<const char*, Behavior> kNames[] = {
          {"silent", Behavior::kSilent},
          {"close-mid-body", Behavior::kCloseMidBody},
          {"close-mid-chunked", Behavior::kCloseMidChunked},
          {"chunked-response", Behavior::kChunkedResponse},
          {"large-response", Behavior::kLargeResponse},
          {"echo", Behavior::kEcho},
          {"slow-reader", Behavior::kSlowReader},
          {"continue", Behavior::kNormal},  // 100-continue is always honoured
          {"early-response", Behavior::kEarlyResponse},
      };
      for (const auto& [text, behavior] : kNames) {
        if (equalsIgnoreCase(value, text)) {
          r.behavior = behavior;
          r.behavior_name = text;
        }
      }
    } else if (equalsIgnoreCase(name, "x-demo-delay")) {
      r.delay = parseDelay(value);
    } else if (equalsIgnoreCase(name, "x-demo-size")) {
      r.size = std::strtoull(value.c_str(), nullptr, 10);
    } else if (equalsIgnoreCase(name, "expect")) {
      r.expect_continue = equalsIgnoreCase(value, "100-continue");
    } else if (equalsIgnoreCase(name, "origin")) {
      r.origin = value;
    }
  }

  if (r.behavior == Behavior::kEarlyResponse) {
    // Answer without reading the body, as APM Server does for an oversized request; no
    // 100 Continue is sent, so a client that waits for one never sends the body.
    writeRecord();
    logLine(413);
    answerAndDiscard("413 Request Entity Too Large", R"({"error":"request body too large"})");
    return HPE_PAUSED;
  }
  // Go's net/http sends "100 Continue" when the handler first reads the body; every
  // handler here reads it, so answer at once (RFC 9110 §10.1.1).
  if (r.expect_continue) queueWrite("HTTP/1.1 100 Continue\r\n\r\n");
  if (r.behavior == Behavior::kEcho) {
    responding_ = true;
    queueWrite(std::string("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n") +
               (r.keep_alive ? "" : "Connection: close\r\n") +
               "Transfer-Encoding: chunked\r\n\r\n");
  }
  return 0;
}

int IntakeConnection::onBody(const char* at, size_t len) {
  Request& r = req_;
  r.body_bytes += len;
  r.body_lines += countNewlines(at, len);
  if (r.body_head.size() < kBodyHeadBytes) {
    r.body_head.append(at, std::min(len, kBodyHeadBytes - r.body_head.size()));
  }
  if (r.behavior == Behavior::kEcho && len > 0) {
    std::string chunk = hex(len) + "\r\n";
    chunk.append(at, len);
    chunk += "\r\n";
    queueWrite(std::move(chunk));
  }
  return 0;
}

int IntakeConnection::onMessageComplete() {
  Request& r = req_;
  r.complete = true;
  r.keep_alive = llhttp_should_keep_alive(&parser_) != 0 && parser_.upgrade == 0;
  writeRecord();
  paused_ = true;
  if (r.behavior == Behavior::kEcho) {
    logLine(200);
    queueWrite("0\r\n\r\n");
    response_queued_ = true;
    after_ = r.keep_alive ? AfterResponse::kNextRequest : AfterResponse::kLinger;
  } else if (r.delay.count() > 0) {
    startTimer(TimerUse::kDelay, r.delay);
  } else {
    respond();
  }
  return HPE_PAUSED;
}

void IntakeConnection::respond() {
  if (closing()) return;
  responding_ = true;
  after_ = req_.keep_alive ? AfterResponse::kNextRequest : AfterResponse::kLinger;
  const std::string close_header = req_.keep_alive ? "" : "Connection: close\r\n";
  switch (req_.behavior) {
    case Behavior::kSilent:
      logLine(0);
      state_ = State::kDiscarding;  // never answer; notice when the peer goes away
      pending_.clear();
      updateReading();
      return;
    case Behavior::kCloseMidBody:
      logLine(200);
      queueWrite(
          "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
          "Content-Length: 100000\r\n\r\n" +
          pattern(0, 10));
      response_queued_ = true;
      after_ = AfterResponse::kClose;
      return;
    case Behavior::kCloseMidChunked:
      logLine(200);
      queueWrite(
          "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
          "Transfer-Encoding: chunked\r\n\r\na\r\n" +
          pattern(0, 10) + "\r\n");
      response_queued_ = true;
      after_ = AfterResponse::kClose;
      return;
    case Behavior::kChunkedResponse:
      logLine(200);
      queueWrite("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" + close_header +
                 "Transfer-Encoding: chunked\r\n\r\n");
      gen_chunked_ = true;
      gen_offset_ = 0;
      gen_remaining_ = req_.size * 1024;
      fillGeneratedBody();
      return;
    case Behavior::kLargeResponse:
      logLine(200);
      queueWrite("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" + close_header +
                 "Content-Length: " + std::to_string(req_.size) + "\r\n\r\n");
      gen_chunked_ = false;
      gen_offset_ = 0;
      gen_remaining_ = req_.size;
      fillGeneratedBody();
      return;
    default:
      respondRoute();
      return;
  }
}

void IntakeConnection::respondRoute() {
  const std::string& target = req_.target;
  RouteAnswer a = routeAnswer(req_.method, target.substr(0, target.find('?')), req_.origin);
  logLine(a.status);
  std::string out = "HTTP/1.1 " + std::to_string(a.status) + " " + a.reason + "\r\n";
  for (const auto& [name, value] : a.headers) out += name + ": " + value + "\r\n";
  if (!a.content_type.empty()) out += "Content-Type: " + a.content_type + "\r\n";
  if (!req_.keep_alive) out += "Connection: close\r\n";
  if (a.status != 204) out += "Content-Length: " + std::to_string(a.body.size()) + "\r\n";
  out += "\r\n";
  if (req_.method != "HEAD") out += a.body;
  queueWrite(std::move(out));
  response_queued_ = true;
}

void IntakeConnection::fillGeneratedBody() {
  while (gen_remaining_ > 0 && queued_bytes_ < kHighWatermark) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(gen_remaining_, kGeneratedChunk));
    std::string out;
    if (gen_chunked_) out = hex(n) + "\r\n";
    out += pattern(gen_offset_, n);
    if (gen_chunked_) out += "\r\n";
    gen_offset_ += n;
    gen_remaining_ -= n;
    queueWrite(std::move(out));
  }
  if (gen_remaining_ == 0 && !response_queued_) {
    if (gen_chunked_) queueWrite("0\r\n\r\n");
    response_queued_ = true;
  }
}

void IntakeConnection::answerAndDiscard(const char* status, const std::string& body) {
  queueWrite(std::string("HTTP/1.1 ") + status +
             "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body);
  responding_ = true;
  response_queued_ = true;
  after_ = AfterResponse::kLinger;
  state_ = State::kDiscarding;
}

void IntakeConnection::writeRecord() {
  RequestRecord record;
  record.conn = id_;
  record.seq = seq_;
  record.protocol = "http/1.1";
  record.method = req_.method;
  record.target = req_.target;
  record.headers = &req_.headers;
  record.body_bytes = req_.body_bytes;
  record.body_lines = req_.body_lines;
  record.body_head = req_.body_head;
  record.complete = req_.complete;
  record.behavior = req_.behavior_name;
  server_.record(toJsonLine(record));
  req_.recorded = true;
}

void IntakeConnection::logLine(int status) {
  if (server_.quiet()) return;
  std::fprintf(stderr,
               "conn=%llu seq=%llu method=%s target=%s status=%d body_bytes=%llu"
               " behavior=%s\n",
               static_cast<unsigned long long>(id_), static_cast<unsigned long long>(seq_),
               req_.method.c_str(), req_.target.c_str(), status,
               static_cast<unsigned long long>(req_.body_bytes), req_.behavior_name.c_str());
}

}  // namespace proxy::demo
