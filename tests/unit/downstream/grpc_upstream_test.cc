// gRPC calls of an HTTP/2 client over a real H2Pool to a loopback h2c server
// (TestH2Upstream): what the client reads when the upstream resets a call. A reset other
// than REFUSED_STREAM means the upstream may have processed the call, so the client gets
// the status it would read from that reset itself, never UNAVAILABLE (which gRPC clients
// and OpenTelemetry exporters retry, sending the same data twice).
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "../http2/server_test_peer.h"
#include "proxy/downstream/http2_codec.h"
#include "proxy/http/http2/forwarding.h"
#include "proxy/upstream/h2_pool.h"
#include "proxy/upstream/resolving_connector.h"
#include "proxy/uv/read_buffer.h"
#include "tests/unit/downstream/fake_host.h"
#include "tests/unit/upstream/h2_test_upstream.h"

namespace proxy::downstream {
namespace {

using http2::test::Client;
using testing::TestH2Upstream;

const char* const kExport = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

// A FakeHost whose context has an H2Pool towards a TestH2Upstream playing `handler`, and
// one HTTP/2 client connection on an Http2Codec.
struct GrpcFixture {
  explicit GrpcFixture(TestH2Upstream::Handler handler) : codec(host) {
    upstream = std::make_unique<TestH2Upstream>(host.loop(), testing::FakeH2Server::Options{},
                                                std::move(handler));
    config.tcp = config::HostPort{"127.0.0.1", upstream->port()};
    config.url = "http://127.0.0.1:" + std::to_string(upstream->port());
    connector = std::make_unique<upstream::ResolvingConnector>(host.loop(), config);
    pool = std::make_unique<upstream::H2Pool>(host.loop(), config, host.stats, read_buffer,
                                              connector.get());
    host.context().h2_pool = pool.get();
    host.codec = &codec;
    REQUIRE(codec.start());
  }
  ~GrpcFixture() {
    host.codec = nullptr;
    codec.closeAll();
    pool->closeAll();
    connector->close();
    upstream->close();
    uv_run(host.loop(), UV_RUN_DEFAULT);
  }
  GrpcFixture(const GrpcFixture&) = delete;
  GrpcFixture& operator=(const GrpcFixture&) = delete;

  // Sends one unary call and runs the loop until its stream ended or was reset.
  const Client::Response& call() {
    http2::HeaderFields fields = Client::post(kExport);
    fields.push_back({"content-type", "application/grpc"});
    fields.push_back({"te", "trailers"});
    std::string body("\0\0\0\0\0", 5);
    int32_t id = client.request(fields, &body);
    std::string bytes = client.send();
    CHECK(feed(codec, bytes) == bytes.size());
    host.flush();
    REQUIRE(testing::runUntil(host.loop(), [&] {
      if (!host.out.empty()) {
        REQUIRE(client.recv(host.out));
        host.out.clear();
      }
      return client.responses[id].ended || client.responses[id].closed;
    }));
    last = id;
    return client.responses[id];
  }
  std::string field(const std::string& name) {
    for (const http2::HeaderField& f : client.responses[last].headers) {
      if (f.name == name) return f.value;
    }
    return {};
  }

  FakeHost host;
  Http2Codec codec;
  Client client;
  int32_t last = 0;
  config::UpstreamConfig config;
  uv::ReadBuffer read_buffer;
  std::unique_ptr<TestH2Upstream> upstream;
  std::unique_ptr<upstream::ResolvingConnector> connector;
  std::unique_ptr<upstream::H2Pool> pool;
};

// A handler that resets every call with `code`, after a response head when `head_first`.
TestH2Upstream::Handler resetWith(uint32_t code, bool head_first = false) {
  return [code, head_first](TestH2Upstream::Conn& conn, int32_t id) {
    if (head_first) {
      conn.server->sendHead(id, 200, {{"content-type", "application/grpc"}}, false);
      conn.owner->flush(conn);
    }
    conn.server->reset(id, code);
  };
}

}  // namespace

TEST_CASE("gRPC: an upstream reset before the answer reads as the reset's own status",
          "[unit][downstream]") {
  struct Case {
    uint32_t code;
    bool head_first;
    const char* grpc_status;
    const char* message;
  };
  const Case cases[] = {
      {NGHTTP2_INTERNAL_ERROR, false, "13", "upstream reset the stream"},
      {NGHTTP2_INTERNAL_ERROR, true, "13", "upstream reset the stream"},
      {NGHTTP2_PROTOCOL_ERROR, false, "13", "upstream reset the stream"},
      {NGHTTP2_NO_ERROR, false, "13", "upstream reset the stream"},
      {NGHTTP2_CANCEL, false, "1", "upstream cancelled the stream"},
      {NGHTTP2_ENHANCE_YOUR_CALM, false, "8", "upstream is overloaded (ENHANCE_YOUR_CALM)"},
      // Not processed (RFC 9113 §8.7): sent again once, then the client may retry.
      {NGHTTP2_REFUSED_STREAM, false, "14",
       "upstream refused the request without processing it; retry later"},
  };
  for (const Case& c : cases) {
    INFO("RST_STREAM " << c.code << (c.head_first ? " after a head" : ""));
    GrpcFixture f(resetWith(c.code, c.head_first));
    const Client::Response& r = f.call();
    // Trailers-only: the head the upstream may have sent never reached the client.
    CHECK(r.status == 200);
    CHECK(r.ended);
    CHECK(r.header_frames == 1);
    CHECK(f.field("grpc-status") == c.grpc_status);
    CHECK(f.field("grpc-message") == http2::grpcMessage(c.message));
    CHECK_FALSE(f.host.finished);
    // Only a refusal is counted with the calls the upstream could not take.
    CHECK(f.host.stats.upstream_overloaded.get() == (c.code == NGHTTP2_REFUSED_STREAM ? 1u : 0u));
  }
}

}  // namespace proxy::downstream
