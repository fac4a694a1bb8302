#include "tests/support/metrics.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "tests/support/tcp_client.h"

namespace proxy::testsupport {

std::map<std::string, double> parseMetrics(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) {
    if (l.empty() || l[0] == '#') continue;
    // The value follows the first space after the label braces (Prometheus text format).
    size_t brace_end = l.rfind('}');
    size_t space = l.find(' ', brace_end == std::string::npos ? 0 : brace_end);
    if (space == std::string::npos) continue;
    std::string value = l.substr(space + 1);
    size_t more = value.find(' ');  // an optional timestamp
    if (more != std::string::npos) value.resize(more);
    double v = 0;
    if (value == "+Inf") {
      v = HUGE_VAL;
    } else if (value == "-Inf") {
      v = -HUGE_VAL;
    } else {
      v = std::strtod(value.c_str(), nullptr);
    }
    out[l.substr(0, space)] = v;
  }
  return out;
}

std::optional<double> metric(const std::map<std::string, double>& metrics,
                             const std::string& series) {
  auto it = metrics.find(series);
  if (it == metrics.end()) return std::nullopt;
  return it->second;
}

double metricValue(const std::string& text, const std::string& series) {
  return metric(parseMetrics(text), series).value_or(-1);
}

std::string fetchMetrics(uint16_t admin_port) {
  Response r = httpGet(admin_port, "/metrics");
  return r.status == 200 ? r.body : "";
}

}  // namespace proxy::testsupport
