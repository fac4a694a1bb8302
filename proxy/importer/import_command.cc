#include "proxy/importer/import_command.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "proxy/importer/importer.h"

namespace proxy::importer {

namespace {

constexpr const char kUsage[] =
    "Usage: apm-tls-proxy import [--upstream URL] APM_SERVER_YML\n"
    "\n"
    "Prints the apm-tls-proxy configuration (TOML) equivalent to an apm-server.yml:\n"
    "apm-server.host, every apm-server.ssl.* setting the proxy knows, the timeouts,\n"
    "max_header_size and max_connections. On stderr: the lines to change in\n"
    "apm-server.yml (APM Server then listens in plain HTTP behind the proxy) and every\n"
    "setting that was not carried over. ${VAR} references are kept as they are.\n"
    "\n"
    "Options:\n"
    "  --upstream URL   where APM Server will listen in plain HTTP\n"
    "                   (default http://127.0.0.1:8201; or unix:/PATH)\n"
    "  -h, --help       show this help\n"
    "\n"
    "  apm-tls-proxy import /etc/apm-server/apm-server.yml > apm-tls-proxy.toml\n";

}  // namespace

int runImport(int argc, char** argv, std::ostream& out, std::ostream& err) {
  ImportOptions options;
  std::string file;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      out << kUsage;
      return 0;
    }
    if (a == "--upstream") {
      if (i + 1 >= argc) {
        err << "apm-tls-proxy import: --upstream needs a value\n\n" << kUsage;
        return 2;
      }
      options.upstream_url = argv[++i];
    } else if (a.rfind("--upstream=", 0) == 0) {
      options.upstream_url = a.substr(11);
    } else if (!a.empty() && a[0] == '-') {
      err << "apm-tls-proxy import: unknown option '" << a << "'\n\n" << kUsage;
      return 2;
    } else if (file.empty()) {
      file = a;
    } else {
      err << "apm-tls-proxy import: one file at a time ('" << file << "' and '" << a << "')\n\n"
          << kUsage;
      return 2;
    }
  }
  if (file.empty()) {
    err << "apm-tls-proxy import: the apm-server.yml file is required\n\n" << kUsage;
    return 2;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    err << file << ": cannot read the file: " << std::strerror(errno) << "\n";
    return 2;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    err << file << ": cannot read the file: " << std::strerror(errno) << "\n";
    return 2;
  }
  options.source_name = file;
  Result<ImportReport> report = importApmServerYaml(text.str(), options);
  if (!report) {
    // A YAML problem reads "LINE:COLUMN: why"; an --upstream one names the option.
    bool yaml = report.status().message().rfind("--upstream", 0) != 0;
    err << (yaml ? file + ":" : std::string("apm-tls-proxy import: ")) << report.status().message()
        << (yaml ? " (not valid YAML; nothing was imported)" : "") << "\n";
    return 2;
  }
  out << report.value().toml;
  err << formatReport(report.value());
  return 0;
}

int runImport(int argc, char** argv) { return runImport(argc, argv, std::cout, std::cerr); }

}  // namespace proxy::importer
