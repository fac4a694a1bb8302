// apm-server.yml -> the equivalent apm-tls-proxy TOML (`apm-tls-proxy import`, issue 11).
// Every apm-server.* key that has a proxy equivalent in the table of known keys
// (config/keys.cc) is carried over with the same meaning; everything else is named in the
// report, never dropped silently. Pure text in, text out: reads no file, starts nothing.
#pragma once

#include <string>
#include <vector>

#include "proxy/common/status.h"

namespace proxy::importer {

struct ImportOptions {
  // Where APM Server will listen in plain HTTP: the proxy's [upstream] url.
  std::string upstream_url = "http://127.0.0.1:8201";
  // The YAML file's name, for the header comment of the TOML.
  std::string source_name = "apm-server.yml";
};

struct ImportReport {
  std::string toml;  // the proxy's configuration (for stdout)
  // Lines to set in apm-server.yml, e.g. `apm-server.host: "127.0.0.1:8201"`, each with
  // why after "  # ".
  std::vector<std::string> apm_changes;
  // Settings the proxy should have taken but cannot: "NAME (line N): why".
  std::vector<std::string> not_carried;
  // Settings that are APM Server's business and stay in apm-server.yml, by name.
  std::vector<std::string> left_to_apm_server;
  // Everything else worth knowing (a key written twice, empty values, ...).
  std::vector<std::string> notes;
};

// Translates `yaml_text`. Fails (the caller exits 2) on invalid YAML ("LINE:COLUMN: why")
// and on an unusable `options.upstream_url`. ${VAR} and ${VAR:default} are kept as they
// are (they mean the same in the TOML); any other '$' is doubled so it stays literal.
Result<ImportReport> importApmServerYaml(const std::string& yaml_text,
                                         const ImportOptions& options);

// The report's lists as the text `import` prints on stderr.
std::string formatReport(const ImportReport& report);

}  // namespace proxy::importer
