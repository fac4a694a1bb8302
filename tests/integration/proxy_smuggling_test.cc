// Request smuggling and malformed requests: each must be answered 400 with
// {"error": ...} JSON, the connection closed, and nothing forwarded to the upstream
// (RFC 9112 §6.1, §6.3, §5.1, §3.2, §2.2; issue 2, "Bad input gets a clear answer").
#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

namespace proxy::integration {
namespace {

struct Case {
  const char* name;
  std::string bytes;
  // The head is valid and the error is in the chunked body: the head may already be on
  // its way upstream when the error shows, so the upstream may see a request start,
  // but never a complete one (and the client still gets 400).
  bool body_error = false;
};

const std::vector<Case>& corpus() {
  static const std::vector<Case> kCases = {
      {"Content-Length and Transfer-Encoding: chunked",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"Transfer-Encoding: chunked before Content-Length",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
       "Content-Length: 4\r\n\r\n0\r\n\r\n"},
      {"two different Content-Length headers",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
       "Content-Length: 5\r\n\r\n{}\n\n\n"},
      {"Content-Length list with different values",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 5\r\n\r\n{}\n\n\n"},
      {"non-numeric Content-Length",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n"},
      {"negative Content-Length",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"},
      {"Content-Length with a plus sign",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\n{}\n\n"},
      {"Content-Length beyond 64 bits",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\n"
       "Content-Length: 99999999999999999999999\r\n\r\n"},
      {"chunked not the last transfer coding",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n"
       "\r\n0\r\n\r\n"},
      {"unknown transfer coding without chunked",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n{}\n"},
      {"Transfer-Encoding value folded onto the next line (obs-fold)",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"
       "0\r\n\r\n"},
      {"obs-fold in an ordinary header",
       "GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n"},
      {"bare LF line endings throughout", "GET / HTTP/1.1\nHost: a\n\n"},
      {"bare LF ending one header line", "GET / HTTP/1.1\r\nHost: a\nX-Other: b\r\n\r\n"},
      {"whitespace between header name and colon",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"
       "0\r\n\r\n"},
      {"space inside a header name", "GET / HTTP/1.1\r\nHost: a\r\nX Forwarded: b\r\n\r\n"},
      {"control character in a header name",
       std::string("GET / HTTP/1.1\r\nHost: a\r\nX\x01Y: b\r\n\r\n")},
      {"NUL byte in a header value",
       std::string("GET / HTTP/1.1\r\nHost: a\r\nX-Nul: a\0b\r\n\r\n", 40)},
      {"bare CR inside a header value", "GET / HTTP/1.1\r\nHost: a\r\nX-Cr: a\rb\r\n\r\n"},
      {"whitespace before the first header line", "GET / HTTP/1.1\r\n Host: a\r\nX: b\r\n\r\n"},
      {"invalid character in the method", "G@T / HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"invalid HTTP version", "GET / HTTP/1.x\r\nHost: a\r\n\r\n"},
      {"space inside the request target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"HTTP/1.1 request without Host", "GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n"},
      {"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
      {"Transfer-Encoding in an HTTP/1.0 request",
       "POST /intake/v2/events HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "3\r\n{}\n\r\n0\r\n\r\n"},
      {"invalid chunk size",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "zz\r\n{}\r\n0\r\n\r\n",
       true},
      {"chunk size beyond 64 bits",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "fffffffffffffffff1\r\n{}\r\n0\r\n\r\n",
       true},
      {"negative chunk size",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "-1\r\n{}\r\n0\r\n\r\n",
       true},
      {"chunk data longer than its size",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "3\r\nhello\r\n0\r\n\r\n",
       true},
      {"chunk data not followed by CRLF",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5\r\nhelloXX0\r\n\r\n",
       true},
      {"bare LF in chunked framing",
       "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5\nhello\n0\n\n",
       true},
  };
  return kCases;
}

TEST_CASE("Smuggling and malformed requests get 400 and nothing reaches the upstream",
          "[integration][smuggling]") {
  REQUIRE(corpus().size() >= 20);
  for (const Case& test : corpus()) {
    DYNAMIC_SECTION(test.name) {
      ProxyStack stack;
      Client c(stack.proxy.port());
      c.send(test.bytes, Millis{3000});  // the proxy may answer and close before the end
      Response r = c.readResponse(Millis{5000});
      INFO("status " << r.status << " body " << r.body << " closed " << r.closed);
      CHECK(r.complete);
      CHECK(r.status == 400);
      CHECK(r.header("Content-Type").value_or("").rfind("application/json", 0) == 0);
      CHECK(r.body.rfind("{\"error\":", 0) == 0);
      CHECK(c.waitClosed(Millis{3000}));

      // A well-formed request on a new connection is forwarded; once the upstream has
      // it, anything the bad request let through would be on record before it.
      Client sentinel(stack.proxy.port());
      REQUIRE(sentinel.send(httpRequest("GET", "/sentinel")));
      CHECK(sentinel.readResponse().status == 404);
      auto records = stack.demo.waitForRecords(1);
      for (const Record& rec : records) {
        if (rec.target == "/sentinel") continue;
        INFO("forwarded: " << rec.method << " " << rec.target << " complete=" << rec.complete
                           << " body_bytes=" << rec.body_bytes);
        CHECK(test.body_error);
        CHECK_FALSE(rec.complete);
      }
    }
  }
}

TEST_CASE("A smuggled second request inside a body is never seen as a request",
          "[integration][smuggling]") {
  // CL.TE: a front end honouring Content-Length would forward "G" + a smuggled request
  // as body; we must reject the message outright rather than pick one framing.
  ProxyStack stack;
  Client c(stack.proxy.port());
  std::string smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
  c.send("POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nContent-Length: " +
             std::to_string(5 + smuggled.size()) +
             "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
         Millis{3000});
  Response r = c.readResponse(Millis{5000});
  CHECK(r.status == 400);
  CHECK(c.waitClosed(Millis{3000}));
  Client sentinel(stack.proxy.port());
  REQUIRE(sentinel.send(httpRequest("GET", "/sentinel")));
  CHECK(sentinel.readResponse().status == 404);
  for (const Record& rec : stack.demo.waitForRecords(1)) CHECK(rec.target == "/sentinel");
}

}  // namespace
}  // namespace proxy::integration
