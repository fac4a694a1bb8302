// libFuzzer target: arbitrary bytes into the request and response parsers, split at a
// point the input chooses, with every head rewritten as the proxy would forward it.
// Build with the `fuzz` preset (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <string>

#include "proxy/http/head_writer.h"
#include "proxy/http/http1_parser.h"

namespace {

class Sink : public proxy::http::Http1Parser::Callbacks {
 public:
  explicit Sink(bool request) : request_(request) {}
  bool onHead(proxy::http::MessageHead& head) override {
    out_.clear();
    if (request_) {
      proxy::http::ForwardContext ctx;
      ctx.client_ip = "192.0.2.1";
      ctx.tls = true;
      proxy::http::writeRequestHead(head, ctx, out_);
    } else {
      proxy::http::ResponseContext ctx;
      proxy::http::writeResponseHead(head, ctx, out_);
    }
    return false;
  }
  void onBody(const char* data, size_t len) override { bytes_ += len + (len ? data[0] : 0); }
  void onMessageComplete() override {}

 private:
  bool request_;
  std::string out_;
  size_t bytes_ = 0;
};

void run(proxy::http::Http1Parser::Kind kind, const uint8_t* data, size_t size) {
  Sink sink(kind == proxy::http::Http1Parser::Kind::kRequest);
  proxy::http::Http1Parser parser(kind, sink, 4096);
  size_t split = size > 0 ? data[0] % (size + 1) : 0;
  const char* p = reinterpret_cast<const char*>(data);
  for (const auto& [off, len] : {std::pair<size_t, size_t>{0, split}, {split, size - split}}) {
    const char* q = p + off;
    size_t left = len;
    for (int guard = 0; left > 0 && guard < 10000; ++guard) {
      auto r = parser.execute(q, left);
      if (r.outcome == proxy::http::Http1Parser::Outcome::kError) return;
      q += r.consumed;
      left -= r.consumed;
      if (r.outcome == proxy::http::Http1Parser::Outcome::kPaused) parser.resume();
    }
  }
  parser.finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  run(proxy::http::Http1Parser::Kind::kRequest, data, size);
  run(proxy::http::Http1Parser::Kind::kResponse, data, size);
  return 0;
}
