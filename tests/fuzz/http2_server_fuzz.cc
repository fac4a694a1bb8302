// libFuzzer target for the HTTP/2 server session (proxy/http/http2/server_session.h): client
// bytes in, request events out, responses in, frames out.
// The first input byte holds options; the rest is what the client sends, cut into
// receive() calls of sizes drawn from a generator the options seed:
//   bit 0  prepend the client connection preface (so seeds and mutations are frames)
//   bit 1  answer a request from inside onRequestEnd (re-entrant use of the session)
//   bit 2  give request body bytes back at once (else the client's windows fill up)
//   bit 3  start a graceful shutdown halfway through
//   bits 4-7 seed the chunk sizes and the sizes of produce() calls
// Between receive() calls the proxy side answers every finished request (200, a body,
// sometimes trailers) and reads frames out with produce().
// Properties checked (a failure aborts, and libFuzzer keeps the input):
// - callbacks follow the stream life cycle: one head per stream, body only between head and
//   end, nothing after onStreamClose, which comes once;
// - open streams stay within max_concurrent_streams;
// - memory stays bounded: nghttp2's live allocations (counted through the session's
//   allocator) and the bytes produced, which only grow with the input and the responses.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "proxy/http/http2/server_session.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using proxy::http2::HeaderFields;
using proxy::http2::ServerSession;

constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kMaxLiveBytes = 64u << 20;

// nghttp2_mem that counts live bytes: a size header before every block.
struct Counted {
  size_t live = 0;
  size_t peak = 0;
};
Counted g_mem;

void* countedMalloc(size_t size, void*) {
  auto* p = static_cast<size_t*>(std::malloc(size + sizeof(max_align_t)));
  if (p == nullptr) return nullptr;
  *p = size;
  g_mem.live += size;
  if (g_mem.live > g_mem.peak) g_mem.peak = g_mem.live;
  return reinterpret_cast<char*>(p) + sizeof(max_align_t);
}
void countedFree(void* ptr, void*) {
  if (ptr == nullptr) return;
  auto* p = reinterpret_cast<size_t*>(static_cast<char*>(ptr) - sizeof(max_align_t));
  g_mem.live -= *p;
  std::free(p);
}
void* countedCalloc(size_t n, size_t size, void* user) {
  if (size != 0 && n > SIZE_MAX / size) return nullptr;
  void* p = countedMalloc(n * size, user);
  if (p != nullptr) std::memset(p, 0, n * size);
  return p;
}
void* countedRealloc(void* ptr, size_t size, void* user) {
  if (ptr == nullptr) return countedMalloc(size, user);
  auto* old = reinterpret_cast<size_t*>(static_cast<char*>(ptr) - sizeof(max_align_t));
  void* p = countedMalloc(size, user);
  if (p == nullptr) return nullptr;
  std::memcpy(p, ptr, *old < size ? *old : size);
  countedFree(ptr, user);
  return p;
}
nghttp2_mem g_allocator{nullptr, countedMalloc, countedFree, countedCalloc, countedRealloc};

// Small deterministic generator for chunk and produce sizes.
struct Lcg {
  uint32_t state;
  uint32_t next(uint32_t bound) {
    state = state * 1664525u + 1013904223u;
    return bound == 0 ? 0 : (state >> 8) % bound;
  }
};

struct StreamState {
  bool head = false;
  bool ended = false;
  bool answered = false;
  bool closed = false;
};

class Proxy : public ServerSession::Callbacks {
 public:
  explicit Proxy(uint8_t options) : options_(options) {}
  void attach(ServerSession* session) { session_ = session; }

  void onRequestHead(int32_t id, proxy::http2::RequestHead&) override {
    StreamState& s = streams_[id];
    FUZZ_CHECK(!s.closed, "a head for a closed stream");
    FUZZ_CHECK(!s.head, "two heads for one stream");
    s.head = true;
  }
  void onRequestData(int32_t id, const char*, size_t len) override {
    StreamState& s = live(id);
    FUZZ_CHECK(s.head && !s.ended, "request body outside head..end");
    if (options_ & 4) session_->consume(id, len);
  }
  void onRequestTrailers(int32_t id, HeaderFields&) override {
    StreamState& s = live(id);
    FUZZ_CHECK(s.head && !s.ended, "request trailers outside head..end");
  }
  void onRequestEnd(int32_t id) override {
    StreamState& s = live(id);
    FUZZ_CHECK(s.head && !s.ended, "request end twice or before the head");
    s.ended = true;
    if (options_ & 2) answer(id, s);
  }
  void onStreamClose(int32_t id, uint32_t) override {
    auto it = streams_.find(id);
    FUZZ_CHECK(it != streams_.end() && it->second.head, "close of a stream never announced");
    FUZZ_CHECK(!it->second.closed, "a stream closed twice");
    it->second.closed = true;
  }
  void onResponseDrained(int32_t id) override { live(id); }

  // Answers every request that ended and was not answered yet.
  void answerAll() {
    for (auto& [id, s] : streams_) {
      if (s.ended && !s.closed && !s.answered) answer(id, s);
    }
  }
  size_t submitted() const { return submitted_; }

 private:
  StreamState& live(int32_t id) {
    auto it = streams_.find(id);
    FUZZ_CHECK(it != streams_.end() && !it->second.closed, "a callback for a closed stream");
    return it->second;
  }
  void answer(int32_t id, StreamState& s) {
    s.answered = true;
    HeaderFields headers{{"content-type", "application/json"}, {"X-Upper", "v"}};
    bool body = id % 3 != 0;
    session_->submitResponse(id, id % 5 == 0 ? 503 : 202, headers, !body);
    if (!body) return;
    std::string data(static_cast<size_t>(id % 7) * 3000 + 1, 'x');
    submitted_ += data.size();
    session_->sendData(id, data.data(), data.size());
    HeaderFields trailers{{"grpc-status", "0"}};
    session_->endResponse(id, id % 2 ? &trailers : nullptr);
  }

  uint8_t options_;
  ServerSession* session_ = nullptr;
  std::map<int32_t, StreamState> streams_;
  size_t submitted_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint8_t options = data[0];
  std::string input;
  if (options & 1) input.assign(kPreface, sizeof kPreface - 1);
  input.append(reinterpret_cast<const char*>(data + 1), size - 1);

  g_mem = Counted{};
  proxy::http2::ServerSettings settings;
  settings.allocator = &g_allocator;
  Proxy proxy(options);
  std::unique_ptr<ServerSession> session = ServerSession::create(settings, proxy);
  FUZZ_CHECK(session != nullptr, "no session without memory pressure");
  proxy.attach(session.get());

  Lcg rng{options * 2654435761u};
  std::string out;
  size_t produced = 0;
  size_t pos = 0;
  bool ok = true;
  while (pos < input.size() && ok) {
    size_t n = 1 + rng.next(rng.next(2) ? 64 : 4096);
    if (n > input.size() - pos) n = input.size() - pos;
    ok = session->receive(input.data() + pos, n);
    pos += n;
    if ((options & 8) && pos >= input.size() / 2 && pos - n < input.size() / 2) {
      session->submitGracefulShutdown();
    }
    proxy.answerAll();
    out.clear();
    produced += session->produce(out, 1 + rng.next(32768));
    FUZZ_CHECK(session->openStreams() <= settings.max_concurrent_streams,
               "more open streams than max_concurrent_streams");
    FUZZ_CHECK(g_mem.live <= kMaxLiveBytes, "nghttp2 holds more memory than any input needs");
  }
  // Drain what is left to send; each pass must make progress or stop wanting to write.
  for (int i = 0; i < 10000 && session->wantsWrite(); ++i) {
    out.clear();
    size_t n = session->produce(out, 65536);
    produced += n;
    if (n == 0) break;
  }
  FUZZ_CHECK(produced <= (1u << 20) + 64 * input.size() + 2 * proxy.submitted(),
             "far more bytes out than the input and the responses explain");
  session->closeAllStreams(0);
  session.reset();
  FUZZ_CHECK(g_mem.live == 0, "nghttp2 memory left after the session was freed");
  return 0;
}
