// http2/forwarding: the forwarding policy for requests that arrive over HTTP/2 and responses
// that leave over it (the rules of http/head_writer, in HTTP/2 terms), and gRPC's status
// for the proxy's own answers.
#include "proxy/http/http2/forwarding.h"

#include <catch2/catch.hpp>
#include <string>

#include "proxy/http/http1_parser.h"

namespace proxy::http2 {
namespace {

RequestHead requestHead(HeaderFields headers, bool end_stream = false,
                        const std::string& method = "POST") {
  RequestHead head;
  head.method = method;
  head.scheme = "https";
  head.authority = "apm.example";
  head.path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
  head.headers = std::move(headers);
  head.end_stream = end_stream;
  return head;
}

std::string valueOf(const HeaderFields& fields, const std::string& name) {
  for (const HeaderField& f : fields) {
    if (f.name == name) return f.value;
  }
  return "<absent>";
}

// Parses an HTTP/1.1 response head with the real parser and hands it to `check`.
template <typename Check>
void withResponse(const std::string& wire, Check check) {
  struct Cb : http::Http1Parser::Callbacks {
    bool onHead(http::MessageHead&) override { return false; }
    void onBody(const char*, size_t) override {}
    void onMessageComplete() override {}
  } cb;
  http::Http1Parser parser(http::Http1Parser::Kind::kResponse, cb, 65536);
  REQUIRE(parser.execute(wire.data(), wire.size()).outcome != http::Http1Parser::Outcome::kError);
  check(parser.head());
}

}  // namespace

TEST_CASE(
    "h2c request fields: pseudo-headers rebuilt, te: trailers kept, client-address fields ours",
    "[unit][http2]") {
  http::ForwardContext fwd;
  fwd.client_ip = "192.0.2.7";
  fwd.tls = true;
  RequestHead head = requestHead({{"content-type", "application/grpc"},
                                  {"te", "trailers"},
                                  {"x-forwarded-for", "10.0.0.1"},
                                  {"forwarded", "for=10.0.0.1"},
                                  {"x-forwarded-client-cert", "Hash=spoofed"},
                                  {"user-agent", "grpc-node-js/1.12"}});
  const RequestHead original = head;
  HeaderFields fields = upstreamRequestFields(RequestHead(original), fwd);
  REQUIRE(fields.size() >= 4);
  CHECK(fields[0].name == ":method");
  CHECK(fields[1].name == ":scheme");
  CHECK(fields[1].value == "http");  // the upstream hop is cleartext
  CHECK(fields[2].value == "apm.example");
  CHECK(fields[3].value == original.path);
  CHECK(fields[0].value == original.method);
  CHECK(valueOf(fields, "te") == "trailers");
  CHECK(valueOf(fields, "x-forwarded-for") == "192.0.2.7");  // the client's list is replaced
  CHECK(valueOf(fields, "forwarded") == "<absent>");
  CHECK(valueOf(fields, "x-forwarded-client-cert") == "<absent>");
  CHECK(valueOf(fields, "x-forwarded-proto") == "https");
  CHECK(valueOf(fields, "user-agent") == "grpc-node-js/1.12");

  fwd.client_is_trusted_proxy = true;
  fwd.client_cert_header = "Hash=abc";
  fields = upstreamRequestFields(std::move(head), fwd);  // the strings move, the same fields
  CHECK(valueOf(fields, "x-forwarded-for") == "10.0.0.1, 192.0.2.7");
  CHECK(valueOf(fields, "user-agent") == "grpc-node-js/1.12");
  CHECK(valueOf(fields, "content-type") == "application/grpc");
  CHECK(fields[3].value == original.path);
  CHECK(valueOf(fields, "x-forwarded-client-cert") == "Hash=abc");
}

TEST_CASE("the HTTP/1.1 head of an HTTP/2 request frames its body per hop", "[unit][http2]") {
  http::ForwardContext fwd;
  fwd.client_ip = "::1";
  std::string out;
  SECTION("a body without a length goes chunked") {
    CHECK(writeHttp1Request(requestHead({{"te", "trailers"}}), fwd, out) ==
          http::BodyFraming::kChunked);
    CHECK(out.rfind("POST /opentelemetry.proto.collector.trace.v1.TraceService/Export "
                    "HTTP/1.1\r\nHost: apm.example\r\n",
                    0) == 0);
    CHECK(out.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
    CHECK(out.find("te:") == std::string::npos);  // hop-by-hop towards HTTP/1.1
    CHECK(out.find("X-Forwarded-For: ::1\r\n") != std::string::npos);
    CHECK(out.size() >= 4);
    CHECK(out.compare(out.size() - 4, 4, "\r\n\r\n") == 0);
  }
  SECTION("the client's content-length is kept") {
    CHECK(writeHttp1Request(requestHead({{"content-length", "12"}}), fwd, out) ==
          http::BodyFraming::kContentLength);
    CHECK(out.find("content-length: 12\r\n") != std::string::npos);
    CHECK(out.find("chunked") == std::string::npos);
  }
  SECTION("a body-less POST says Content-Length: 0; a GET says nothing") {
    CHECK(writeHttp1Request(requestHead({}, /*end_stream=*/true), fwd, out) ==
          http::BodyFraming::kContentLength);
    CHECK(out.find("Content-Length: 0\r\n") != std::string::npos);
    out.clear();
    CHECK(writeHttp1Request(requestHead({}, true, "GET"), fwd, out) == http::BodyFraming::kNone);
    CHECK(out.find("Content-Length") == std::string::npos);
  }
  SECTION("Host comes from the host field when :authority is missing") {
    RequestHead head = requestHead({{"host", "intake.example"}});
    head.authority.clear();
    writeHttp1Request(head, fwd, out);
    CHECK(out.find("\r\nHost: intake.example\r\n") != std::string::npos);
    CHECK(out.find("host: intake.example") == std::string::npos);  // not twice
  }
}

TEST_CASE("the HTTP/1.1 request's size is bounded when its body's length is known",
          "[unit][http2]") {
  http::ForwardContext fwd;
  fwd.client_ip = "198.51.100.20";
  fwd.tls = true;
  fwd.client_cert_header = "Hash=00ff";
  fwd.client_is_trusted_proxy = true;
  HeaderFields fields = {{"content-type", "application/x-protobuf"},
                         {"x-forwarded-for", "192.0.2.1, 192.0.2.2"},
                         {"user-agent", "OTel-OTLP-Exporter-Go/1.28.0"}};
  auto written = [&](const RequestHead& head) {
    std::string out;
    writeHttp1Request(head, fwd, out);
    return static_cast<uint64_t>(out.size());
  };
  RequestHead ended = requestHead(fields, /*end_stream=*/true);
  CHECK(http1RequestBytesBound(ended, fwd) >= written(ended));
  RequestHead no_authority = requestHead({{"host", "apm.example:8200"}}, true, "GET");
  no_authority.authority.clear();
  CHECK(http1RequestBytesBound(no_authority, fwd) >= written(no_authority));

  fields.push_back({"content-length", "2048"});
  RequestHead sized = requestHead(fields);
  CHECK(http1RequestBytesBound(sized, fwd) >= written(sized) + 2048);
  CHECK(http1RequestBytesBound(sized, fwd) < written(sized) + 2048 + 1024);

  // No length: the body goes chunked, of a size nobody knows yet.
  CHECK(http1RequestBytesBound(requestHead({{"content-type", "application/grpc"}}), fwd) ==
        http::kUnknownBytes);
  for (const char* bad : {"", "12a", "-1", "99999999999999999999"}) {
    CHECK(http1RequestBytesBound(requestHead({{"content-length", bad}}), fwd) ==
          http::kUnknownBytes);
  }
}

TEST_CASE("response fields for an HTTP/2 client drop connection-specific fields", "[unit][http2]") {
  withResponse(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive, X-Hop\r\n"
      "X-Hop: 1\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\r\n",
      [](const http::MessageHead& head) {
        HeaderFields fields = responseFields(head);
        CHECK(valueOf(fields, "content-type") == "application/json");  // lower-case
        CHECK(valueOf(fields, "x-hop") == "<absent>");                 // named in Connection
        CHECK(valueOf(fields, "connection") == "<absent>");
        CHECK(valueOf(fields, "keep-alive") == "<absent>");
        CHECK(valueOf(fields, "transfer-encoding") == "<absent>");  // framing is per hop
      });
  withResponse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", [](const http::MessageHead& head) {
    CHECK(valueOf(responseFields(head), "content-length") == "9");
  });
}

TEST_CASE("gRPC status and message of the proxy's own answers", "[unit][http2]") {
  CHECK(std::string(grpcStatusFor(502)) == "14");  // UNAVAILABLE: exporters retry
  CHECK(std::string(grpcStatusFor(503)) == "14");
  CHECK(std::string(grpcStatusFor(504)) == "4");  // DEADLINE_EXCEEDED
  CHECK(std::string(grpcStatusFor(408)) == "4");
  CHECK(grpcMessage("upstream unavailable") == "upstream unavailable");
  CHECK(grpcMessage("50% \xc3\xa9\n") == "50%25 %C3%A9%0A");
}

}  // namespace proxy::http2
