#include "proxy/demo/intake_h2_session.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "proxy/demo/intake_routes.h"
#include "proxy/demo/intake_server.h"
#include "proxy/demo/intake_util.h"

namespace proxy::demo {
namespace {

using std::chrono::milliseconds;

constexpr size_t kBodyHeadBytes = 64;
// gRPC's length prefix: a compressed flag and a 4-byte big-endian length
// (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md, "Length-Prefixed-Message").
constexpr size_t kGrpcPrefixBytes = 5;
// x-demo-reset sends at most this many body bytes before RST_STREAM, so the cut is
// always mid-response.
constexpr size_t kResetAfterBytes = 10;
// Flow-control windows like Go's net/http2 server (APM Server's): 1 MiB, so a 16 MiB
// message needs a few round trips, not hundreds.
constexpr int32_t kWindowBytes = 1 << 20;
// gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).
constexpr int kGrpcInternal = 13;
constexpr int kGrpcUnimplemented = 12;

const char* const kOtlpExportPaths[] = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int64_t parseNumber(const std::string& text, int64_t fallback) {
  char* end = nullptr;
  long long n = std::strtoll(text.c_str(), &end, 10);
  return end == text.c_str() || n < 0 ? fallback : n;
}

std::string grpcPrefix(uint32_t length) {
  std::string out(kGrpcPrefixBytes, '\0');
  for (int i = 0; i < 4; ++i) out[1 + i] = static_cast<char>((length >> (8 * (3 - i))) & 0xff);
  return out;
}

// nghttp2 copies names and values on submit (no NGHTTP2_NV_FLAG_NO_COPY_*), so the
// vector may point into `headers` only for the duration of the call.
std::vector<nghttp2_nv> toNv(const HeaderPairs& headers) {
  std::vector<nghttp2_nv> nv;
  nv.reserve(headers.size());
  for (const auto& [name, value] : headers) {
    nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                  reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                  value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  return nv;
}

}  // namespace

// One request/response exchange. Owned by IntakeH2Session::streams_ from its first
// HEADERS frame until nghttp2 closes the stream.
struct IntakeH2Session::Stream {
  int32_t id = 0;
  uint64_t seq = 0;
  std::string method;
  std::string path;
  std::string content_type;
  std::string origin;
  std::string request_id;  // x-request-id, for the log line
  HeaderPairs headers;     // regular headers only, as received
  bool te_trailers = false;
  bool complete = false;
  bool recorded = false;
  uint64_t body_bytes = 0;
  uint64_t body_lines = 0;
  std::string body_head;

  // The request body's gRPC framing, followed byte by byte (never buffered).
  bool grpc = false;
  int64_t grpc_messages = 0;
  size_t grpc_prefix_have = 0;
  uint8_t grpc_prefix[kGrpcPrefixBytes] = {};
  uint64_t grpc_body_left = 0;

  // Knobs (x-demo-*).
  int grpc_status = -1;
  milliseconds delay{0};
  int64_t reset_code = -1;
  bool goaway = false;
  int64_t echo_size = -1;
  std::string extra_trailer;  // x-demo-trailer: sent back as a trailer of a gRPC answer
  std::string behavior;

  // The response: head, a body of `prefix` then `generated` pattern bytes, trailers.
  HeaderPairs head;
  std::string prefix;
  uint64_t generated = 0;
  uint64_t sent = 0;
  HeaderPairs trailers;
  int status = 0;
  int answered_grpc_status = -1;
  bool reset_submitted = false;

  uint64_t bodySize() const { return prefix.size() + generated; }
  void consumeGrpc(const uint8_t* data, size_t len);
};

void IntakeH2Session::Stream::consumeGrpc(const uint8_t* data, size_t len) {
  while (len > 0) {
    if (grpc_prefix_have < kGrpcPrefixBytes) {
      size_t take = std::min(len, kGrpcPrefixBytes - grpc_prefix_have);
      std::memcpy(grpc_prefix + grpc_prefix_have, data, take);
      grpc_prefix_have += take;
      data += take;
      len -= take;
      if (grpc_prefix_have < kGrpcPrefixBytes) return;
      grpc_body_left = (uint64_t{grpc_prefix[1]} << 24) | (uint64_t{grpc_prefix[2]} << 16) |
                       (uint64_t{grpc_prefix[3]} << 8) | uint64_t{grpc_prefix[4]};
    } else {
      size_t take = static_cast<size_t>(std::min<uint64_t>(len, grpc_body_left));
      grpc_body_left -= take;
      data += take;
      len -= take;
    }
    if (grpc_prefix_have == kGrpcPrefixBytes && grpc_body_left == 0) {
      ++grpc_messages;
      grpc_prefix_have = 0;
    }
  }
}

IntakeH2Session::IntakeH2Session(IntakeServer& server, uint64_t conn_id,
                                 uint32_t max_concurrent_streams)
    : server_(server), conn_id_(conn_id) {
  nghttp2_session_callbacks* callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) std::abort();
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, ngOnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, ngOnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, ngOnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, ngOnDataChunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, ngOnFrameSend);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, ngOnStreamClose);
  int rc = nghttp2_session_server_new(&session_, callbacks, this);
  nghttp2_session_callbacks_del(callbacks);
  if (rc != 0) std::abort();  // only NGHTTP2_ERR_NOMEM
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kWindowBytes},
  };
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2) != 0 ||
      nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kWindowBytes) != 0) {
    std::abort();
  }
}

IntakeH2Session::~IntakeH2Session() { nghttp2_session_del(session_); }

bool IntakeH2Session::receive(const char* data, size_t len) {
  ssize_t rc = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), len);
  if (rc < 0 && !server_.quiet()) {
    std::fprintf(stderr, "conn=%llu h2_error=%s\n", static_cast<unsigned long long>(conn_id_),
                 nghttp2_strerror(static_cast<int>(rc)));
  }
  return rc >= 0;
}

bool IntakeH2Session::produce(std::string* out, size_t limit) {
  while (out->size() < limit) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) return false;
    if (n == 0) break;
    out->append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  return true;
}

bool IntakeH2Session::finished() const {
  return nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0;
}

std::optional<IntakeH2Session::Clock::time_point> IntakeH2Session::nextDeadline() const {
  if (delayed_.empty()) return std::nullopt;
  return delayed_.begin()->first;
}

void IntakeH2Session::onDeadline(Clock::time_point now) {
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    int32_t id = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    if (Stream* stream = find(id)) answer(*stream);  // else the client reset it meanwhile
  }
}

void IntakeH2Session::abandon() {
  for (auto& entry : streams_) {
    if (!entry.second->recorded) writeRecord(*entry.second);
  }
}

IntakeH2Session::Stream* IntakeH2Session::find(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? nullptr : it->second.get();
}

int IntakeH2Session::ngOnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<IntakeH2Session*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto stream = std::make_unique<Stream>();
  stream->id = frame->hd.stream_id;
  stream->seq = ++self->seq_;
  self->streams_[stream->id] = std::move(stream);
  return 0;
}

int IntakeH2Session::ngOnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                                size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                                void* user) {
  auto* self = static_cast<IntakeH2Session*>(user);
  // Request trailers (a second HEADERS frame) are accepted and ignored.
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  if (Stream* stream = self->find(frame->hd.stream_id)) {
    self->onHeader(*stream, std::string(reinterpret_cast<const char*>(name), namelen),
                   std::string(reinterpret_cast<const char*>(value), valuelen));
  }
  return 0;
}

void IntakeH2Session::onHeader(Stream& s, std::string name, std::string value) {
  // nghttp2 has already checked the header block (RFC 9113 §8.2): names are lower case.
  if (name == ":method") {
    s.method = std::move(value);
  } else if (name == ":path") {
    s.path = std::move(value);
  } else if (!name.empty() && name[0] == ':') {
    return;  // :scheme, :authority
  } else {
    if (name == "content-type") {
      s.content_type = value;
      s.grpc = lower(value).rfind("application/grpc", 0) == 0;
    } else if (name == "origin") {
      s.origin = value;
    } else if (name == "x-request-id") {
      s.request_id = value;
    } else if (name == "te") {
      s.te_trailers = lower(value) == "trailers";
    } else if (name == "x-demo-grpc-status") {
      s.grpc_status = static_cast<int>(parseNumber(value, kGrpcInternal));
    } else if (name == "x-demo-delay-ms" || name == "x-demo-delay") {
      s.delay = parseDelay(value);
    } else if (name == "x-demo-reset") {
      s.reset_code = parseNumber(value, NGHTTP2_INTERNAL_ERROR);
    } else if (name == "x-demo-goaway") {
      s.goaway = true;
      if (goaway_stream_ == 0) goaway_stream_ = s.id;
    } else if (name == "x-demo-echo-size") {
      s.echo_size = parseNumber(value, 0);
    } else if (name == "x-demo-refuse-once") {
      // The first request with this key (server-wide) is refused, retries are served:
      // what a client's or proxy's one retry of REFUSED_STREAM needs to be tested.
      if (server_.firstSighting(value)) s.reset_code = NGHTTP2_REFUSED_STREAM;
    } else if (name == "x-demo-trailer") {
      s.extra_trailer = value;
    }
    if (name.rfind("x-demo-", 0) == 0) {
      if (!s.behavior.empty()) s.behavior += ',';
      s.behavior += name.substr(7) + "=" + value;
    }
    s.headers.emplace_back(std::move(name), std::move(value));
  }
}

int IntakeH2Session::ngOnDataChunk(nghttp2_session*, uint8_t, int32_t stream_id,
                                   const uint8_t* data, size_t len, void* user) {
  auto* self = static_cast<IntakeH2Session*>(user);
  Stream* s = self->find(stream_id);
  if (s == nullptr) return 0;
  s->body_bytes += len;
  s->body_lines += countNewlines(reinterpret_cast<const char*>(data), len);
  if (s->body_head.size() < kBodyHeadBytes) {
    s->body_head.append(reinterpret_cast<const char*>(data),
                        std::min(len, kBodyHeadBytes - s->body_head.size()));
  }
  if (s->grpc) s->consumeGrpc(data, len);
  return 0;
}

int IntakeH2Session::ngOnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<IntakeH2Session*>(user);
  bool ends_request = (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
                      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (!ends_request) return 0;
  if (Stream* stream = self->find(frame->hd.stream_id)) self->onRequestComplete(*stream);
  return 0;
}

void IntakeH2Session::onRequestComplete(Stream& s) {
  s.complete = true;
  writeRecord(s);
  // Streams above the GOAWAY's last-stream-id are never processed: nghttp2 closes them
  // when the GOAWAY is sent, and the client may retry them elsewhere (RFC 9113 §6.8).
  if (goaway_stream_ != 0 && s.id > goaway_stream_) return;
  if (s.delay.count() > 0) {
    delayed_.emplace(Clock::now() + s.delay, s.id);
  } else {
    answer(s);
  }
}

void IntakeH2Session::answer(Stream& s) {
  if (s.grpc) {
    prepareGrpc(s);
  } else if (s.echo_size >= 0) {
    s.status = 200;
    s.head = {{":status", "200"},
              {"content-type", "application/octet-stream"},
              {"content-length", std::to_string(s.echo_size)}};
    s.generated = static_cast<uint64_t>(s.echo_size);
  } else {
    RouteAnswer a = routeAnswer(s.method, s.path.substr(0, s.path.find('?')), s.origin);
    s.status = a.status;
    s.head = {{":status", std::to_string(a.status)}};
    for (auto& [name, value] : a.headers) s.head.emplace_back(lower(name), value);
    if (!a.content_type.empty()) s.head.emplace_back("content-type", a.content_type);
    if (a.status != 204) s.head.emplace_back("content-length", std::to_string(a.body.size()));
    if (s.method != "HEAD") s.prefix = std::move(a.body);
  }
  submit(s);
}

void IntakeH2Session::prepareGrpc(Stream& s) {
  // gRPC answers HTTP 200 and carries the call's outcome in grpc-status; a call that
  // fails before any message is "trailers-only": one HEADERS frame with END_STREAM.
  s.status = 200;
  s.head = {{":status", "200"}, {"content-type", "application/grpc"}};
  int status = 0;
  std::string message;
  bool known = std::any_of(std::begin(kOtlpExportPaths), std::end(kOtlpExportPaths),
                           [&](const char* p) { return s.path == p; });
  if (s.grpc_status >= 0) {
    status = s.grpc_status;
    message = "x-demo-grpc-status";
  } else if (s.grpc_prefix_have != 0 || s.grpc_body_left != 0) {
    status = kGrpcInternal;
    message = "the request ended inside a gRPC message";
  } else if (!known || s.method != "POST") {
    status = kGrpcUnimplemented;
    message = "unknown method " + s.path;
  }
  s.answered_grpc_status = status;
  if (status != 0) {
    s.head.emplace_back("grpc-status", std::to_string(status));
    s.head.emplace_back("grpc-message", message);
    if (!s.extra_trailer.empty()) s.head.emplace_back("x-demo-trailer", s.extra_trailer);
    return;
  }
  // An empty Export*ServiceResponse (no partial_success) is a zero-length message; with
  // x-demo-echo-size the message carries that many pattern bytes instead.
  uint64_t size = s.echo_size > 0 ? static_cast<uint64_t>(s.echo_size) : 0;
  s.prefix = grpcPrefix(static_cast<uint32_t>(size));
  s.generated = size;
  s.trailers = {{"grpc-status", "0"}};
  if (!s.extra_trailer.empty()) s.trailers.emplace_back("x-demo-trailer", s.extra_trailer);
}

void IntakeH2Session::submit(Stream& s) {
  logLine(s);
  if (s.reset_code == NGHTTP2_REFUSED_STREAM) {
    // REFUSED_STREAM promises the request was not processed (RFC 9113 §8.7): no answer.
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_REFUSED_STREAM);
    s.reset_submitted = true;
    return;
  }
  if (s.reset_code >= 0) {
    // Drop what would end the stream cleanly: the reset must be the only ending.
    s.head.erase(std::remove_if(s.head.begin(), s.head.end(),
                                [](const auto& h) { return h.first.rfind("grpc-", 0) == 0; }),
                 s.head.end());
  }
  bool has_body = s.bodySize() > 0 || !s.trailers.empty() || s.reset_code >= 0;
  nghttp2_data_provider provider{};
  provider.source.ptr = &s;
  provider.read_callback = ngReadBody;
  std::vector<nghttp2_nv> nv = toNv(s.head);
  int rc =
      nghttp2_submit_response(session_, s.id, nv.data(), nv.size(), has_body ? &provider : nullptr);
  if (rc != 0) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
  }
}

ssize_t IntakeH2Session::ngReadBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                    uint32_t* flags, nghttp2_data_source* source, void* user) {
  return static_cast<IntakeH2Session*>(user)->readBody(*static_cast<Stream*>(source->ptr), buf,
                                                       length, flags);
}

ssize_t IntakeH2Session::readBody(Stream& s, uint8_t* buf, size_t length, uint32_t* flags) {
  bool resetting = s.reset_code >= 0;
  // A resetting stream sends one short DATA frame; ngOnFrameSend then submits the reset.
  if (resetting && (s.sent > 0 || s.bodySize() == 0)) return NGHTTP2_ERR_DEFERRED;
  size_t n = static_cast<size_t>(std::min<uint64_t>(length, s.bodySize() - s.sent));
  if (resetting) n = std::min(n, kResetAfterBytes);
  size_t done = 0;
  if (s.sent < s.prefix.size()) {
    done = std::min(n, s.prefix.size() - static_cast<size_t>(s.sent));
    std::memcpy(buf, s.prefix.data() + s.sent, done);
  }
  if (done < n) {
    std::string more = pattern(s.sent + done - s.prefix.size(), n - done);
    std::memcpy(buf + done, more.data(), more.size());
  }
  s.sent += n;
  if (!resetting && s.sent == s.bodySize()) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!s.trailers.empty()) {
      std::vector<nghttp2_nv> nv = toNv(s.trailers);
      if (nghttp2_submit_trailer(session_, s.id, nv.data(), nv.size()) == 0) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      }
    }
  }
  return static_cast<ssize_t>(n);
}

int IntakeH2Session::ngOnFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  static_cast<IntakeH2Session*>(user)->onFrameSent(*frame);
  return 0;
}

void IntakeH2Session::onFrameSent(const nghttp2_frame& frame) {
  Stream* s = find(frame.hd.stream_id);
  if (s == nullptr || s->reset_code < 0 || s->reset_submitted) return;
  bool body_started =
      frame.hd.type == NGHTTP2_DATA || (frame.hd.type == NGHTTP2_HEADERS && s->bodySize() == 0);
  if (!body_started) return;
  s->reset_submitted = true;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s->id,
                            static_cast<uint32_t>(s->reset_code));
}

int IntakeH2Session::ngOnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                                     void* user) {
  static_cast<IntakeH2Session*>(user)->onStreamClosed(stream_id, error_code);
  return 0;
}

void IntakeH2Session::onStreamClosed(int32_t stream_id, uint32_t) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  if (!it->second->recorded) writeRecord(*it->second);
  streams_.erase(it);
  if (stream_id == goaway_stream_) {
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, goaway_stream_, NGHTTP2_NO_ERROR, nullptr,
                          0);
  }
}

void IntakeH2Session::writeRecord(Stream& s) {
  RequestRecord record;
  record.conn = conn_id_;
  record.seq = s.seq;
  record.protocol = "h2c";
  record.stream = s.id;
  record.method = s.method;
  record.target = s.path;
  record.headers = &s.headers;
  record.body_bytes = s.body_bytes;
  record.body_lines = s.body_lines;
  record.body_head = s.body_head;
  record.complete = s.complete;
  record.behavior = s.behavior.empty() ? "normal" : s.behavior;
  record.grpc_messages = s.grpc ? s.grpc_messages : -1;
  server_.record(toJsonLine(record));
  s.recorded = true;
}

void IntakeH2Session::logLine(const Stream& s) {
  if (server_.quiet()) return;
  std::fprintf(stderr,
               "conn=%llu stream=%d protocol=h2c method=%s target=%s status=%d grpc_status=%d"
               " body_bytes=%llu request_id=%s te_trailers=%s behavior=%s\n",
               static_cast<unsigned long long>(conn_id_), s.id, s.method.c_str(), s.path.c_str(),
               s.status, s.answered_grpc_status, static_cast<unsigned long long>(s.body_bytes),
               s.request_id.empty() ? "-" : s.request_id.c_str(), s.te_trailers ? "yes" : "no",
               s.behavior.empty() ? "normal" : s.behavior.c_str());
}

}  // namespace proxy::demo
