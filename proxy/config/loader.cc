// The Loader's frame: parse, walk every key once for its position, the typed reads each
// section uses, and the module's two entry points.
#include "proxy/config/loader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace proxy::config {
namespace detail {

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

LoadResult Loader::load(const std::string& text) {
  LoadResult result;
  try {
    root_ = toml::parse(text, config_.file);
  } catch (const toml::parse_error& e) {
    // The one place toml++ throws (Debian builds it with exceptions): turn it into a value.
    // Its description may quote control bytes of the file; Problem::format() escapes them.
    std::string message(e.description());
    result.problems.push_back(Problem{config_.file, posOf(e.source()), "", std::move(message)});
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

}  // namespace detail

LoadResult loadString(const std::string& toml_text, const std::string& name) {
  return detail::Loader(name).load(toml_text);
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
