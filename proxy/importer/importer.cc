// The translation table is the proxy's own table of known keys: every row whose APM
// Server equivalent starts with "apm-server." is carried over, so a key added there is
// imported without a change here. Each value is converted by the row's type, then
// checked by the real loader (loadString), so a value the proxy would refuse is reported
// with the loader's own message instead of producing a TOML file that fails `check`.
#include "proxy/importer/importer.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <sstream>
#include <utility>

#include "proxy/config/config.h"
#include "proxy/config/env_expand.h"
#include "proxy/importer/apm_server_yaml.h"

namespace proxy::importer {

namespace {

using config::KeyInfo;

// What `import` writes for one proxy key.
struct Carried {
  std::string toml_value;
  std::string from;  // "apm-server.idle_timeout, line 4"
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool hasReference(const std::string& s) { return s.find("${") != std::string::npos; }

// Beats syntax -> ours: "${...}" and "$${" mean the same in both and are copied; any other
// '$' is literal in Beats and is doubled, since "$$" is one '$' in the proxy's TOML.
// Beats' "${VAR:?message}" (fail with a message) becomes "${VAR}", which also fails.
std::string translateDollars(const std::string& text, std::vector<std::string>* notes,
                             const std::string& name) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      out += "$${";
      i += 3;
    } else if (text.compare(i, 2, "${") == 0 && text.find('}', i) != std::string::npos) {
      size_t close = text.find('}', i);
      std::string ref = text.substr(i, close + 1 - i);
      size_t colon = ref.find(':');
      if (colon != std::string::npos && colon + 1 < ref.size() && ref[colon + 1] == '?') {
        notes->push_back(name + ": " + ref + " became ${" + ref.substr(2, colon - 2) +
                         "} (an unset variable is an error in the proxy, without the message)");
        ref = "${" + ref.substr(2, colon - 2) + "}";
      }
      out += ref;
      i = close + 1;
    } else {
      out += text[i] == '$' ? "$$" : std::string(1, text[i]);
      ++i;
    }
  }
  return out;
}

std::optional<bool> yamlBool(const std::string& text) {
  // YAML 1.1 spellings, which Beats' go-ucfg reads as booleans.
  std::string t = lower(text);
  if (t == "true" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "no" || t == "off") return false;
  return std::nullopt;
}

bool isInteger(const std::string& text) {
  size_t start = !text.empty() && (text[0] == '-' || text[0] == '+') ? 1 : 0;
  return text.size() > start &&
         std::all_of(text.begin() + static_cast<std::ptrdiff_t>(start), text.end(),
                     [](unsigned char c) { return std::isdigit(c) != 0; });
}

// Converts a YAML leaf to the TOML value of a key of `type` (keys.cc's spelling), or
// explains why it cannot be.
Result<std::string> convert(const YamlValue& v, const std::string& type, const std::string& name,
                            std::vector<std::string>* notes) {
  using Kind = YamlValue::Kind;
  if (type == "array of strings") {
    std::vector<std::string> items = v.items;
    if (v.kind == Kind::kScalar) items = {v.text};  // go-ucfg reads one value as a list of one
    if (v.kind != Kind::kScalar && v.kind != Kind::kList) {
      return Status::error("expected a list of strings");
    }
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i) {
      out += (i > 0 ? ", " : "") + config::tomlString(translateDollars(items[i], notes, name));
    }
    return out + "]";
  }
  if (v.kind != Kind::kScalar) return Status::error("expected a single value, not a list or map");
  if (type == "string" || type == "host:port") {
    return config::tomlString(translateDollars(v.text, notes, name));
  }
  if (type == "duration") {
    // go-ucfg reads a bare number of a duration setting as seconds.
    if (isInteger(v.text) && !v.quoted) return "\"" + v.text + "s\"";
    return config::tomlString(translateDollars(v.text, notes, name));
  }
  if (hasReference(v.text)) {
    return Status::error("\"" + v.text + "\": a variable can only stand for a string in the " +
                         "proxy's TOML; write the " + (type == "bool" ? "boolean" : "number") +
                         " itself");
  }
  if (type == "bool") {
    if (std::optional<bool> b = yamlBool(v.text)) return std::string(*b ? "true" : "false");
    return Status::error("\"" + v.text + "\" is not a boolean");
  }
  if (type.rfind("integer", 0) == 0) {
    if (isInteger(v.text)) return v.text[0] == '+' ? v.text.substr(1) : v.text;
    return Status::error("\"" + v.text + "\" is not a whole number");
  }
  return Status::error("no conversion for values of type " + type);
}

std::string tableOf(const std::string& path) { return path.substr(0, path.rfind('.')); }
std::string leafOf(const std::string& path) { return path.substr(path.rfind('.') + 1); }

// The loader's complaint about `path` = `toml_value`, checked on its own; "" when none.
// Values holding ${VAR} are checked once expanded, at `check` and start-up.
std::string loaderComplaint(const std::string& path, const std::string& toml_value) {
  if (hasReference(toml_value)) return "";
  std::string text = "[" + tableOf(path) + "]\n" + leafOf(path) + " = " + toml_value + "\n";
  config::LoadResult r = config::loadString(text, "import");
  for (const config::Problem& p : r.problems) {
    if (!p.warning && (p.key == path || p.key.rfind(path + "[", 0) == 0)) {
      return (p.key == path ? "" : p.key.substr(path.size()) + ": ") + p.message;
    }
  }
  return "";
}

// "http://127.0.0.1:8201" -> "127.0.0.1:8201"; "unix:/run/apm.sock" stays as it is
// (APM Server's host takes both forms).
std::string apmHostFor(const std::string& upstream_url) {
  if (lower(upstream_url).rfind("http://", 0) == 0) {
    std::string rest = upstream_url.substr(7);
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    bool has_port = rest.find(rest[0] == '[' ? "]:" : ":") != std::string::npos;
    return has_port ? rest : rest + ":80";
  }
  return upstream_url;
}

// log.format for `logging.json: true`: APM Server then logs ECS JSON, so "ecs" when this
// build knows it, else "json".
std::string jsonLogFormat() {
  bool ecs = config::loadString("[log]\nformat = \"ecs\"\n", "import").config.has_value();
  return ecs ? "\"ecs\"" : "\"json\"";
}

}  // namespace

Result<ImportReport> importApmServerYaml(const std::string& yaml_text,
                                         const ImportOptions& options) {
  std::string upstream_problem =
      loaderComplaint("upstream.url", config::tomlString(options.upstream_url));
  if (!upstream_problem.empty()) return Status::error("--upstream: " + upstream_problem);
  Result<std::vector<YamlSetting>> parsed = flattenYaml(yaml_text);
  if (!parsed) return parsed.status();

  // apm-server.* name -> row of the proxy's key table.
  std::map<std::string, const KeyInfo*> rows;
  for (const KeyInfo& k : config::knownKeys()) {
    if (std::string(k.apm).rfind("apm-server.", 0) == 0) rows[k.apm] = &k;
  }

  ImportReport report;
  std::map<std::string, Carried> carried;  // by proxy key path
  std::map<std::string, uint32_t> seen;    // YAML path -> line, to spot a key set twice
  bool ssl_written = false;
  std::string old_host = "localhost:8200";  // APM Server's default
  bool host_given = false;
  for (const YamlSetting& s : parsed.value()) {
    std::string where = s.path + " (line " + std::to_string(s.value.line) + ")";
    if (auto it = seen.find(s.path); it != seen.end()) {
      report.notes.push_back(s.path + " is set on line " + std::to_string(it->second) +
                             " and again on line " + std::to_string(s.value.line) +
                             "; the last one is used");
    }
    seen[s.path] = s.value.line;
    if (s.value.kind == YamlValue::Kind::kNull) {
      report.notes.push_back(where + " is empty and was skipped");
      continue;
    }
    bool is_ssl = s.path.rfind("apm-server.ssl.", 0) == 0;
    ssl_written = ssl_written || is_ssl;
    std::string proxy_key;
    std::string type;
    if (auto row = rows.find(s.path); row != rows.end()) {
      proxy_key = row->second->path;
      type = row->second->type;
    } else if (s.path == "logging.level" || s.path == "logging.json") {
      proxy_key = s.path == "logging.level" ? "log.level" : "log.format";
      type = s.path == "logging.level" ? "string" : "bool";
      // Also left in place: the same setting still shapes APM Server's own logs.
      report.left_to_apm_server.push_back(s.path);
    } else if (is_ssl) {
      report.not_carried.push_back(where + ": the proxy has no such TLS setting");
      continue;
    } else {
      report.left_to_apm_server.push_back(s.path);
      continue;
    }
    Result<std::string> value = convert(s.value, type, s.path, &report.notes);
    if (value && proxy_key == "log.level" && !hasReference(s.value.text)) {
      // APM Server says "warning" where the proxy says "warn".
      std::string level = lower(s.value.text) == "warning" ? "warn" : s.value.text;
      value = config::tomlString(level);
    } else if (value && proxy_key == "log.format") {
      value = value.value() == "true" ? jsonLogFormat() : std::string("\"text\"");
    }
    if (proxy_key == "server.host") {
      old_host = s.value.text;
      host_given = true;
    }
    std::string complaint =
        value ? loaderComplaint(proxy_key, value.value()) : value.status().message();
    if (!complaint.empty()) {
      report.not_carried.push_back(where + ": " + complaint);
      continue;
    }
    carried[proxy_key] = Carried{value.value(), where};
  }

  std::string new_host = apmHostFor(options.upstream_url);
  report.apm_changes.push_back(
      "apm-server.host: \"" + new_host + "\"  # was \"" + old_host +
      "\"; agents now connect to the proxy, APM Server serves plain HTTP behind it");
  if (ssl_written) {
    report.apm_changes.push_back(
        "apm-server.ssl.enabled: false  # TLS is the proxy's job now; remove the other "
        "apm-server.ssl.* lines");
  } else {
    report.notes.push_back(
        "no apm-server.ssl settings: the proxy serves plain HTTP too (add an [ssl] table "
        "with certificate and key to terminate TLS)");
  }
  if (!host_given) {
    carried["server.host"] = Carried{"\"" + old_host + "\"", "APM Server's default host"};
  }
  carried["upstream.url"] = Carried{config::tomlString(options.upstream_url),
                                    "APM Server, now in plain HTTP (set its host as shown)"};

  std::ostringstream out;
  out << "# apm-tls-proxy configuration imported from " << options.source_name << ".\n"
      << "# Check it with: apm-tls-proxy check --config FILE\n";
  std::string table;
  for (const KeyInfo& k : config::knownKeys()) {
    auto it = carried.find(k.path);
    if (it == carried.end()) continue;
    if (tableOf(k.path) != table) {
      table = tableOf(k.path);
      out << "\n[" << table << "]\n";
    }
    out << leafOf(k.path) << " = " << it->second.toml_value << "  # " << it->second.from << "\n";
  }
  report.toml = out.str();
  return report;
}

std::string formatReport(const ImportReport& report) {
  std::ostringstream out;
  auto section = [&](const char* title, const std::vector<std::string>& lines) {
    if (lines.empty()) return;
    out << title << "\n";
    // Items quote apm-server.yml (keys, values, the loader's complaints): a multi-line
    // value must not split an item or bring escape sequences to the terminal.
    for (const std::string& line : lines) out << "  " << config::escapeControlBytes(line) << "\n";
  };
  section("Change these lines in apm-server.yml:", report.apm_changes);
  section("Not carried over (the proxy cannot take these; review them):", report.not_carried);
  section("Left to APM Server (they stay in apm-server.yml):", report.left_to_apm_server);
  section("Notes:", report.notes);
  return out.str();
}

}  // namespace proxy::importer
