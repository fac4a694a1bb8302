#include "proxy/demo/intake_routes.h"

namespace proxy::demo {
namespace {

const char kServerInfo[] =
    R"({"build_date":"2024-01-01T00:00:00Z","build_sha":"demo","publish_ready":true,)"
    R"("version":"9.0.0-demo"})";
const char kJson[] = "application/json";

}  // namespace

RouteAnswer routeAnswer(const std::string& method, const std::string& path,
                        const std::string& origin) {
  bool rum = path == "/intake/v2/rum/events" || path == "/intake/v3/rum/events";
  RouteAnswer a;
  a.status = 404;
  a.reason = "Not Found";
  a.content_type = kJson;
  a.body = R"({"error":"404 page not found"})";
  if (path == "/" && (method == "GET" || method == "HEAD")) {
    a.status = 200;
    a.reason = "OK";
    a.body = kServerInfo;
  } else if (path == "/intake/v2/events" || rum) {
    if (method == "POST") {
      a.status = 202;
      a.reason = "Accepted";
      a.body.clear();
      a.content_type.clear();
    } else if (method == "OPTIONS" && rum) {
      // CORS preflight, as APM Server answers it for RUM agents.
      a.status = 204;
      a.reason = "No Content";
      a.body.clear();
      a.content_type.clear();
      a.headers = {{"Access-Control-Allow-Origin", origin.empty() ? "*" : origin},
                   {"Access-Control-Allow-Methods", "POST, OPTIONS"},
                   {"Access-Control-Allow-Headers", "Content-Type, Content-Encoding, Accept"},
                   {"Access-Control-Max-Age", "3600"},
                   {"Vary", "Origin"}};
    } else {
      a.status = 405;
      a.reason = "Method Not Allowed";
      a.body = R"({"error":"only POST requests are supported"})";
    }
  } else if (path == "/config/v1/agents") {
    a.status = 200;
    a.reason = "OK";
    a.body = "{}";
  }
  return a;
}

}  // namespace proxy::demo
