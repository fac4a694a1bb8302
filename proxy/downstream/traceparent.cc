#include "proxy/downstream/traceparent.h"

#include <cstddef>

namespace proxy::downstream {
namespace {

// W3C Trace Context §3.2.2: HEXDIGLC only; upper case makes the header invalid.
bool isLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool allZero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

// "vv-" + 32 + "-" + 16 + "-" + "ff".
constexpr size_t kVersion00Size = 55;

}  // namespace

std::optional<TraceContext> parseTraceparent(std::string_view value) {
  if (value.size() < kVersion00Size) return std::nullopt;
  std::string_view version = value.substr(0, 2);
  if (!isLowerHex(version) || version == "ff") return std::nullopt;
  // §3.2.4: version 00 has exactly four fields; a future version may append more, each
  // after a '-', and a parser reads the four it knows.
  if (version == "00" && value.size() != kVersion00Size) return std::nullopt;
  if (value.size() > kVersion00Size && value[kVersion00Size] != '-') return std::nullopt;
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') return std::nullopt;
  TraceContext tc{value.substr(3, 32), value.substr(36, 16)};
  std::string_view flags = value.substr(53, 2);
  if (!isLowerHex(tc.trace_id) || !isLowerHex(tc.span_id) || !isLowerHex(flags)) {
    return std::nullopt;
  }
  // §3.2.2.3 and §3.2.2.4: an all-zero trace-id or parent-id is invalid.
  if (allZero(tc.trace_id) || allZero(tc.span_id)) return std::nullopt;
  return tc;
}

std::optional<TraceContext> pickTraceContext(std::string_view traceparent,
                                             std::string_view elastic_traceparent) {
  if (auto tc = parseTraceparent(traceparent)) return tc;
  return parseTraceparent(elastic_traceparent);
}

}  // namespace proxy::downstream
