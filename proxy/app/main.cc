// apm-tls-proxy: argv -> Config -> Server::run(); exit codes. Nothing else.
// Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage.
#include <llhttp.h>
#include <openssl/base.h>
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "proxy/app/server.h"
#include "proxy/app/tls_options.h"
#include "proxy/certutil/certutil_command.h"
#include "proxy/common/log.h"
#include "proxy/common/version.h"
#include "proxy/config/config.h"
#include "proxy/importer/import_command.h"
#include "proxy/tls/ticket_keys.h"
#include "proxy/tls/tls_context.h"

namespace {

constexpr const char kUsage[] =
    "apm-tls-proxy: a TLS-terminating sidecar for APM intake servers\n"
    "\n"
    "Usage:\n"
    "  apm-tls-proxy run --config FILE [--ready-file PATH]\n"
    "      Run in the foreground, logging to stderr. SIGHUP reloads certificates;\n"
    "      SIGTERM/SIGINT drain and exit (a second signal exits at once).\n"
    "  apm-tls-proxy check --config FILE\n"
    "      Validate FILE (and the certificate files it names), print the effective\n"
    "      configuration with every default filled in. Exit 0 when valid, 2 when not.\n"
    "  apm-tls-proxy certutil ca|cert [options]\n"
    "      Create a CA and certificates (see 'apm-tls-proxy certutil --help').\n"
    "  apm-tls-proxy import [--upstream URL] APM_SERVER_YML\n"
    "      Print the TOML equivalent to an apm-server.yml, and what to change in it.\n"
    "  apm-tls-proxy --version | --help\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     the TOML configuration file\n"
    "  --ready-file PATH     once listening, write 'listen=HOST:PORT' (and\n"
    "                        'admin=HOST:PORT') to PATH\n";

void printVersion() {
  std::printf("apm-tls-proxy %s\n", proxy::kVersion);
  std::printf("tls: BoringSSL (API version %d)\n", BORINGSSL_API_VERSION);
  std::printf("libuv: %s\n", uv_version_string());
  std::printf("llhttp: %d.%d.%d\n", LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR,
              LLHTTP_VERSION_PATCH);
}

struct Args {
  std::string config;
  std::string ready_file;
};

// Parses the options after the command word. Returns false (after printing why) on misuse.
bool parseArgs(int argc, char** argv, int first, Args& out) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "apm-tls-proxy: %s needs a value\n", name);
        return nullptr;
      }
      return argv[++i];
    };
    if (a == "-c" || a == "--config") {
      const char* v = value("--config");
      if (v == nullptr) return false;
      out.config = v;
    } else if (a.rfind("--config=", 0) == 0) {
      out.config = a.substr(9);
    } else if (a == "--ready-file") {
      const char* v = value("--ready-file");
      if (v == nullptr) return false;
      out.ready_file = v;
    } else {
      std::fprintf(stderr, "apm-tls-proxy: unknown option '%s'\n\n%s", a.c_str(), kUsage);
      return false;
    }
  }
  if (out.config.empty()) {
    std::fprintf(stderr, "apm-tls-proxy: --config FILE is required\n\n%s", kUsage);
    return false;
  }
  return true;
}

// Loads the config and, when TLS is on, the files it names. Prints every problem.
bool loadAndValidate(const std::string& path, proxy::config::Config& out, bool print_tls_summary) {
  proxy::config::LoadResult r = proxy::config::loadFile(path);
  if (!r.config) {
    for (const auto& p : r.problems) std::fprintf(stderr, "%s\n", p.format().c_str());
    std::fprintf(stderr, "%s: %zu problem(s); nothing was started\n", path.c_str(),
                 r.problems.size());
    return false;
  }
  out = std::move(*r.config);
  for (const auto& w : out.warnings) std::fprintf(stderr, "%s\n", w.format().c_str());
  if (print_tls_summary && out.ssl.enabled) {
    auto keys = proxy::tls::TicketKeys::create(out.ssl.session_ticket_rotation);
    proxy::tls::TlsContext::CreateResult t =
        proxy::tls::TlsContext::create(proxy::app::tlsOptions(out), keys);
    for (const auto& w : t.warnings) {
      std::fprintf(stderr, "%s\n", proxy::app::toConfigProblem(out, w).format().c_str());
    }
    if (!t.context) {
      for (const auto& p : t.problems) {
        std::fprintf(stderr, "%s\n", proxy::app::toConfigProblem(out, p).format().c_str());
      }
      std::fprintf(stderr, "%s: %zu problem(s)\n", path.c_str(), t.problems.size());
      return false;
    }
    std::printf("# TLS: %s\n", t.context->summary().c_str());
  }
  return true;
}

proxy::log::Level toLogLevel(proxy::config::LogLevel l) {
  switch (l) {
    case proxy::config::LogLevel::kDebug:
      return proxy::log::Level::kDebug;
    case proxy::config::LogLevel::kInfo:
      return proxy::log::Level::kInfo;
    case proxy::config::LogLevel::kWarn:
      return proxy::log::Level::kWarn;
    case proxy::config::LogLevel::kError:
      return proxy::log::Level::kError;
  }
  return proxy::log::Level::kInfo;
}

proxy::log::Format toLogFormat(proxy::config::LogFormat f) {
  switch (f) {
    case proxy::config::LogFormat::kText:
      return proxy::log::Format::kText;
    case proxy::config::LogFormat::kJson:
      return proxy::log::Format::kJson;
    case proxy::config::LogFormat::kEcs:
      return proxy::log::Format::kEcs;
  }
  return proxy::log::Format::kText;
}

int runCommand(const Args& args) {
  proxy::config::LoadResult r = proxy::config::loadFile(args.config);
  if (!r.config) {
    for (const auto& p : r.problems) std::fprintf(stderr, "%s\n", p.format().c_str());
    std::fprintf(stderr, "%s: %zu problem(s); nothing was started\n", args.config.c_str(),
                 r.problems.size());
    return 2;
  }
  proxy::config::Config config = std::move(*r.config);
  proxy::log::configure(toLogLevel(config.log.level), toLogFormat(config.log.format));
  proxy::app::Server server(std::move(config), args.ready_file);
  return server.run();
}

int checkCommand(const Args& args) {
  proxy::config::Config config;
  if (!loadAndValidate(args.config, config, /*print_tls_summary=*/true)) return 2;
  // stdout carries only TOML (it can be saved and loaded again); the verdict goes to stderr.
  std::fputs(proxy::config::toToml(config).c_str(), stdout);
  std::fprintf(stderr, "%s: valid\n", args.config.c_str());
  return 0;
}

int realMain(int argc, char** argv) {
  // Writes to a peer that has gone must fail with EPIPE, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "--version" || cmd == "-V" || cmd == "version") {
    printVersion();
    return 0;
  }
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "certutil") return proxy::certutil::runCertutil(argc - 1, argv + 1);
  if (cmd == "import") return proxy::importer::runImport(argc - 1, argv + 1);
  Args args;
  if (cmd == "run" || cmd == "check") {
    if (!parseArgs(argc, argv, 2, args)) return 2;
    return cmd == "run" ? runCommand(args) : checkCommand(args);
  }
  std::fprintf(stderr, "apm-tls-proxy: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return realMain(argc, argv);
  } catch (const std::exception& e) {
    // Nothing is meant to throw this far; if something does, it is a bug.
    std::fprintf(stderr, "apm-tls-proxy: internal error: %s\n", e.what());
    return 1;
  }
}
