// APM Server's spellings of TLS settings (ssl.supported_protocols, ssl.cipher_suites,
// ssl.curve_types) mapped to what BoringSSL understands. Pure lookups used by
// TlsContext while it builds the SSL_CTX and by `check`; no SSL_CTX is kept here.
// Never silently drops a name: every value either maps or yields a precise Problem.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proxy/tls/cipher_order.h"
#include "proxy/tls/tls_options.h"

namespace proxy::tls {

// The contiguous protocol range made from ssl.supported_protocols (APM Server turns
// ["TLSv1.1", "TLSv1.3"] into 1.1..1.3, enabling 1.2 too).
struct ProtocolRange {
  uint16_t min_version = 0;  // TLS1_2_VERSION etc.
  uint16_t max_version = 0;
};
// Maps APM's exact spellings ("TLSv1", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3") to a
// range. Unknown names and SSLv3 become errors tagged "ssl.supported_protocols[i]".
// An empty list means APM Server 9.x's default, TLSv1.2..TLSv1.3.
ProtocolRange mapProtocols(const ServerOptions& options, std::vector<Problem>& problems);
// "TLSv1.2" for TLS1_2_VERSION (BoringSSL's SSL_get_version spelling).
const char* protocolName(uint16_t version);

// How one APM cipher-suite name maps.
struct CipherMapping {
  const char* apm_name;     // e.g. "ECDHE-RSA-AES-128-GCM-SHA256"
  const char* boring_name;  // e.g. "ECDHE-RSA-AES128-GCM-SHA256"; nullptr when none exists
  bool tls13 = false;       // a TLS 1.3 suite: always on, cannot be configured
};
// Every name APM Server accepts, in its documentation order (for docs and tests).
const std::vector<CipherMapping>& apmCipherTable();
// True when this BoringSSL build provides the (TLS <= 1.2) suite `boring_name`.
bool boringSupportsCipher(const char* boring_name);

// The server's order of the suites in ssl.cipher_suites (cipher_order.h: Go's order,
// whatever order they are listed in, as APM Server), or of Go's defaults when no TLS <= 1.2
// suite is listed. Unknown names and suites BoringSSL lacks (RC4, some CBC-SHA256, ECDHE
// 3DES) are errors; TLS 1.3 names and weak-but-available suites (3DES) are warnings.
CipherOrder mapCipherSuites(const ServerOptions& options, std::vector<Problem>& problems,
                            std::vector<Problem>& warnings);

// The BoringSSL curve list ("P-256:X25519") for ssl.curve_types, or "" for defaults.
// X25519MLKEM768 is an error that says this BoringSSL lacks it.
std::string mapCurves(const ServerOptions& options, std::vector<Problem>& problems);

// A Problem about the list element `list_key`[index], keyed "ssl.cipher_suites[2]".
Problem listProblem(const std::string& list_key, size_t index, std::string message,
                    bool warning = false);

}  // namespace proxy::tls
