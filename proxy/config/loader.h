// The TOML walk behind loadString() and loadFile(): a Loader walks the tree once to
// record positions and reject unknown keys (loader.cc, key_suggestions.cc), then reads
// every known key with its type and rule (sections.cc) and checks keys against each other
// (cross_check.cc), collecting every problem rather than stopping at the first (STYLE.md
// §4: startup errors). Internal to the config module.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "proxy/config/config.h"
#include "proxy/config/env_expand.h"

namespace proxy::config::detail {

SourcePos posOf(const toml::source_region& region);
// "a string", "an integer", ...: the type of a node as an error message names it.
const char* typeName(const toml::node& node);

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

}  // namespace proxy::config::detail
