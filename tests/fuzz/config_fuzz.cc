// libFuzzer target for the configuration loader: TOML text in, the validation `check`
// runs out (config::loadString, then tls::TlsContext::validate when [ssl] names no file).
// Properties checked (a failure aborts, and libFuzzer keeps the input):
// - a rejected text has at least one error, and every problem formats to one line with no
//   control byte in it;
// - an accepted text's effective TOML (what `check` prints) loads again, and after that
//   one round trip, printing and loading it changes nothing (a valid, stable configuration).
// TLS validation runs only when every [ssl] value that could name a file holds inline
// PEM instead, so the fuzzer never reads (or blocks on) files such as /dev/stdin.
#include <openssl/err.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "proxy/app/tls_options.h"
#include "proxy/config/config.h"
#include "proxy/tls/tls_context.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using proxy::config::Problem;

bool inlineOrEmpty(const std::string& value) {
  size_t b = value.find_first_not_of(" \t\r\n");
  return b == std::string::npos || value[b] == '-';
}

bool namesNoFile(const proxy::config::SslConfig& ssl) {
  if (!inlineOrEmpty(ssl.certificate) || !inlineOrEmpty(ssl.key)) return false;
  if (!ssl.key_passphrase_path.empty()) return false;
  for (const auto& ca : ssl.certificate_authorities) {
    if (!inlineOrEmpty(ca)) return false;
  }
  return true;
}

// A problem is one line for a terminal or a log: text from the file (a key, a quoted
// value, toml++'s "saw '...'") must not bring a line break or an escape sequence with it.
void checkProblem(const Problem& p) {
  std::string line = p.format();
  FUZZ_CHECK(!line.empty(), "a problem formats to nothing");
  if (!proxy::fuzz::headerSafe(line, /*allow_tab=*/true)) {
    std::fprintf(stderr, "problem: %s\n", line.c_str());
  }
  FUZZ_CHECK(proxy::fuzz::headerSafe(line, /*allow_tab=*/true),
             "a problem carries a control byte (a line break, ESC...) from the file");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  proxy::config::LoadResult first = proxy::config::loadString(text, "fuzz.toml");
  for (const Problem& p : first.problems) checkProblem(p);
  if (!first.config) {
    bool any_error = false;
    for (const Problem& p : first.problems) any_error = any_error || !p.warning;
    FUZZ_CHECK(any_error, "a rejected configuration without a single error");
    return 0;
  }
  FUZZ_CHECK(first.problems.empty(), "an accepted configuration with problems");
  for (const Problem& p : first.config->warnings) checkProblem(p);

  // check's output loads again; from then on printing and loading is a fixed point (the
  // first print may differ in comments: it says which values were derived, and the
  // printed file states them all).
  std::string printed = proxy::config::toToml(*first.config);
  std::string reprinted;
  for (int round = 0; round < 2; ++round) {
    proxy::config::LoadResult again = proxy::config::loadString(printed, "fuzz.toml");
    if (!again.config) {
      for (const Problem& p : again.problems) std::fprintf(stderr, "%s\n", p.format().c_str());
    }
    FUZZ_CHECK(again.config.has_value(), "check's effective TOML does not load again");
    reprinted = proxy::config::toToml(*again.config);
    if (round == 1) {
      FUZZ_CHECK(reprinted == printed, "printing and loading check's output is not a fixed point");
    }
    printed = reprinted;
  }

  if (first.config->ssl.enabled && namesNoFile(first.config->ssl)) {
    const proxy::config::Config& config = *first.config;
    for (const auto& p : proxy::tls::TlsContext::validate(proxy::app::tlsOptions(config))) {
      checkProblem(proxy::app::toConfigProblem(config, p));
    }
  }
  ERR_clear_error();  // BoringSSL's error queue allocates; see identity_fuzz.cc
  return 0;
}
