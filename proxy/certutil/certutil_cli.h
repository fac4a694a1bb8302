// certutil's command line: exit codes, the parsed options, and reading the values
// (key type, days, passphrases, SAN kinds) with the usage errors they can raise.
// Internal to the certutil module.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "proxy/certutil/cert_builder.h"
#include "proxy/common/status.h"

namespace proxy::certutil {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

struct Options {
  std::map<std::string, std::string> single;  // --opt value, last one wins
  std::vector<std::string> dns, ips, uris;
  bool client = false;
  bool help = false;
};
// Accepts "--opt value" and "--opt=value". `allowed` lists the value options of the
// command; with `lists`, --dns/--ip/--uri are lists and --client a flag. Every failure is
// a usage error.
Result<Options> parseOptions(int argc, char** argv, int first,
                             const std::vector<std::string>& allowed, bool lists);
// The value of option `name`, or `dflt` when it was not given.
std::string optionOr(const Options& o, const std::string& name, const std::string& dflt);
bool has(const Options& o, const std::string& name);
// --key-type and --key-size.
Result<KeyType> parseKeyType(const Options& o);
// --days, 1 to 36500 (default 1095, as elasticsearch-certutil).
Result<int> parseDays(const Options& o);
// The whole file; `what` names it in the error ("the CA key").
Result<std::string> readSmallFile(const std::string& path, const char* what);
// --pass or --pass-file (first line, without its newline). Both is a usage error.
Result<std::string> passphrase(const Options& o, const std::string& flag, bool* usage_error);
bool isIpAddress(const std::string& text);
bool isDnsName(const std::string& text);

}  // namespace proxy::certutil
