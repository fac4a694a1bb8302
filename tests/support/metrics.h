// Prometheus text exposition for tests: fetch /metrics from an admin endpoint and read
// samples by series name exactly as printed ("name" or "name{a=\"b\"}").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace proxy::testsupport {

// Every sample of a Prometheus text page: "name{labels}" (labels as written) -> value.
std::map<std::string, double> parseMetrics(const std::string& text);
// The value of the series `series`; nullopt when absent.
std::optional<double> metric(const std::map<std::string, double>& metrics,
                             const std::string& series);
// The value of `series` in a metrics page, or -1 when absent.
double metricValue(const std::string& text, const std::string& series);

// The /metrics page of the admin endpoint on 127.0.0.1:admin_port; "" unless it answered
// 200. Fails the test when nothing listens there.
std::string fetchMetrics(uint16_t admin_port);

}  // namespace proxy::testsupport
