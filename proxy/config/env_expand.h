// ${VAR} and ${VAR:default} in configuration string values, expanded from the process
// environment when the file is loaded (APM Server's YAML allows the same, issue 11).
// Pure string code: no file, no socket. The loader calls it for every string it reads,
// arrays included; the result says which variables were used so `check` can tell where a
// value came from.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "proxy/common/status.h"

namespace proxy::config {

// The value of an environment variable, or nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// Looks names up in this process's environment (getenv).
EnvLookup processEnvironment();

// One ${...} reference met while expanding.
struct VariableUse {
  std::string name;
  bool has_default = false;
  bool used_default = false;  // the variable was unset and its default was taken
};

struct Expanded {
  std::string value;
  std::vector<VariableUse> variables;  // in order of appearance
};

// Expands `text`:
//   ${NAME}          the variable's value; unset is an error
//   ${NAME:default}  the value, or `default` when unset (a set but empty variable is
//                    used as is); the default runs to the first '}' and may hold ':'
//   $$               a literal '$' (so "$${X}" is the text "${X}")
//   $ otherwise      kept as it is ("a$b", a trailing "$")
// NAME is a letter or '_' followed by letters, digits or '_'. Refused with a message: an
// unterminated "${", an empty or invalid name, and a '{' inside ${...} (no nesting).
Result<Expanded> expandVariables(const std::string& text, const EnvLookup& lookup);

// `text` written so that expandVariables() gives it back unchanged: every '$' doubled.
std::string escapeVariables(const std::string& text);

// How `check` describes the source of an expanded value: the original text in quotes,
// plus which variables were unset and took their default. For a secret, only the
// variable references ("${TLS_KEY_PASSPHRASE}"): literal text and defaults are not shown.
std::string describeSource(const std::string& raw, const Expanded& expanded, bool secret);

}  // namespace proxy::config
