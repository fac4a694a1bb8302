// Trace context of a request, read from its W3C `traceparent` header (or the
// `elastic-apm-traceparent` header older Elastic agents send), so that an access-log
// line names the trace and span of the agent's outgoing request and Kibana can link the
// two. Pure parsing; no libuv, no allocation. Used by AccessLog's ECS formatter.
#pragma once

#include <optional>
#include <string_view>

namespace proxy::downstream {

// The ids of a valid traceparent, as views into the header value (lower-case hex).
struct TraceContext {
  std::string_view trace_id;  // 32 hex digits, not all zero
  std::string_view span_id;   // 16 hex digits (the header's parent-id), not all zero
};

// Parses a traceparent value per W3C Trace Context §3.2: "00-<trace-id>-<parent-id>-<flags>"
// exactly for version 00; a later version (not "ff") is read by its first 55 characters when
// what follows them starts with '-'. nullopt for anything invalid (upper-case hex included).
std::optional<TraceContext> parseTraceparent(std::string_view value);

// The first valid of `traceparent` and `elastic_traceparent` (either may be empty).
std::optional<TraceContext> pickTraceContext(std::string_view traceparent,
                                             std::string_view elastic_traceparent);

}  // namespace proxy::downstream
