// TOML -> Config. toml++ parses; a Loader walks the tree once to record positions and
// reject unknown keys, then reads every known key with its type and rule, collecting every
// problem rather than stopping at the first (STYLE.md §4: startup errors).
#include "proxy/config/config.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "proxy/config/env_expand.h"

namespace proxy::config {

namespace {

SourcePos posOf(const toml::source_region& region) {
  return SourcePos{region.begin.line, region.begin.column};
}

const char* typeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string quoted(const std::string& s) { return "`" + s + "`"; }

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, so that
// "timeuot" is one step from "timeout".
size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// How close `written` is to `known`, or npos when not close enough to suggest.
size_t closeness(const std::string& written, const std::string& known) {
  size_t shorter = std::min(written.size(), known.size());
  if (shorter >= 3 && (known.compare(0, written.size(), written) == 0 ||
                       written.compare(0, known.size(), known) == 0)) {
    return 2;  // a prefix ("idle" for "idle_timeout") ranks like two edits
  }
  size_t dist = editDistance(written, known);
  size_t limit = written.size() <= 3 ? 1 : 2;
  return dist <= limit ? dist : std::string::npos;
}

std::string parentOf(const std::string& path) {
  size_t dot = path.rfind('.');
  return dot == std::string::npos ? std::string() : path.substr(0, dot);
}

std::string leafOf(const std::string& path) {
  size_t dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

std::string tableLabel(const std::string& table) {
  return table.empty() ? "at the top level" : "in [" + table + "]";
}

bool isLoopbackHost(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  uint8_t bytes[4];
  return inet_pton(AF_INET, host.c_str(), bytes) == 1 && bytes[0] == 127;
}

bool isWildcardHost(const std::string& host) { return host == "0.0.0.0" || host == "::"; }

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

struct UpstreamTarget {
  std::optional<HostPort> tcp;
  std::string unix_path;
};

// "http://host[:port][/]" or "unix:/path". Anything else is refused with the reason.
Result<UpstreamTarget> parseUpstreamUrl(const std::string& url) {
  constexpr const char* kHint = "write \"http://HOST:PORT\" or \"unix:/PATH\"";
  std::string lower = url;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  UpstreamTarget target;
  if (lower.rfind("unix:", 0) == 0) {
    target.unix_path = url.substr(5);
    if (target.unix_path.empty())
      return Status::error("empty unix socket path; " + std::string(kHint));
    // sockaddr_un.sun_path holds 108 bytes including the terminating NUL (unix(7)).
    if (target.unix_path.size() > 107) {
      return Status::error("unix socket path is longer than 107 bytes, the limit of sun_path");
    }
    return target;
  }
  if (lower.rfind("https://", 0) == 0) {
    return Status::error(
        "TLS to the upstream is not supported: the proxy terminates TLS and speaks plain "
        "HTTP to an upstream on the same host or pod; use \"http://\" or \"unix:\"");
  }
  if (lower.rfind("http://", 0) != 0) {
    return Status::error("\"" + url + "\": unsupported scheme; " + kHint);
  }
  std::string rest = url.substr(7);
  size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    if (slash + 1 != rest.size()) {
      return Status::error("\"" + url +
                           "\": a path is not supported (requests keep their own path); " + kHint);
    }
    rest.resize(slash);
  }
  if (rest.empty()) return Status::error("\"" + url + "\": missing host; " + kHint);
  // RFC 3986 §3.2.3: an omitted port means the scheme's default, 80 for http.
  bool has_port =
      rest[0] == '[' ? rest.find("]:") != std::string::npos : rest.find(':') != std::string::npos;
  Result<HostPort> hp = parseHostPort(has_port ? rest : rest + ":80");
  if (!hp) return Status::error("\"" + url + "\": " + hp.status().message());
  if (hp.value().port == 0) return Status::error("\"" + url + "\": port 0 cannot be connected to");
  if (isWildcardHost(hp.value().host)) {
    return Status::error("\"" + url + "\": " + hp.value().host +
                         " is a listen address, not one to connect to (use 127.0.0.1)");
  }
  target.tcp = hp.value();
  return target;
}

class Loader {
 public:
  explicit Loader(std::string file) { config_.file = std::move(file); }

  LoadResult load(const std::string& text);

 private:
  // Pass 1: positions of every key, unknown keys and tables.
  void walk(const toml::table& table, const std::string& prefix);
  void reportUnknown(const std::string& path, SourcePos pos, bool is_table);

  // Pass 2: typed reads. Each returns true when the key is present and valid, and reports
  // a problem when it is present and invalid.
  const toml::node* find(const std::string& path) const;
  bool present(const std::string& path) const { return find(path) != nullptr; }
  // A string value with ${VAR} expanded (env_expand.h); reports the failure at `node`.
  bool expand(const std::string& path, const toml::node& node, const std::string& raw,
              std::string* out);
  bool readString(const std::string& path, std::string* out, bool allow_empty = true);
  bool readBool(const std::string& path, bool* out);
  bool readInt(const std::string& path, int64_t min, int64_t max, const std::string& rule,
               int64_t* out);
  bool readDuration(const std::string& path, Millis min, const std::string& rule, Millis* out);
  bool readStringArray(const std::string& path, std::vector<std::string>* out);
  template <class E>
  bool readEnum(const std::string& path, const std::vector<std::pair<const char*, E>>& values,
                E* out);

  void loadServer();
  void loadUpstream();
  void loadSsl();
  void loadAllowedClients();
  void loadAdmin();
  void loadLog();
  void crossCheck();

  void error(const std::string& path, const toml::node* node, std::string message);
  void warn(const std::string& path, std::string message);

  toml::table root_;
  EnvLookup env_ = processEnvironment();
  Config config_;
  std::vector<Problem> problems_;
};

LoadResult Loader::load(const std::string& text) {
  LoadResult result;
  try {
    root_ = toml::parse(text, config_.file);
  } catch (const toml::parse_error& e) {
    // The one place toml++ throws (Debian builds it with exceptions): turn it into a value.
    result.problems.push_back(
        Problem{config_.file, posOf(e.source()), "", std::string(e.description())});
    return result;
  }
  walk(root_, "");
  loadServer();
  loadUpstream();
  loadSsl();
  loadAdmin();
  loadLog();
  crossCheck();

  // Report in file order; problems without a position (none expected) go last.
  std::stable_sort(problems_.begin(), problems_.end(), [](const Problem& a, const Problem& b) {
    auto key = [](const Problem& p) {
      return std::make_pair(p.pos.line == 0 ? UINT32_MAX : p.pos.line, p.pos.column);
    };
    return key(a) < key(b);
  });
  bool failed =
      std::any_of(problems_.begin(), problems_.end(), [](const Problem& p) { return !p.warning; });
  if (failed) {
    result.problems = std::move(problems_);
    return result;
  }
  config_.warnings = std::move(problems_);
  result.config = std::move(config_);
  return result;
}

void Loader::walk(const toml::table& table, const std::string& prefix) {
  const auto& keys = knownKeys();
  const auto& tables = knownTables();
  for (auto&& [key, node] : table) {
    std::string path =
        prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str());
    SourcePos pos = posOf(key.source());
    if (pos.line == 0) pos = posOf(node.source());
    config_.positions[path] = pos;
    if (std::find(tables.begin(), tables.end(), path) != tables.end()) {
      if (const toml::table* sub = node.as_table()) {
        walk(*sub, path);
      } else {
        error(path, &node, std::string("expected a table ([") + path + "]), got " + typeName(node));
      }
      continue;
    }
    bool known =
        std::any_of(keys.begin(), keys.end(), [&](const KeyInfo& k) { return path == k.path; });
    if (known) {
      if (const toml::array* array = node.as_array()) {
        for (size_t i = 0; i < array->size(); ++i) {
          config_.positions[path + "[" + std::to_string(i) + "]"] = posOf((*array)[i].source());
        }
      }
      continue;
    }
    reportUnknown(path, pos, node.is_table());
  }
}

void Loader::reportUnknown(const std::string& path, SourcePos pos, bool is_table) {
  std::string parent = parentOf(path);
  std::string leaf = leafOf(path);
  // Candidates in the same table first, tables and keys alike.
  std::vector<std::string> siblings;
  for (const std::string& t : knownTables()) {
    if (parentOf(t) == parent) siblings.push_back(t);
  }
  for (const KeyInfo& k : knownKeys()) {
    if (parentOf(k.path) == parent) siblings.push_back(k.path);
  }
  std::string best;
  size_t best_score = std::string::npos;
  for (const std::string& s : siblings) {
    size_t score = closeness(leaf, leafOf(s));
    if (score < best_score) {
      best_score = score;
      best = s;
    }
  }
  std::string what = is_table ? "unknown table [" + path + "]"
                              : "unknown key " + quoted(leaf) + " " + tableLabel(parent);
  std::string message;
  if (!best.empty()) {
    bool best_is_table =
        std::find(knownTables().begin(), knownTables().end(), best) != knownTables().end();
    message =
        what + "; did you mean " + (best_is_table ? "[" + best + "]" : quoted(leafOf(best))) + "?";
  } else {
    // The right name in the wrong table ("certificate" under [server]).
    for (const KeyInfo& k : knownKeys()) {
      if (leafOf(k.path) == leaf) {
        message = what + "; did you mean " + quoted(leaf) + " in [" + parentOf(k.path) + "]?";
        break;
      }
    }
  }
  if (message.empty()) {
    std::string list;
    for (const std::string& s : siblings) {
      if (!list.empty()) list += ", ";
      bool s_is_table =
          std::find(knownTables().begin(), knownTables().end(), s) != knownTables().end();
      list += s_is_table ? "[" + s + "]" : leafOf(s);
    }
    message = what + (parent.empty() ? "; known tables: " : "; known keys: ") + list;
  }
  problems_.push_back(Problem{config_.file, pos, path, std::move(message), false});
}

const toml::node* Loader::find(const std::string& path) const {
  const toml::node* node = &root_;
  size_t start = 0;
  while (node != nullptr) {
    const toml::table* table = node->as_table();
    if (table == nullptr) return nullptr;  // reported by walk()
    size_t dot = path.find('.', start);
    node = table->get(path.substr(start, dot == std::string::npos ? dot : dot - start));
    if (dot == std::string::npos) return node;
    start = dot + 1;
  }
  return nullptr;
}

void Loader::error(const std::string& path, const toml::node* node, std::string message) {
  Problem p = config_.problemAt(path, std::move(message));
  if (node != nullptr && node->source().begin.line != 0) p.pos = posOf(node->source());
  problems_.push_back(std::move(p));
}

void Loader::warn(const std::string& path, std::string message) {
  Problem p = config_.problemAt(path, std::move(message), true);
  const toml::node* node = find(path);
  if (node != nullptr && node->source().begin.line != 0) p.pos = posOf(node->source());
  problems_.push_back(std::move(p));
}

bool Loader::expand(const std::string& path, const toml::node& node, const std::string& raw,
                    std::string* out) {
  Result<Expanded> e = expandVariables(raw, env_);
  if (!e) {
    error(path, &node, e.status().message());
    return false;
  }
  if (!e.value().variables.empty()) {
    // A private key given inline through a variable is a secret kept out of the file:
    // check must not print it (nor a default that holds it).
    bool inline_key = path == "ssl.key" && isInlinePem(e.value().value);
    config_.sources[path] =
        describeSource(raw, e.value(), path == "ssl.key_passphrase" || inline_key);
  }
  *out = std::move(e.value().value);
  return true;
}

bool Loader::readString(const std::string& path, std::string* out, bool allow_empty) {
  const toml::node* node = find(path);
  if (node == nullptr) return false;
  const auto* value = node->as_string();
  if (value == nullptr) {
    error(path, node, std::string("expected a string, got ") + typeName(*node));
    return false;
  }
  std::string text;
  if (!expand(path, *node, value->get(), &text)) return false;
  if (!allow_empty && text.empty()) {
    error(path, node, "must not be empty");
    return false;
  }
  *out = std::move(text);
  return true;
}

bool Loader::readBool(const std::string& path, bool* out) {
  const toml::node* node = find(path);
  if (node == nullptr) return false;
  const auto* value = node->as_boolean();
  if (value == nullptr) {
    std::string hint = node->is_string() ? " (write true or false without quotes)" : "";
    error(path, node, std::string("expected a boolean, got ") + typeName(*node) + hint);
    return false;
  }
  *out = value->get();
  return true;
}

bool Loader::readInt(const std::string& path, int64_t min, int64_t max, const std::string& rule,
                     int64_t* out) {
  const toml::node* node = find(path);
  if (node == nullptr) return false;
  const auto* value = node->as_integer();
  if (value == nullptr) {
    std::string hint = node->is_string() ? " (write the number without quotes)" : "";
    error(path, node, std::string("expected an integer, got ") + typeName(*node) + hint);
    return false;
  }
  if (value->get() < min || value->get() > max) {
    error(path, node, "must be " + rule + ", got " + std::to_string(value->get()));
    return false;
  }
  *out = value->get();
  return true;
}

bool Loader::readDuration(const std::string& path, Millis min, const std::string& rule,
                          Millis* out) {
  const toml::node* node = find(path);
  if (node == nullptr) return false;
  const auto* value = node->as_string();
  if (value == nullptr) {
    std::string hint;
    if (const auto* number = node->as_integer()) {
      hint = " (durations are strings with a unit: write \"" + std::to_string(number->get()) +
             "s\" for " + std::to_string(number->get()) + " seconds)";
    } else {
      hint = " (write e.g. \"45s\", \"1m30s\" or \"500ms\")";
    }
    error(path, node, std::string("expected a duration string, got ") + typeName(*node) + hint);
    return false;
  }
  std::string text;
  if (!expand(path, *node, value->get(), &text)) return false;
  Result<Millis> parsed = parseDuration(text);
  if (!parsed) {
    error(path, node, parsed.status().message());
    return false;
  }
  if (parsed.value() < min) {
    error(path, node, "must be " + rule + ", got \"" + text + "\"");
    return false;
  }
  *out = parsed.value();
  return true;
}

bool Loader::readStringArray(const std::string& path, std::vector<std::string>* out) {
  const toml::node* node = find(path);
  if (node == nullptr) return false;
  const toml::array* array = node->as_array();
  if (array == nullptr) {
    std::string hint =
        node->is_string() ? " (write a list: [\"" + node->as_string()->get() + "\"])" : "";
    error(path, node, std::string("expected an array of strings, got ") + typeName(*node) + hint);
    return false;
  }
  bool ok = true;
  std::vector<std::string> values;
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = (*array)[i];
    if (const auto* s = element.as_string()) {
      std::string text;
      if (expand(path + "[" + std::to_string(i) + "]", element, s->get(), &text)) {
        values.push_back(std::move(text));
      } else {
        ok = false;
      }
    } else {
      error(path + "[" + std::to_string(i) + "]", &element,
            std::string("expected a string, got ") + typeName(element));
      ok = false;
    }
  }
  if (ok) *out = std::move(values);
  return ok;
}

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

constexpr Millis kPositive{1};
const char* const kPositiveRule = "greater than 0 (e.g. \"30s\")";

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

void Loader::crossCheck() {
  const Config& c = config_;
  const SslConfig& ssl = c.ssl;
  if (ssl.present && !ssl.enabled) {
    bool others = false;
    if (const toml::table* t = find("ssl")->as_table()) others = t->size() > 1;
    if (others) {
      warn("ssl.enabled",
           "enabled = false: TLS is off and the proxy serves plain HTTP; the other [ssl] "
           "settings are ignored");
    }
  }
  if (ssl.enabled) {
    if (!ssl.allowed_clients.empty() && ssl.client_authentication == ClientAuth::kNone) {
      error("ssl.allowed_clients", nullptr,
            "an allow-list needs client certificates, but client_authentication is \"none\"; "
            "set it to \"required\" (or \"optional\")");
    }
    if (ssl.client_authentication == ClientAuth::kNone && ssl.client_authentication_explicit &&
        !ssl.certificate_authorities.empty()) {
      warn("ssl.client_authentication",
           "\"none\" is written explicitly, so no client certificate is requested and "
           "certificate_authorities is ignored (remove this key to require client "
           "certificates, as APM Server does)");
    }
    // client authentication without CAs: the TLS module warns when it loads the system
    // trust store (it names the file), so the warning is not repeated here.
    if (ssl.client_authentication == ClientAuth::kNone && !ssl.ca_sha256.empty()) {
      warn("ssl.ca_sha256",
           "client_authentication is \"none\", so no client chain is ever checked against "
           "these pins");
    }
    if (present("ssl.verification_mode") && ssl.verification_mode == VerificationMode::kNone) {
      warn("ssl.verification_mode",
           "\"none\" has no effect here: on the server side APM Server never disables "
           "client-certificate verification, and neither does apm-tls-proxy (use "
           "client_authentication to control client certificates)");
    }
    if (c.upstream.tcp && !isLoopbackHost(c.upstream.tcp->host)) {
      warn("upstream.url", "TLS is on but the upstream \"" + c.upstream.url +
                               "\" is plain HTTP and not on loopback: plaintext leaves the host");
    }
  }
  if (!c.ssl.enabled && !isLoopbackHost(c.server.host.host)) {
    // APM Server's own default, but never silently: agents send secret tokens and API keys.
    warn("server.host",
         "TLS is off (no [ssl] table, or ssl.enabled = false) and the proxy listens beyond "
         "loopback: agents' events, secret tokens and API keys travel in plaintext");
  }
  if (c.upstream.idle_timeout >= Millis{45'000} && present("upstream.idle_timeout")) {
    warn("upstream.idle_timeout",
         "should be shorter than the upstream's own idle timeout (APM Server: 45s), or the "
         "proxy may reuse a connection the upstream is closing");
  }
  auto sameAddress = [](const HostPort& a, const HostPort& b) {
    return a.port != 0 && a.port == b.port &&
           (a.host == b.host || isWildcardHost(a.host) || isWildcardHost(b.host));
  };
  if (c.admin.host && sameAddress(*c.admin.host, c.server.host)) {
    error("admin.host", find("admin.host"),
          "the same address as server.host (" + formatHostPort(c.server.host) +
              "); give the admin endpoint its own port");
  }
  if (c.upstream.tcp && c.upstream.tcp->port == c.server.host.port &&
      (c.upstream.tcp->host == c.server.host.host ||
       (isWildcardHost(c.server.host.host) && isLoopbackHost(c.upstream.tcp->host)))) {
    error("upstream.url", find("upstream.url"),
          "points at the proxy's own listen address (server.host = \"" +
              formatHostPort(c.server.host) + "\"): requests would loop");
  }
}

}  // namespace

LoadResult loadString(const std::string& toml_text, const std::string& name) {
  return Loader(name).load(toml_text);
}

LoadResult loadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.problems.push_back(
        Problem{path, {}, "", std::string("cannot read the file: ") + std::strerror(errno)});
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return loadString(text.str(), path);
}

}  // namespace proxy::config
