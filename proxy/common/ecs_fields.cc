#include "proxy/common/ecs_fields.h"

#include <arpa/inet.h>

#include <array>
#include <cstdint>

namespace proxy::log {
namespace {

enum class Kind { kKeyword, kLong, kIp };

struct Mapping {
  std::string_view key;  // as log calls spell it
  std::string_view ecs;  // ECS 8.x field name
  Kind kind;
};

// The keys our log calls use that have an ECS home. Anything else is a label: ECS keeps
// `labels` for exactly such custom keyword pairs (ECS reference, "Base fields").
constexpr std::array<Mapping, 10> kMappings = {{
    {"error", "error.message", Kind::kKeyword},
    {"detail", "error.message", Kind::kKeyword},
    {"problem", "error.message", Kind::kKeyword},
    {"reason", "event.reason", Kind::kKeyword},
    {"peer", "source.ip", Kind::kIp},
    {"sni", "tls.client.server_name", Kind::kKeyword},
    {"exit_code", "process.exit_code", Kind::kLong},
    {"method", "http.request.method", Kind::kKeyword},
    {"status", "http.response.status_code", Kind::kLong},
    {"subject", "tls.server.x509.subject.distinguished_name", Kind::kKeyword},
}};

struct EventFacts {
  std::string_view message;
  std::string_view members;  // JSON members, each with its leading comma
};

// Events a log pipeline filters on get ECS categorisation (ECS "Event Fields"): the
// handshake failure is a denied network connection, certificate loads are configuration
// changes with an outcome. Keyed by message, which is stable: the tests assert on it.
constexpr std::array<EventFacts, 4> kEvents = {{
    {"tls handshake failed",
     R"(,"event.kind":"event","event.category":["network"],"event.type":["connection","denied"])"
     R"(,"event.action":"tls-handshake","event.outcome":"failure","tls.established":false)"},
    {"certificates loaded",
     R"(,"event.kind":"event","event.category":["configuration"],"event.type":["change"])"
     R"(,"event.action":"certificate-load","event.outcome":"success")"},
    {"certificates reloaded",
     R"(,"event.kind":"event","event.category":["configuration"],"event.type":["change"])"
     R"(,"event.action":"certificate-reload","event.outcome":"success")"},
    {"certificate reload rejected; old certificates stay",
     R"(,"event.kind":"event","event.category":["configuration"],"event.type":["change"])"
     R"(,"event.action":"certificate-reload","event.outcome":"failure")"},
}};

bool isInteger(std::string_view v) {
  if (!v.empty() && v.front() == '-') v.remove_prefix(1);
  if (v.empty() || v.size() > 18) return false;  // fits an int64 without a range check
  return v.find_first_not_of("0123456789") == std::string_view::npos;
}

bool isIp(const std::string& v) {
  unsigned char buf[16];
  return inet_pton(AF_INET, v.c_str(), buf) == 1 || inet_pton(AF_INET6, v.c_str(), buf) == 1;
}

const Mapping* mappingOf(std::string_view key) {
  for (const Mapping& m : kMappings) {
    if (m.key == key) return &m;
  }
  return nullptr;
}

void appendName(std::string& out, std::string_view name) {
  out.push_back(',');
  appendJsonString(out, name);
  out.push_back(':');
}

void appendLabel(std::string& out, std::string_view key, std::string_view value) {
  std::string name = "labels.";
  // ECS: label keys may not contain dots (they would nest).
  for (char c : key) name.push_back(c == '.' ? '_' : c);
  appendEcsString(out, name, value);
}

}  // namespace

void appendEcsPrologue(std::string& out, std::string_view level, std::string_view message,
                       std::string_view logger, std::string_view dataset) {
  out.append("{\"@timestamp\":\"");
  appendTimestampMicros(out);
  out.append("\",\"log.level\":");
  appendJsonString(out, level);
  out.append(",\"message\":");
  appendJsonString(out, message);
  appendEcsString(out, "ecs.version", kEcsVersion);
  appendEcsString(out, "service.name", kServiceName);
  appendEcsString(out, "log.logger", logger);
  appendEcsString(out, "event.dataset", dataset);
}

void appendEcsString(std::string& out, std::string_view name, std::string_view value) {
  appendName(out, name);
  appendJsonString(out, value);
}

void appendEcsNumber(std::string& out, std::string_view name, uint64_t value) {
  appendName(out, name);
  out.append(std::to_string(value));
}

void appendEcsBool(std::string& out, std::string_view name, bool value) {
  appendName(out, name);
  out.append(value ? "true" : "false");
}

std::string formatEcsLine(Level level, std::string_view message,
                          std::initializer_list<Field> fields) {
  std::string out;
  out.reserve(256);
  appendEcsPrologue(out, levelName(level), message, "apm-tls-proxy", "apm_tls_proxy.log");
  for (const EventFacts& e : kEvents) {
    if (e.message == message) out.append(e.members);
  }
  std::array<std::string_view, kMappings.size()> used{};
  size_t n_used = 0;
  for (const Field& f : fields) {
    const Mapping* m = mappingOf(f.key);
    if (m != nullptr && f.value.empty()) continue;  // an empty ECS value says nothing
    bool taken = false;
    for (size_t i = 0; m != nullptr && i < n_used; ++i) taken = taken || used[i] == m->ecs;
    bool fits = m != nullptr && !taken && (m->kind != Kind::kLong || isInteger(f.value)) &&
                (m->kind != Kind::kIp || isIp(f.value));
    if (!fits) {
      appendLabel(out, f.key, f.value);
      continue;
    }
    if (n_used < used.size()) used[n_used++] = m->ecs;
    appendName(out, m->ecs);
    if (m->kind == Kind::kLong) {
      out.append(f.value);
    } else {
      appendJsonString(out, f.value);
    }
  }
  out.append("}\n");
  return out;
}

}  // namespace proxy::log
