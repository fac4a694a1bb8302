// Value syntaxes of the config file (durations, host:port, networks) and Problem formatting.
#include <arpa/inet.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "proxy/common/duration.h"
#include "proxy/config/config.h"

namespace proxy::config {

namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }

struct Unit {
  const char* name;
  int64_t nanos;
};

// Go's time.ParseDuration units.
// "µs" is accepted in both Unicode spellings (U+00B5 and U+03BC), as Go does.
constexpr Unit kUnits[] = {
    {"ns", 1},         {"us", 1'000},        {"\xC2\xB5s", 1'000},  {"\xCE\xBCs", 1'000},
    {"ms", 1'000'000}, {"s", 1'000'000'000}, {"m", 60'000'000'000}, {"h", 3'600'000'000'000},
};

constexpr const char* kDurationHint = "write e.g. \"45s\", \"1m30s\", \"500ms\" or \"1h\"";

Status badDuration(const std::string& text, const std::string& why) {
  return Status::error("invalid duration \"" + text + "\": " + why + "; " + kDurationHint);
}

// Parses a dotted-quad or colon-hex address into 16 bytes; false when it is neither.
bool parseIp(const std::string& text, bool* v6, uint8_t out[16]) {
  std::memset(out, 0, 16);
  if (inet_pton(AF_INET, text.c_str(), out) == 1) {
    *v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), out) == 1) {
    *v6 = true;
    return true;
  }
  return false;
}

bool isHostnameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) || c == '-' || c == '.';
}

constexpr const char* kHostPortHint = "write HOST:PORT, e.g. \"127.0.0.1:8200\", \"[::1]:8200\"";

}  // namespace

std::string Problem::format() const {
  std::string out = file;
  if (pos.line != 0) {
    out += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  }
  out += ": ";
  if (warning) out += "warning: ";
  if (!key.empty()) out += key + ": ";
  out += message;
  // A problem is one line for a terminal or a log, and its text may quote the file (a
  // value, a key, toml++'s "saw '...'"): a line break or an escape sequence there would
  // split the line or reach the terminal of whoever runs `check`, whichever message
  // carries it.
  return escapeControlBytes(out);
}

std::string escapeControlBytes(std::string_view text) {
  std::string line;
  line.reserve(text.size());
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      line += "\\x";
      line += kHex[c >> 4];
      line += kHex[c & 0xf];
    } else {
      line += ch;
    }
  }
  return line;
}

Problem Config::problemAt(const std::string& key, std::string message, bool warning) const {
  // A key that was not written (e.g. a required one) is reported where its nearest written
  // ancestor stands: "ssl.certificate" at the [ssl] header, "x[2]" at "x".
  std::string probe = key;
  SourcePos pos;
  while (!probe.empty()) {
    auto it = positions.find(probe);
    if (it != positions.end()) {
      pos = it->second;
      break;
    }
    size_t cut = probe.find_last_of(".[");
    if (cut == std::string::npos) break;
    probe.resize(cut);
  }
  return Problem{file, pos, key, std::move(message), warning};
}

Result<Millis> parseDuration(const std::string& text) {
  if (text.empty()) return badDuration(text, "empty");
  if (text == "0") return Millis{0};
  size_t i = 0;
  if (text[0] == '-') return badDuration(text, "must not be negative");
  if (text[0] == '+') i = 1;
  if (i == text.size()) return badDuration(text, "no number");
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  int64_t total = 0;  // nanoseconds
  while (i < text.size()) {
    size_t start = i;
    int64_t whole = 0;
    bool overflow = false;
    while (i < text.size() && isDigit(text[i])) {
      if (whole > (kMax - 9) / 10) overflow = true;
      if (!overflow) whole = whole * 10 + (text[i] - '0');
      ++i;
    }
    bool has_whole = i > start;
    long double fraction = 0;
    bool has_fraction = false;
    if (i < text.size() && text[i] == '.') {
      ++i;
      long double scale = 0.1L;
      while (i < text.size() && isDigit(text[i])) {
        fraction += scale * (text[i] - '0');
        scale /= 10;
        has_fraction = true;
        ++i;
      }
    }
    if (!has_whole && !has_fraction) {
      return badDuration(text, "expected a number at \"" + text.substr(start) + "\"");
    }
    // The unit is everything up to the next number, so "5sec" reports "sec", not "ec".
    size_t end = i;
    while (end < text.size() && !isDigit(text[end]) && text[end] != '.') ++end;
    std::string name = text.substr(i, end - i);
    i = end;
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (name == u.name) unit = &u;
    }
    if (unit == nullptr) {
      if (name.empty()) return badDuration(text, "missing unit after the number");
      return badDuration(text, "unknown unit \"" + name + "\" (units: h, m, s, ms, us, ns)");
    }
    if (overflow || whole > kMax / unit->nanos) return badDuration(text, "too large");
    int64_t part = whole * unit->nanos;
    // llroundl: "0.3s" must give exactly 300ms even though 0.3 is not exact in binary.
    int64_t frac = static_cast<int64_t>(std::llroundl(fraction * unit->nanos));
    if (part > kMax - frac || total > kMax - part - frac) return badDuration(text, "too large");
    total += part + frac;
  }
  if (total % 1'000'000 != 0) {
    return badDuration(text, "finer than a millisecond (durations are whole milliseconds)");
  }
  return Millis{total / 1'000'000};
}

std::string formatDuration(Millis d) { return proxy::formatDuration(d); }

Result<HostPort> parseHostPort(const std::string& text) {
  if (text.empty()) return Status::error(std::string("empty address; ") + kHostPortHint);
  std::string host;
  std::string port;
  if (text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) {
      return Status::error("\"" + text + "\": missing ']' after the IPv6 address; " +
                           kHostPortHint);
    }
    host = text.substr(1, close - 1);
    uint8_t bytes[16];
    if (inet_pton(AF_INET6, host.c_str(), bytes) != 1) {
      return Status::error("\"" + text + "\": \"" + host + "\" is not an IPv6 address");
    }
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::error("\"" + text + "\": missing port; " + kHostPortHint);
    }
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
      return Status::error("\"" + text + "\": missing port; " + kHostPortHint);
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      return Status::error("\"" + text + "\": an IPv6 address must be written in brackets, " +
                           "e.g. \"[::1]:8200\"");
    }
    if (host.empty()) host = "0.0.0.0";  // ":8200", as Go's net.Listen reads it
    bool dotted_numeric = true;
    for (char c : host) dotted_numeric = dotted_numeric && (isDigit(c) || c == '.');
    uint8_t bytes[4];
    if (dotted_numeric && inet_pton(AF_INET, host.c_str(), bytes) != 1) {
      return Status::error("\"" + text + "\": \"" + host + "\" is not an IPv4 address");
    }
    bool valid_name = host.size() <= 253 && host.front() != '.' && host.front() != '-';
    for (char c : host) valid_name = valid_name && isHostnameChar(c);
    if (!valid_name) {
      return Status::error("\"" + text + "\": \"" + host + "\" is not a valid host name");
    }
  }
  if (port.empty() || port.size() > 5) {
    return Status::error("\"" + text + "\": port must be a number from 0 to 65535");
  }
  uint32_t value = 0;
  for (char c : port) {
    if (!isDigit(c)) {
      return Status::error("\"" + text + "\": port must be a number from 0 to 65535");
    }
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) {
    return Status::error("\"" + text + "\": port must be a number from 0 to 65535");
  }
  return HostPort{host, static_cast<uint16_t>(value)};
}

std::string formatHostPort(const HostPort& hp) {
  if (hp.host.find(':') != std::string::npos) {
    return "[" + hp.host + "]:" + std::to_string(hp.port);
  }
  return hp.host + ":" + std::to_string(hp.port);
}

Result<Cidr> parseCidr(const std::string& text) {
  const std::string hint = "\"" + text +
                           "\" is not a network: write an address or CIDR, e.g. "
                           "\"10.0.0.0/8\", \"192.168.1.7\", \"::1/128\"";
  Cidr cidr;
  cidr.text = text;
  size_t slash = text.find('/');
  std::string addr = text.substr(0, slash);
  if (!parseIp(addr, &cidr.v6, cidr.addr)) return Status::error(hint);
  int max_bits = cidr.v6 ? 128 : 32;
  int bits = max_bits;
  if (slash != std::string::npos) {
    std::string digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return Status::error(hint);
    bits = 0;
    for (char c : digits) {
      if (!isDigit(c)) return Status::error(hint);
      bits = bits * 10 + (c - '0');
    }
    if (bits > max_bits) {
      return Status::error("\"" + text + "\": prefix length must be at most " +
                           std::to_string(max_bits));
    }
  }
  cidr.prefix = static_cast<uint8_t>(bits);
  // Clear host bits, as Go's net.ParseCIDR does, so "10.1.2.3/8" means 10.0.0.0/8.
  for (int i = 0; i < 16; ++i) {
    int keep = bits - i * 8;
    if (keep >= 8) continue;
    cidr.addr[i] &= keep <= 0 ? 0 : static_cast<uint8_t>(0xFF << (8 - keep));
  }
  return cidr;
}

bool Cidr::contains(const std::string& ip) const {
  bool ip_v6 = false;
  uint8_t bytes[16];
  if (!parseIp(ip, &ip_v6, bytes)) return false;
  // A dual-stack socket reports IPv4 peers as "::ffff:a.b.c.d" (RFC 4291 §2.5.5.2);
  // compare those with IPv4 networks as the IPv4 address they are.
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (ip_v6 && !v6 && std::memcmp(bytes, kMapped, 12) == 0) {
    std::memmove(bytes, bytes + 12, 4);
    ip_v6 = false;
  } else if (!ip_v6 && v6) {
    std::memmove(bytes + 12, bytes, 4);
    std::memcpy(bytes, kMapped, 12);
    ip_v6 = true;
  }
  if (ip_v6 != v6) return false;
  int bits = prefix;
  for (int i = 0; bits > 0; ++i, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xFF : static_cast<uint8_t>(0xFF << (8 - bits));
    if ((bytes[i] & mask) != addr[i]) return false;
  }
  return true;
}

const char* toString(ClientAuth v) {
  switch (v) {
    case ClientAuth::kNone:
      return "none";
    case ClientAuth::kOptional:
      return "optional";
    case ClientAuth::kRequired:
      return "required";
  }
  return "?";
}

const char* toString(VerificationMode v) {
  switch (v) {
    case VerificationMode::kFull:
      return "full";
    case VerificationMode::kStrict:
      return "strict";
    case VerificationMode::kCertificate:
      return "certificate";
    case VerificationMode::kNone:
      return "none";
  }
  return "?";
}

const char* toString(LogLevel v) {
  switch (v) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

const char* toString(LogFormat v) {
  switch (v) {
    case LogFormat::kText:
      return "text";
    case LogFormat::kJson:
      return "json";
    case LogFormat::kEcs:
      return "ecs";
  }
  return "?";
}

}  // namespace proxy::config
