// The APM Server routes apm-intake-demo answers, as protocol-neutral values: the
// HTTP/1.1 connection and the h2c session each encode the same RouteAnswer on their
// wire, so both protocols give the same answers. Pure code; no libuv, no I/O.
#pragma once

#include <string>

#include "proxy/demo/intake_util.h"

namespace proxy::demo {

struct RouteAnswer {
  int status = 404;
  std::string reason;        // HTTP/1.1 reason phrase
  HeaderPairs headers;       // extra headers (CORS), content-type excluded
  std::string content_type;  // empty: none
  std::string body;
};

// The answer APM Server gives to `method` on `path` (no query); `origin` is the request's
// Origin header, echoed in CORS preflight answers.
RouteAnswer routeAnswer(const std::string& method, const std::string& path,
                        const std::string& origin);

}  // namespace proxy::demo
