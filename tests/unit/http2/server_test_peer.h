// Test peers for ServerSession: a recorder of its callbacks, a real nghttp2 client session
// wired to it in memory, and a raw frame writer/reader for hostile input nghttp2's own client
// would never send. Test-only; header-only so the *_test.cc glob needs no helper source.
#pragma once

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/http/http2/server_session.h"

namespace proxy::http2::test {

// Records every ServerSession callback; optionally answers or consumes as it goes.
class Recorder : public ServerSession::Callbacks {
 public:
  struct Request {
    RequestHead head;
    std::string body;
    HeaderFields trailers;
    bool ended = false;
    bool closed = false;
    uint32_t close_code = 0;
    int drained = 0;
  };

  void onRequestHead(int32_t id, RequestHead& head) override {
    ++heads;
    requests[id].head = std::move(head);
    order.push_back("head " + std::to_string(id));
  }
  void onRequestData(int32_t id, const char* data, size_t len) override {
    requests[id].body.append(data, len);
    order.push_back("data " + std::to_string(id));
    if (session != nullptr && consume_all) session->consume(id, len);
  }
  void onRequestTrailers(int32_t id, HeaderFields& trailers) override {
    requests[id].trailers = std::move(trailers);
    order.push_back("trailers " + std::to_string(id));
  }
  void onRequestEnd(int32_t id) override {
    requests[id].ended = true;
    order.push_back("end " + std::to_string(id));
  }
  void onStreamClose(int32_t id, uint32_t code) override {
    requests[id].closed = true;
    requests[id].close_code = code;
    ++closes;
    order.push_back("close " + std::to_string(id));
  }
  void onResponseDrained(int32_t id) override { ++requests[id].drained; }

  ServerSession* session = nullptr;
  bool consume_all = true;
  std::map<int32_t, Request> requests;
  std::vector<std::string> order;
  int heads = 0;
  int closes = 0;
};

// One frame as read back from bytes.
struct Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  int32_t stream_id = 0;
  std::string payload;
  // RST_STREAM and GOAWAY: the error code; GOAWAY: the last stream id too.
  uint32_t errorCode() const {
    size_t at = type == NGHTTP2_GOAWAY ? 4 : 0;
    return readU32(at);
  }
  int32_t lastStreamId() const { return static_cast<int32_t>(readU32(0) & 0x7fffffffu); }
  uint32_t readU32(size_t at) const {
    uint32_t v = 0;
    for (size_t i = 0; i < 4 && at + i < payload.size(); ++i) {
      v = (v << 8) | static_cast<uint8_t>(payload[at + i]);
    }
    return v;
  }
};

// Splits server output into frames (whole frames only: produce() never splits one).
inline std::vector<Frame> parseFrames(const std::string& bytes) {
  std::vector<Frame> frames;
  size_t at = 0;
  while (at + 9 <= bytes.size()) {
    auto byte = [&](size_t i) { return static_cast<uint8_t>(bytes[at + i]); };
    size_t len = (size_t{byte(0)} << 16) | (size_t{byte(1)} << 8) | byte(2);
    Frame f;
    f.type = byte(3);
    f.flags = byte(4);
    f.stream_id =
        static_cast<int32_t>(((uint32_t{byte(5)} & 0x7f) << 24) | (uint32_t{byte(6)} << 16) |
                             (uint32_t{byte(7)} << 8) | byte(8));
    if (at + 9 + len > bytes.size()) break;
    f.payload = bytes.substr(at + 9, len);
    frames.push_back(std::move(f));
    at += 9 + len;
  }
  return frames;
}

inline size_t countFrames(const std::vector<Frame>& frames, uint8_t type) {
  size_t n = 0;
  for (const Frame& f : frames) n += f.type == type ? 1 : 0;
  return n;
}

// The first frame of `type` (on stream `id` unless id < 0), copied out.
inline std::optional<Frame> findFrame(const std::vector<Frame>& frames, uint8_t type,
                                      int32_t id = -1) {
  for (const Frame& f : frames) {
    if (f.type == type && (id < 0 || f.stream_id == id)) return f;
  }
  return std::nullopt;
}

// Builds raw client bytes: the preface, frames, and HPACK blocks (nghttp2's deflater).
class RawClient {
 public:
  RawClient() { nghttp2_hd_deflate_new(&deflater_, 4096); }
  ~RawClient() { nghttp2_hd_deflate_del(deflater_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  static std::string preface() {
    return std::string(NGHTTP2_CLIENT_MAGIC) + frame(NGHTTP2_SETTINGS, 0, 0, "");
  }
  static std::string frame(uint8_t type, uint8_t flags, int32_t id, const std::string& payload) {
    std::string f;
    put(f, static_cast<uint32_t>(payload.size()), 3);
    f.push_back(static_cast<char>(type));
    f.push_back(static_cast<char>(flags));
    put(f, static_cast<uint32_t>(id), 4);
    return f + payload;
  }
  static std::string rst(int32_t id, uint32_t code) {
    std::string p;
    put(p, code, 4);
    return frame(NGHTTP2_RST_STREAM, 0, id, p);
  }
  static void put(std::string& out, uint32_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  // One HPACK "literal field without indexing, new name" (RFC 7541 §6.2.2), exactly as
  // given (upper case included); name and value shorter than 127 bytes.
  static std::string literal(const std::string& name, const std::string& value) {
    std::string out(1, '\0');
    out.push_back(static_cast<char>(name.size()));
    out += name;
    out.push_back(static_cast<char>(value.size()));
    return out + value;
  }
  // HPACK integer with an n-bit prefix (RFC 7541 §5.1) after the given high bits.
  static std::string integer(uint8_t high_bits, int prefix_bits, size_t v) {
    std::string out;
    size_t max = (size_t{1} << prefix_bits) - 1;
    if (v < max) return std::string(1, static_cast<char>(high_bits | v));
    out.push_back(static_cast<char>(high_bits | max));
    v -= max;
    while (v >= 128) {
      out.push_back(static_cast<char>((v % 128) | 128));
      v /= 128;
    }
    out.push_back(static_cast<char>(v));
    return out;
  }
  // HPACK block for `fields` (pseudo-headers first, as given).
  std::string block(const HeaderFields& fields) {
    NvList nva;
    nva.addAll(fields);
    std::string out(nghttp2_hd_deflate_bound(deflater_, nva.data(), nva.size()), '\0');
    ssize_t n = nghttp2_hd_deflate_hd(deflater_, reinterpret_cast<uint8_t*>(&out[0]), out.size(),
                                      nva.data(), nva.size());
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
  }
  // A GET of "/" whose block uses no HPACK table (valid whatever the table holds).
  static std::string plainGet(int32_t id) {
    std::string block = literal(":method", "GET") + literal(":scheme", "https") +
                        literal(":authority", "a.test") + literal(":path", "/");
    return frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, id, block);
  }
  // A HEADERS frame (END_HEADERS) for a GET of `path` plus `extra` fields.
  std::string get(int32_t id, const HeaderFields& extra = {}, bool end_stream = true) {
    HeaderFields fields = {
        {":method", "GET"}, {":scheme", "https"}, {":authority", "a.test"}, {":path", "/"}};
    fields.insert(fields.end(), extra.begin(), extra.end());
    uint8_t flags = NGHTTP2_FLAG_END_HEADERS | (end_stream ? NGHTTP2_FLAG_END_STREAM : 0);
    return frame(NGHTTP2_HEADERS, flags, id, block(fields));
  }

 private:
  nghttp2_hd_deflater* deflater_ = nullptr;
};

// A real nghttp2 client session, the other end of a ServerSession in memory.
class Client {
 public:
  struct Response {
    int status = 0;
    HeaderFields headers;
    HeaderFields trailers;
    std::string body;
    int header_frames = 0;
    bool ended = false;
    bool closed = false;
    uint32_t close_code = 0;
  };

  // `settings` go in the client's SETTINGS; auto_window = false makes the client open its
  // windows only through consume() (to keep a response waiting in the server).
  explicit Client(std::vector<nghttp2_settings_entry> settings = {}, bool auto_window = true) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, onHeader);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, onFrameRecv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, onData);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, onClose);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, auto_window ? 0 : 1);
    nghttp2_session_client_new2(&session_, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  }
  ~Client() { nghttp2_session_del(session_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  nghttp2_session* raw() { return session_; }

  // Submits a request; a body (and then trailers) when `body` is non-null.
  int32_t request(const HeaderFields& fields, const std::string* body = nullptr,
                  const HeaderFields* trailers = nullptr) {
    NvList nva;
    nva.addAll(fields);
    if (body == nullptr) {
      return nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), nullptr, this);
    }
    auto src = std::make_unique<Body>();
    src->data = *body;
    if (trailers != nullptr) src->trailers = *trailers;
    nghttp2_data_provider prd{};
    prd.source.ptr = src.get();
    prd.read_callback = readBody;
    bodies_.push_back(std::move(src));
    return nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), &prd, this);
  }
  static HeaderFields get(const std::string& path = "/") {
    return {{":method", "GET"}, {":scheme", "https"}, {":authority", "a.test"}, {":path", path}};
  }
  static HeaderFields post(const std::string& path = "/") {
    return {{":method", "POST"}, {":scheme", "https"}, {":authority", "a.test"}, {":path", path}};
  }

  // Everything the client wants to send now.
  std::string send() {
    std::string out;
    for (;;) {
      const uint8_t* p = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &p);
      if (n <= 0) break;
      out.append(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    }
    return out;
  }
  bool recv(const std::string& bytes) {
    ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(bytes.data()),
                                         bytes.size());
    return n == static_cast<ssize_t>(bytes.size());
  }

  std::map<int32_t, Response> responses;
  int goaways = 0;
  int32_t goaway_last_id = -1;
  uint32_t goaway_code = 0;
  int rst_received = 0;
  int pings = 0;

 private:
  struct Body {
    std::string data;
    size_t pos = 0;
    HeaderFields trailers;
  };
  static Client& self(void* user) { return *static_cast<Client*>(user); }
  static ssize_t readBody(nghttp2_session* session, int32_t id, uint8_t* buf, size_t len,
                          uint32_t* flags, nghttp2_data_source* source, void*) {
    Body& b = *static_cast<Body*>(source->ptr);
    size_t n = std::min(len, b.data.size() - b.pos);
    std::memcpy(buf, b.data.data() + b.pos, n);
    b.pos += n;
    if (b.pos == b.data.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!b.trailers.empty()) {
        NvList nva;
        nva.addAll(b.trailers);
        nghttp2_submit_trailer(session, id, nva.data(), nva.size());
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      }
    }
    return static_cast<ssize_t>(n);
  }
  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    Response& r = self(user).responses[frame->hd.stream_id];
    std::string n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      r.status = std::stoi(v);
    } else if (r.header_frames > 0 && r.status != 0) {
      r.trailers.push_back({n, v});
    } else {
      r.headers.push_back({n, v});
    }
    return 0;
  }
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    Client& c = self(user);
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
        ++c.responses[frame->hd.stream_id].header_frames;
        if (end) c.responses[frame->hd.stream_id].ended = true;
        break;
      case NGHTTP2_DATA:
        if (end) c.responses[frame->hd.stream_id].ended = true;
        break;
      case NGHTTP2_GOAWAY:
        ++c.goaways;
        c.goaway_last_id = frame->goaway.last_stream_id;
        c.goaway_code = frame->goaway.error_code;
        break;
      case NGHTTP2_RST_STREAM:
        ++c.rst_received;
        break;
      case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) ++c.pings;
        break;
      default:
        break;
    }
    return 0;
  }
  static int onData(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                    void* user) {
    self(user).responses[id].body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }
  static int onClose(nghttp2_session*, int32_t id, uint32_t code, void* user) {
    Response& r = self(user).responses[id];
    r.closed = true;
    r.close_code = code;
    return 0;
  }

  nghttp2_session* session_ = nullptr;
  std::vector<std::unique_ptr<Body>> bodies_;
};

// Moves bytes both ways until neither side has anything to say (bounded rounds).
inline void exchange(Client& client, ServerSession& server) {
  for (int round = 0; round < 10000; ++round) {
    std::string up = client.send();
    if (!up.empty()) server.receive(up.data(), up.size());
    std::string down;
    server.produce(down, 1 << 20);
    if (!down.empty()) client.recv(down);
    if (up.empty() && down.empty()) return;
  }
}

}  // namespace proxy::http2::test
