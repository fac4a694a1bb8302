// `apm-tls-proxy import [--upstream URL] apm-server.yml`: reads the file, prints the
// equivalent TOML on stdout and, on stderr, what to change in apm-server.yml and every
// setting that was not carried over. Beside the proxy, not in its data flow: main.cc
// dispatches here. Writes no file.
#pragma once

#include <ostream>

namespace proxy::importer {

// Runs `import` with argv[0] == "import". Exit code: 0 done (even when some settings could
// not be carried over: they are listed), 2 bad usage, an unreadable file or invalid YAML.
int runImport(int argc, char** argv);

// The same, writing to `out` (the TOML) and `err` (the report and errors), for tests.
int runImport(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace proxy::importer
