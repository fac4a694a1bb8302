// ${VAR} expansion. The syntax follows the Elastic Beats/APM Server configuration
// (https://www.elastic.co/guide/en/beats/libbeat/current/config-file-format-env-vars.html):
// ${VAR}, ${VAR:default}, and "$${" for a literal "${". Two differences, on purpose: an
// unset variable without a default is an error (a silent empty certificate path or
// passphrase is worse than a refusal to start), and "$$" is always a literal '$'.
#include "proxy/config/env_expand.h"

#include <cstdlib>

namespace proxy::config {

namespace {

bool isNameStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool isNameChar(char c) { return isNameStart(c) || (c >= '0' && c <= '9'); }

bool validName(const std::string& name) {
  if (name.empty() || !isNameStart(name[0])) return false;
  for (char c : name) {
    if (!isNameChar(c)) return false;
  }
  return true;
}

// One line of a TOML comment: control characters (a PEM's newlines) shown escaped.
std::string oneLine(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

EnvLookup processEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    // getenv is safe here: the configuration is loaded before any thread is started.
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

Result<Expanded> expandVariables(const std::string& text, const EnvLookup& lookup) {
  Expanded result;
  std::string& out = result.value;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    bool next_dollar = i + 1 < text.size() && text[i + 1] == '$';
    bool next_brace = i + 1 < text.size() && text[i + 1] == '{';
    if (c != '$' || (!next_dollar && !next_brace)) {
      out += c;
      ++i;
      continue;
    }
    if (next_dollar) {
      out += '$';
      i += 2;
      continue;
    }
    size_t start = i + 2;
    size_t close = text.find('}', start);
    if (close == std::string::npos) {
      return Status::error("\"${\" without a closing \"}\" (write \"$${\" for a literal \"${\")");
    }
    std::string body = text.substr(start, close - start);
    if (body.find('{') != std::string::npos) {
      return Status::error(
          "nested braces in \"${...}\" are not supported: a default cannot refer to another "
          "variable");
    }
    size_t colon = body.find(':');
    std::string name = body.substr(0, colon);
    if (name.empty()) return Status::error("empty variable name in \"${}\"");
    if (!validName(name)) {
      return Status::error("invalid variable name \"" + oneLine(name) +
                           "\" in \"${...}\" (letters, digits and '_', not starting with a "
                           "digit)");
    }
    VariableUse use{name, colon != std::string::npos, false};
    if (std::optional<std::string> value = lookup(name)) {
      out += *value;
    } else if (use.has_default) {
      out += body.substr(colon + 1);
      use.used_default = true;
    } else {
      return Status::error("environment variable " + name + " is not set (and no default given)");
    }
    result.variables.push_back(std::move(use));
    i = close + 1;
  }
  return result;
}

std::string escapeVariables(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '$') out += '$';
    out += c;
  }
  return out;
}

std::string describeSource(const std::string& raw, const Expanded& expanded, bool secret) {
  std::string out;
  if (secret) {
    for (const VariableUse& v : expanded.variables) {
      if (!out.empty()) out += " ";
      out += "${" + v.name + "}";
    }
    return out + " (value redacted)";
  }
  out = "\"" + oneLine(raw) + "\"";
  std::string defaulted;
  for (const VariableUse& v : expanded.variables) {
    if (!v.used_default) continue;
    defaulted += (defaulted.empty() ? "" : ", ") + v.name;
  }
  if (!defaulted.empty()) out += " (unset, default used: " + defaulted + ")";
  return out;
}

}  // namespace proxy::config
