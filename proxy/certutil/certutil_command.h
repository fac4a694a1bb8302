// `apm-tls-proxy certutil`: creates a CA, and server or client certificates signed by it,
// as PEM files (the replacement for the elasticsearch-certutil steps in the APM docs).
// Sits beside the proxy, not in its data flow: main.cc dispatches here. Owns nothing past
// one call; writes only new files (never overwrites) and never shells out to openssl.
#pragma once

#include <ostream>

namespace proxy::certutil {

// Runs `certutil` with argv[0] == "certutil"; reports to stdout/stderr and returns the
// process exit code: 0 done, 1 failed (e.g. a target file exists), 2 bad usage.
int runCertutil(int argc, char** argv);

// The same, with its report and its errors written to `out` and `err` (for tests).
int runCertutil(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace proxy::certutil
