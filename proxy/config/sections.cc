// One loader per table of the file ([server], [upstream], [ssl] and its allow-list,
// [admin], [log]): each key read with its type, range and default.
#include <arpa/inet.h>

#include <string>
#include <vector>

#include "proxy/config/loader.h"
#include "proxy/config/upstream_url.h"

namespace proxy::config::detail {

namespace {

// Standard base64 (RFC 4648 §4) decoded length, or -1 when `s` is not valid base64.
int base64DecodedLength(const std::string& s) {
  if (s.empty() || s.size() % 4 != 0) return -1;
  size_t pad = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/';
    if (c == '=') {
      if (i + 2 < s.size()) return -1;
      ++pad;
    } else if (!alpha || pad > 0) {
      return -1;
    }
  }
  return static_cast<int>(s.size() / 4 * 3 - pad);
}
constexpr Millis kPositive{1};
const char* const kPositiveRule = "greater than 0 (e.g. \"30s\")";

}  // namespace

template <class E>
bool Loader::readEnum(const std::string& path, const std::vector<std::pair<const char*, E>>& values,
                      E* out) {
  std::string text;
  if (!readString(path, &text)) return false;
  std::string allowed;
  for (const auto& [name, value] : values) {
    if (text == name) {
      *out = value;
      return true;
    }
    if (!allowed.empty()) allowed += ", ";
    allowed += std::string("\"") + name + "\"";
  }
  error(path, find(path), "invalid value \"" + text + "\"; allowed: " + allowed);
  return false;
}
void Loader::loadServer() {
  ServerConfig& s = config_.server;
  std::string text;
  if (readString("server.host", &text)) {
    Result<HostPort> hp = parseHostPort(text);
    if (hp) {
      s.host = hp.value();
    } else {
      error("server.host", find("server.host"), hp.status().message());
    }
  }
  int64_t n = 0;
  if (readInt("server.max_header_size", 1024, 64 << 20, "from 1024 to 67108864 bytes (64 MiB)",
              &n)) {
    s.max_header_size = static_cast<uint64_t>(n);
  }
  if (readInt("server.max_header_fields", 1, 10000, "from 1 to 10000", &n)) {
    s.max_header_fields = static_cast<uint32_t>(n);
  }
  readBool("server.http2", &s.http2);
  if (readInt("server.http2_max_concurrent_streams", 1, 10000, "from 1 to 10000", &n)) {
    s.http2_max_concurrent_streams = static_cast<uint32_t>(n);
  }
  readDuration("server.idle_timeout", kPositive, kPositiveRule, &s.idle_timeout);
  readDuration("server.read_timeout", kPositive, kPositiveRule, &s.read_timeout);
  readDuration("server.request_header_timeout", kPositive, kPositiveRule,
               &s.request_header_timeout);
  readDuration("server.write_timeout", kPositive, kPositiveRule, &s.write_timeout);
  readDuration("server.shutdown_timeout", kPositive, kPositiveRule, &s.shutdown_timeout);
  readDuration("server.shutdown_delay", Millis{0}, "0 or more", &s.shutdown_delay);
  readDuration("server.tls_handshake_timeout", kPositive, kPositiveRule, &s.tls_handshake_timeout);
  if (readInt("server.max_connections", 0, UINT32_MAX, "from 0 (unlimited) to 4294967295", &n)) {
    s.max_connections = static_cast<uint32_t>(n);
  }
  std::vector<std::string> proxies;
  if (readStringArray("server.trusted_proxies", &proxies)) {
    for (size_t i = 0; i < proxies.size(); ++i) {
      std::string path = "server.trusted_proxies[" + std::to_string(i) + "]";
      Result<Cidr> cidr = parseCidr(proxies[i]);
      if (cidr) {
        s.trusted_proxies.push_back(cidr.value());
      } else {
        error(path, nullptr, cidr.status().message());
      }
    }
  }
  if (readInt("server.workers", 0, 256, "from 0 (one per usable CPU) to 256", &n)) {
    s.workers = static_cast<uint32_t>(n);
  }
}

void Loader::loadUpstream() {
  UpstreamConfig& u = config_.upstream;
  std::string url;
  if (readString("upstream.url", &url)) {
    Result<UpstreamTarget> target = parseUpstreamUrl(url);
    if (target) {
      u.url = url;
      u.tcp = target.value().tcp;
      u.unix_path = target.value().unix_path;
    } else {
      error("upstream.url", find("upstream.url"), target.status().message());
    }
  }
  readDuration("upstream.connect_timeout", kPositive, kPositiveRule, &u.connect_timeout);
  readDuration("upstream.response_timeout", kPositive, kPositiveRule, &u.response_timeout);
  int64_t n = 0;
  if (readInt("upstream.max_idle_connections", 0, UINT32_MAX, "from 0 to 4294967295", &n)) {
    u.max_idle_connections = static_cast<uint32_t>(n);
  }
  readDuration("upstream.idle_timeout", kPositive, kPositiveRule, &u.idle_timeout);
  readDuration("upstream.stream_idle_timeout", Millis{0}, "0 (= response_timeout) or more",
               &u.stream_idle_timeout);
  if (readInt("upstream.max_connections", 1, 1000000, "from 1 to 1000000", &n)) {
    u.max_connections = static_cast<uint32_t>(n);
  }
  if (readInt("upstream.max_pending", 0, 1000000, "from 0 to 1000000", &n)) {
    u.max_pending = static_cast<uint32_t>(n);
  }
}

void Loader::loadSsl() {
  SslConfig& ssl = config_.ssl;
  const toml::node* table = find("ssl");
  ssl.present = table != nullptr && table->is_table();
  bool enabled = true;
  readBool("ssl.enabled", &enabled);
  ssl.enabled = ssl.present && enabled;

  const char* const kTlsOnBecause =
      "required when TLS is on (the [ssl] table is present and enabled is not false); "
      "a file path or inline PEM";
  if (!readString("ssl.certificate", &ssl.certificate, false) && ssl.enabled &&
      !present("ssl.certificate")) {
    error("ssl.certificate", nullptr, kTlsOnBecause);
  }
  if (!readString("ssl.key", &ssl.key, false) && ssl.enabled && !present("ssl.key")) {
    error("ssl.key", nullptr, kTlsOnBecause);
  }
  readString("ssl.key_passphrase", &ssl.key_passphrase);
  readString("ssl.key_passphrase_path", &ssl.key_passphrase_path);
  if (!ssl.key_passphrase.empty() && !ssl.key_passphrase_path.empty()) {
    error("ssl.key_passphrase_path", find("ssl.key_passphrase_path"),
          "set either key_passphrase or key_passphrase_path, not both");
  }

  std::vector<std::string> protocols;
  if (readStringArray("ssl.supported_protocols", &protocols)) {
    static const char* const kValid[] = {"TLSv1", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
    bool ok = true;
    bool old = false;
    for (size_t i = 0; i < protocols.size(); ++i) {
      std::string path = "ssl.supported_protocols[" + std::to_string(i) + "]";
      const std::string& p = protocols[i];
      if (std::find(std::begin(kValid), std::end(kValid), p) != std::end(kValid)) {
        old = old || (p != "TLSv1.2" && p != "TLSv1.3");
        continue;
      }
      ok = false;
      if (p == "SSLv3") {
        error(path, nullptr, "SSLv3 is not supported (it is insecure: RFC 7568)");
      } else {
        error(path, nullptr,
              "unknown protocol \"" + p +
                  "\"; valid names: \"TLSv1\", \"TLSv1.0\", \"TLSv1.1\", \"TLSv1.2\", "
                  "\"TLSv1.3\"");
      }
    }
    if (protocols.empty()) {
      ok = false;
      error("ssl.supported_protocols", find("ssl.supported_protocols"),
            "must list at least one protocol, e.g. [\"TLSv1.2\", \"TLSv1.3\"]");
    }
    if (ok) ssl.supported_protocols = protocols;
    if (ok && old && ssl.enabled) {
      warn("ssl.supported_protocols",
           "TLS 1.0 and 1.1 are deprecated (RFC 8996); enable them only for clients that "
           "cannot do TLS 1.2");
    }
  }
  // Names are mapped (and rejected when unknown) by tls::TlsContext, which knows the library.
  readStringArray("ssl.cipher_suites", &ssl.cipher_suites);
  readStringArray("ssl.curve_types", &ssl.curve_types);
  readStringArray("ssl.certificate_authorities", &ssl.certificate_authorities);

  ssl.client_authentication_explicit = readEnum<ClientAuth>("ssl.client_authentication",
                                                            {{"none", ClientAuth::kNone},
                                                             {"optional", ClientAuth::kOptional},
                                                             {"required", ClientAuth::kRequired}},
                                                            &ssl.client_authentication);
  // APM Server (elastic-agent-libs tlscommon): certificate_authorities without an explicit
  // client_authentication means "required"; an explicit value always wins.
  if (!present("ssl.client_authentication") && !ssl.certificate_authorities.empty()) {
    ssl.client_authentication = ClientAuth::kRequired;
  }
  readEnum<VerificationMode>("ssl.verification_mode",
                             {{"full", VerificationMode::kFull},
                              {"strict", VerificationMode::kStrict},
                              {"certificate", VerificationMode::kCertificate},
                              {"none", VerificationMode::kNone}},
                             &ssl.verification_mode);

  std::vector<std::string> pins;
  if (readStringArray("ssl.ca_sha256", &pins)) {
    bool ok = true;
    for (size_t i = 0; i < pins.size(); ++i) {
      if (base64DecodedLength(pins[i]) == 32) continue;
      ok = false;
      bool hex = pins[i].size() == 64 && std::all_of(pins[i].begin(), pins[i].end(), [](char c) {
                   return std::isxdigit(static_cast<unsigned char>(c));
                 });
      error("ssl.ca_sha256[" + std::to_string(i) + "]", nullptr,
            "\"" + pins[i] + "\" is not a base64 SHA-256 fingerprint (44 characters of " +
                "standard base64 encoding 32 bytes)" +
                (hex ? "; this looks like hex, but APM Server's ca_sha256 takes base64" : ""));
    }
    if (ok) ssl.ca_sha256 = pins;
  }
  loadAllowedClients();
  readBool("ssl.forward_client_cert", &ssl.forward_client_cert);
  readBool("ssl.session_tickets", &ssl.session_tickets);
  readDuration("ssl.session_ticket_rotation", Millis{60'000}, "at least \"1m\"",
               &ssl.session_ticket_rotation);
  readBool("ssl.wait_for_certificates", &ssl.wait_for_certificates);
  Millis reload{0};
  if (readDuration("ssl.reload_interval", Millis{0}, "", &reload)) {
    if (reload.count() != 0 && reload < Millis{1'000}) {
      error("ssl.reload_interval", find("ssl.reload_interval"),
            "must be \"0s\" (off) or at least \"1s\", got \"" + formatDuration(reload) + "\"");
    } else {
      ssl.reload_interval = reload;
    }
  }
}

void Loader::loadAllowedClients() {
  AllowedClients& a = config_.ssl.allowed_clients;
  const std::string base = "ssl.allowed_clients.";
  auto readNonEmpty = [&](const char* leaf, std::vector<std::string>* out) {
    std::vector<std::string> values;
    if (!readStringArray(base + leaf, &values)) return;
    bool ok = true;
    for (size_t i = 0; i < values.size(); ++i) {
      if (values[i].empty()) {
        error(base + leaf + "[" + std::to_string(i) + "]", nullptr, "must not be empty");
        ok = false;
      }
    }
    if (ok) *out = std::move(values);
  };
  readNonEmpty("common_names", &a.common_names);
  readNonEmpty("organizational_units", &a.organizational_units);
  readNonEmpty("uris", &a.uris);
  std::vector<std::string> dns;
  readNonEmpty("dns_names", &dns);
  for (size_t i = 0; i < dns.size(); ++i) {
    // A wildcard is only "*." as the whole leftmost label, as in RFC 6125 §6.4.3.
    size_t star = dns[i].find('*');
    if (star != std::string::npos && (star != 0 || dns[i].size() < 3 || dns[i][1] != '.' ||
                                      dns[i].find('*', 1) != std::string::npos)) {
      error(base + "dns_names[" + std::to_string(i) + "]", nullptr,
            "\"" + dns[i] +
                "\": a wildcard must be the whole leftmost label, e.g. \"*.example.com\"");
      dns.clear();
      break;
    }
  }
  a.dns_names = dns;
  std::vector<std::string> ips;
  readNonEmpty("ip_addresses", &ips);
  bool ok = true;
  for (size_t i = 0; i < ips.size(); ++i) {
    uint8_t bytes[16];
    if (inet_pton(AF_INET, ips[i].c_str(), bytes) != 1 &&
        inet_pton(AF_INET6, ips[i].c_str(), bytes) != 1) {
      error(base + "ip_addresses[" + std::to_string(i) + "]", nullptr,
            "\"" + ips[i] + "\" is not an IP address (write e.g. \"10.1.2.3\" or \"fd00::1\")");
      ok = false;
    }
  }
  if (ok) a.ip_addresses = ips;
}

void Loader::loadAdmin() {
  std::string text;
  if (readString("admin.host", &text)) {
    Result<HostPort> hp = parseHostPort(text);
    if (hp) {
      config_.admin.host = hp.value();
    } else {
      error("admin.host", find("admin.host"), hp.status().message());
    }
  }
  readBool("admin.ready_requires_upstream", &config_.admin.ready_requires_upstream);
}

void Loader::loadLog() {
  LogConfig& l = config_.log;
  readEnum<LogLevel>("log.level",
                     {{"debug", LogLevel::kDebug},
                      {"info", LogLevel::kInfo},
                      {"warn", LogLevel::kWarn},
                      {"error", LogLevel::kError}},
                     &l.level);
  readEnum<LogFormat>(
      "log.format",
      {{"text", LogFormat::kText}, {"json", LogFormat::kJson}, {"ecs", LogFormat::kEcs}},
      &l.format);
  std::string access;
  if (readString("log.access", &access, false)) {
    if (access == "stdout") {
      error("log.access", find("log.access"),
            "\"stdout\" is not supported: use \"off\", \"stderr\" or a file path");
    } else {
      l.access = access;
    }
  }
}
}  // namespace proxy::config::detail
