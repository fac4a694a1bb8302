// An apm-server.yml read into a flat list of dotted settings, for `apm-tls-proxy import`.
// Beats configuration treats "a.b: 1" and "a: {b: 1}" alike, so both spellings (and any
// mix of them) flatten to the same path "a.b". yaml-cpp stays inside the .cc file; this
// module never touches the proxy's running parts (no libuv, no TLS).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proxy/common/status.h"

namespace proxy::importer {

// One leaf of the YAML tree.
struct YamlValue {
  enum class Kind {
    kScalar,  // `text`
    kList,    // `items`: a sequence of scalars
    kNull,    // "key:" with nothing after it
    kOther,   // anything else (a sequence of maps, ...): cannot be carried over
  };
  Kind kind = Kind::kNull;
  std::string text;
  std::vector<std::string> items;
  bool quoted = false;  // a scalar written in quotes (so `"true"` is text, not a boolean)
  uint32_t line = 0;    // 1-based position of the setting's key in the file
  uint32_t column = 0;
};

struct YamlSetting {
  std::string path;  // "apm-server.ssl.certificate"
  YamlValue value;
};

// Parses `text` (the first YAML document) into its leaves, in document order. An empty
// document gives no settings. Fails with "LINE:COLUMN: reason" on invalid YAML, and when
// the top level is not a mapping.
Result<std::vector<YamlSetting>> flattenYaml(const std::string& text);

}  // namespace proxy::importer
