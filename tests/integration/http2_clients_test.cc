// HTTP/2 with stock clients against the real proxy (issue 10 items 1, 3, 8): curl over TLS
// (ALPN h2) and over a plain listener (h2c with prior knowledge, HTTP/1.1 and
// `Upgrade: h2c` on the same port), server.http2 = false, nghttp with concurrent streams,
// and what each HTTP/2 stream leaves behind: one access-log line with http.version "2" and
// the apm_tls_proxy_http2_* metrics.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/integration/demo_clients.h"
#include "tests/integration/harness.h"
#include "tests/integration/ops_support.h"
#include "tests/integration/scripted_upstream.h"

namespace proxy::integration {
namespace {

using ops::OpsOptions;
using ops::OpsStack;
using testsupport::eventually;

const char kCurlFrom[] = "Debian package curl, scripts/setup.sh";
const char kDemoVersion[] = "9.0.0-demo";  // in the demo's GET / answer

// curl with `args`, printing the body then "\n<http_version> <status>".
struct CurlResult {
  std::string body;
  std::string version;
  int status = 0;
  int exit_code = -1;
};
CurlResult curl(const TempDir& dir, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {toolPath("curl", kCurlFrom),     "-sS", "--max-time", "10", "-w",
                                   "\n%{http_version} %{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = runToCompletion(argv, dir, "curl", Millis{20000});
  INFO("curl stdout:\n" << r.out << "\nstderr:\n" << r.err);
  CurlResult out;
  out.exit_code = r.exit_code;
  size_t nl = r.out.rfind('\n');
  if (nl == std::string::npos) return out;
  out.body = r.out.substr(0, nl);
  std::string tail = r.out.substr(nl + 1);
  size_t sp = tail.find(' ');
  if (sp == std::string::npos) return out;
  out.version = tail.substr(0, sp);
  out.status = std::atoi(tail.c_str() + sp + 1);
  return out;
}

std::string httpsUrl(const OpsStack& s, const std::string& path = "/") {
  return "https://127.0.0.1:" + std::to_string(s.port()) + path;
}
std::string httpUrl(const OpsStack& s, const std::string& path = "/") {
  return "http://127.0.0.1:" + std::to_string(s.port()) + path;
}

OpsOptions plain() {
  OpsOptions o;
  o.tls = false;
  return o;
}

const std::vector<std::string> kIntakePost = {"-X",
                                              "POST",
                                              "-H",
                                              "Content-Type: application/x-ndjson",
                                              "--data-binary",
                                              "{\"metadata\":{}}\n{\"span\":{}}\n"};

TEST_CASE("curl --http2 over TLS negotiates h2 and gets the intake answers",
          "[integration][http2][curl]") {
  OpsStack stack;
  std::string ca = stack.dir.write("ca.crt", stack.pki.caPem());
  CurlResult get = curl(stack.dir, {"--http2", "--cacert", ca, httpsUrl(stack)});
  CHECK(get.exit_code == 0);
  CHECK(get.version == "2");
  CHECK(get.status == 200);
  CHECK(get.body.find(kDemoVersion) != std::string::npos);

  std::vector<std::string> post = {"--http2", "--cacert", ca};
  post.insert(post.end(), kIntakePost.begin(), kIntakePost.end());
  post.push_back(httpsUrl(stack, "/intake/v2/events"));
  CurlResult posted = curl(stack.dir, post);
  CHECK(posted.version == "2");
  CHECK(posted.status == 202);

  // Requests that are not gRPC reach the upstream as HTTP/1.1, with the forwarding headers.
  auto records = stack.demo.waitForRecords(2);
  auto lines = recordLines(stack.dir);
  REQUIRE(lines.size() == 2);
  CHECK(hasField(lines[0], "protocol", quoted("http/1.1")));
  CHECK(hasField(lines[1], "protocol", quoted("http/1.1")));
  CHECK(records[1].body_lines == 2);
  CHECK(records[1].complete);
  CHECK(records[1].header("X-Forwarded-Proto") == "https");

  // A client that offers only http/1.1 still gets HTTP/1.1.
  CurlResult h1 = curl(stack.dir, {"--http1.1", "--cacert", ca, httpsUrl(stack)});
  CHECK(h1.version == "1.1");
  CHECK(h1.status == 200);
}

TEST_CASE("server.http2 = false: curl --http2 over TLS gets HTTP/1.1",
          "[integration][http2][curl]") {
  OpsOptions o;
  o.config.server["http2"] = "false";
  OpsStack stack(o);
  std::string ca = stack.dir.write("ca.crt", stack.pki.caPem());
  CurlResult r = curl(stack.dir, {"--http2", "--cacert", ca, httpsUrl(stack)});
  CHECK(r.version == "1.1");
  CHECK(r.status == 200);
  CHECK(r.body.find(kDemoVersion) != std::string::npos);
}

TEST_CASE("server.http2 = false: a plain listener does not answer h2c, HTTP/1.1 still works",
          "[integration][http2][curl]") {
  OpsOptions o = plain();
  o.config.server["http2"] = "false";
  OpsStack stack(o);
  CurlResult h2c = curl(stack.dir, {"--http2-prior-knowledge", httpUrl(stack)});
  CHECK(h2c.version != "2");
  CHECK(h2c.status != 200);
  CurlResult h1 = curl(stack.dir, {"--http1.1", httpUrl(stack)});
  CHECK(h1.version == "1.1");
  CHECK(h1.status == 200);
}

TEST_CASE("A plain listener serves h2c with prior knowledge and HTTP/1.1 on one port",
          "[integration][http2][curl]") {
  OpsStack stack(plain());
  CurlResult h2c = curl(stack.dir, {"--http2-prior-knowledge", httpUrl(stack)});
  CHECK(h2c.version == "2");
  CHECK(h2c.status == 200);
  CHECK(h2c.body.find(kDemoVersion) != std::string::npos);

  std::vector<std::string> post = {"--http2-prior-knowledge"};
  post.insert(post.end(), kIntakePost.begin(), kIntakePost.end());
  post.push_back(httpUrl(stack, "/intake/v2/events"));
  CurlResult posted = curl(stack.dir, post);
  CHECK(posted.version == "2");
  CHECK(posted.status == 202);

  CurlResult h1 = curl(stack.dir, {"--http1.1", httpUrl(stack)});
  CHECK(h1.version == "1.1");
  CHECK(h1.status == 200);

  // curl --http2 on http:// asks for `Upgrade: h2c`, which is served as HTTP/1.1.
  CurlResult upgrade = curl(stack.dir, {"--http2", httpUrl(stack)});
  CHECK(upgrade.version == "1.1");
  CHECK(upgrade.status == 200);
  CHECK(upgrade.body.find(kDemoVersion) != std::string::npos);

  auto records = stack.demo.waitForRecords(4);
  CHECK(records[1].body_lines == 2);
  CHECK(records[1].header("X-Forwarded-Proto") == "http");
  CHECK(records[1].header("X-Forwarded-For") == "127.0.0.1");
}

TEST_CASE("nghttp with concurrent streams: every stream answered, one access-log line each",
          "[integration][http2][nghttp][logs][metrics]") {
  OpsOptions o = plain();
  TempDir side;
  std::string access = side.file("access.log");
  o.config.log["access"] = "\"" + access + "\"";
  o.config.log["format"] = "\"ecs\"";
  OpsStack stack(o);

  std::string nghttp = toolPath("nghttp", "Debian package nghttp2-client, scripts/setup.sh");
  RunResult r = runToCompletion({nghttp, "-nv", "-m", "8", httpUrl(stack, "/config/v1/agents")},
                                stack.dir, "nghttp", Millis{20000});
  INFO("nghttp:\n" << r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(ops::countOf(r.out, ":status: 200") == 8);
  CHECK(ops::countOf(r.out, "send HEADERS frame") == 8);
  CHECK(stack.demo.waitForRecords(8).size() == 8);

  std::vector<ops::JsonValue> entries;
  CHECK(ops::eventually(
      [&] {
        entries.clear();
        for (const std::string& line : ops::lines(readFile(access))) {
          if (auto j = ops::parseJson(line)) entries.push_back(*j);
        }
        return entries.size() >= 8;
      },
      Millis{5000}));
  INFO("access log:\n" << readFile(access));
  REQUIRE(entries.size() == 8);
  for (const ops::JsonValue& e : entries) {
    CHECK(e.get("http.version").string == "2");
    CHECK(e.get("url.path").string == "/config/v1/agents");
    CHECK(e.get("http.response.status_code").number == 200);
  }

  auto metrics = stack.metrics();
  CHECK(ops::metric(metrics, "apm_tls_proxy_http2_streams_total") == 8);
  CHECK(ops::metric(metrics, "apm_tls_proxy_http2_streams_active") == 0);
  CHECK(ops::eventually(
      [&] { return ops::metric(stack.metrics(), "apm_tls_proxy_http2_connections") == 0; },
      Millis{5000}));
}

TEST_CASE("A client's GOAWAY closes the connection once its last stream is answered",
          "[integration][http2]") {
  // The default idle_timeout (45 s) is far past the 10 s the client waits: a close it sees
  // comes from its GOAWAY (RFC 9113 §6.8), and the log says the client ended it.
  OpsOptions o = plain();
  o.config.log["level"] = "\"debug\"";
  OpsStack stack(o);
  SECTION("a stream still waiting for its answer") {
    RunResult r = runH2Peer(stack.dir, stack.port(), "goaway",
                            {"--count", "2", "--header", "x-demo-delay=300ms", "--seconds", "10"});
    REQUIRE(r.exit_code == 0);
    auto report = ops::parseJson(r.out);
    REQUIRE(report);
    for (const char* id : {"1", "3"}) {
      INFO("stream " << id);
      CHECK(report->get("responses").get(id).get("status").string == "200");
      CHECK(report->get("responses").get(id).get("body_bytes").number > 0);
    }
    CHECK(report->get("closed").boolean);
    CHECK(report->get("goaways").array.empty());  // nothing wrong was said
    CHECK(eventually([&] { return stack.stderrText().find("requests=2") != std::string::npos; },
                     Millis{5000}));
  }
  SECTION("no stream open") {
    RunResult r = runH2Peer(stack.dir, stack.port(), "goaway", {"--count", "0", "--seconds", "10"});
    REQUIRE(r.exit_code == 0);
    auto report = ops::parseJson(r.out);
    REQUIRE(report);
    CHECK(report->get("closed").boolean);
    CHECK(eventually([&] { return stack.stderrText().find("conn closed") != std::string::npos; },
                     Millis{5000}));
  }
  CHECK(stack.stderrText().find("reason=peer_closed") != std::string::npos);
  CHECK(stack.stderrText().find("reason=bad_request") == std::string::npos);
}

TEST_CASE("Connection-specific fields of an HTTP/1.1 upstream response never reach an h2 client",
          "[integration][http2][headers]") {
  ScriptedUpstream upstream([](int fd, size_t) {
    std::string buf;
    if (ScriptedUpstream::readRequest(fd, buf).empty()) return;
    ScriptedUpstream::writeAll(fd,
                               "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\n"
                               "Keep-Alive: timeout=5\r\nX-Hop: named by Connection\r\n"
                               "Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\n"
                               "X-Kept: yes\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "5\r\nhello\r\n0\r\n\r\n");
    ScriptedUpstream::waitPeerClose(fd, Millis{5000});
  });
  OpsOptions o = plain();
  o.upstream_port = upstream.port();
  OpsStack stack(o);
  RunResult r = runH2Peer(stack.dir, stack.port(), "get", {});
  REQUIRE(r.exit_code == 0);
  auto report = ops::parseJson(r.out);
  REQUIRE(report);
  const ops::JsonValue& response = report->get("responses").get("1");
  CHECK(response.get("status").string == "200");
  CHECK(response.get("body_bytes").number == 5);
  CHECK(response.get("ended").boolean);
  const ops::JsonValue& headers = response.get("headers");
  CHECK(headers.get("x-kept").string == "yes");
  for (const char* name :
       {"connection", "keep-alive", "x-hop", "proxy-connection", "upgrade", "transfer-encoding"}) {
    INFO(name);
    CHECK(!headers.has(name));
  }
  CHECK(report->get("resets").object.empty());
}

}  // namespace
}  // namespace proxy::integration
