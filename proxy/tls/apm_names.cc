#include "proxy/tls/apm_names.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <memory>

namespace proxy::tls {
namespace {

struct ProtocolName {
  const char* apm_name;
  uint16_t version;
};
// elastic-agent-libs tlscommon/types.go: tlsProtocolVersions. "TLSv1" and "TLSv1.0"
// are both accepted; "SSLv3" is rejected there too.
constexpr ProtocolName kProtocols[] = {
    {"TLSv1", TLS1_VERSION},     {"TLSv1.0", TLS1_VERSION},   {"TLSv1.1", TLS1_1_VERSION},
    {"TLSv1.2", TLS1_2_VERSION}, {"TLSv1.3", TLS1_3_VERSION},
};

// The curve names APM Server accepts (tlscommon tlsCurveTypes) that BoringSSL's
// SSL_CTX_set1_curves_list spells the same way.
constexpr const char* kCurves[] = {"P-256", "P-384", "P-521", "X25519"};

}  // namespace

Problem listProblem(const std::string& list_key, size_t index, std::string message, bool warning) {
  return Problem{list_key + "[" + std::to_string(index) + "]", std::move(message), warning};
}

const char* protocolName(uint16_t version) {
  switch (version) {
    case TLS1_VERSION:
      return "TLSv1.0";
    case TLS1_1_VERSION:
      return "TLSv1.1";
    case TLS1_2_VERSION:
      return "TLSv1.2";
    case TLS1_3_VERSION:
      return "TLSv1.3";
    default:
      return "unknown";
  }
}

ProtocolRange mapProtocols(const ServerOptions& options, std::vector<Problem>& problems) {
  const auto& names = options.supported_protocols;
  if (names.empty()) return {TLS1_2_VERSION, TLS1_3_VERSION};
  ProtocolRange range{0xffff, 0};
  bool ok = true;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    auto it = std::find_if(std::begin(kProtocols), std::end(kProtocols),
                           [&](const ProtocolName& p) { return name == p.apm_name; });
    if (it == std::end(kProtocols)) {
      std::string msg = "unsupported TLS protocol \"" + name + "\"";
      if (name == "SSLv3") {
        msg += ": SSLv3 is insecure and not supported (APM Server rejects it too)";
      } else {
        msg += "; valid values are TLSv1.0 (or TLSv1), TLSv1.1, TLSv1.2, TLSv1.3";
      }
      problems.push_back(listProblem("ssl.supported_protocols", i, std::move(msg)));
      ok = false;
      continue;
    }
    range.min_version = std::min(range.min_version, it->version);
    range.max_version = std::max(range.max_version, it->version);
  }
  if (!ok) return {TLS1_2_VERSION, TLS1_3_VERSION};
  return range;
}

const std::vector<CipherMapping>& apmCipherTable() {
  // ../shared/reference/apm-tls.md §2, from tlscommon's tlsCipherSuites. A nullptr
  // BoringSSL name means the suite does not exist there at all (RC4 was removed in
  // 2015; the ECDHE 3DES suite was never added).
  static const std::vector<CipherMapping> kTable = {
      {"ECDHE-ECDSA-AES-128-CBC-SHA", "ECDHE-ECDSA-AES128-SHA"},
      {"ECDHE-ECDSA-AES-128-CBC-SHA256", "ECDHE-ECDSA-AES128-SHA256"},
      {"ECDHE-ECDSA-AES-128-GCM-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
      {"ECDHE-ECDSA-AES-256-CBC-SHA", "ECDHE-ECDSA-AES256-SHA"},
      {"ECDHE-ECDSA-AES-256-GCM-SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
      {"ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305"},
      {"ECDHE-ECDSA-RC4-128-SHA", nullptr},
      {"ECDHE-RSA-3DES-CBC3-SHA", "ECDHE-RSA-DES-CBC3-SHA"},
      {"ECDHE-RSA-AES-128-CBC-SHA", "ECDHE-RSA-AES128-SHA"},
      {"ECDHE-RSA-AES-128-CBC-SHA256", "ECDHE-RSA-AES128-SHA256"},
      {"ECDHE-RSA-AES-128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
      {"ECDHE-RSA-AES-256-CBC-SHA", "ECDHE-RSA-AES256-SHA"},
      {"ECDHE-RSA-AES-256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
      // "1205" is APM Server's (sic) spelling; the correct one is accepted as well.
      {"ECDHE-RSA-CHACHA20-POLY1205", "ECDHE-RSA-CHACHA20-POLY1305"},
      {"ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"},
      {"ECDHE-RSA-RC4-128-SHA", nullptr},
      {"RSA-RC4-128-SHA", nullptr},
      {"RSA-3DES-CBC3-SHA", "DES-CBC3-SHA"},
      {"RSA-AES-128-CBC-SHA", "AES128-SHA"},
      {"RSA-AES-128-CBC-SHA256", "AES128-SHA256"},
      {"RSA-AES-128-GCM-SHA256", "AES128-GCM-SHA256"},
      {"RSA-AES-256-CBC-SHA", "AES256-SHA"},
      {"RSA-AES-256-GCM-SHA384", "AES256-GCM-SHA384"},
      {"TLS-AES-128-GCM-SHA256", "TLS_AES_128_GCM_SHA256", true},
      {"TLS-AES-256-GCM-SHA384", "TLS_AES_256_GCM_SHA384", true},
      {"TLS-CHACHA20-POLY1305-SHA256", "TLS_CHACHA20_POLY1305_SHA256", true},
  };
  return kTable;
}

bool boringSupportsCipher(const char* boring_name) {
  // Asking the library itself keeps this true for whatever BoringSSL we link against
  // (this one lacks every CBC-SHA256 suite, for instance).
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_method()), SSL_CTX_free);
  if (!ctx) return false;
  ERR_clear_error();
  bool ok = SSL_CTX_set_strict_cipher_list(ctx.get(), boring_name) == 1;
  ERR_clear_error();
  return ok;
}

CipherOrder mapCipherSuites(const ServerOptions& options, std::vector<Problem>& problems,
                            std::vector<Problem>& warnings) {
  const auto& names = options.cipher_suites;
  const auto& table = apmCipherTable();
  std::vector<std::string> added;  // both ChaCha spellings map to one suite
  bool only_tls13 = !names.empty();
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    auto it = std::find_if(table.begin(), table.end(),
                           [&](const CipherMapping& m) { return name == m.apm_name; });
    if (it == table.end()) {
      problems.push_back(listProblem(
          "ssl.cipher_suites", i,
          "unknown cipher suite \"" + name +
              "\"; use APM Server's names, e.g. ECDHE-ECDSA-AES-128-GCM-SHA256 (all are listed "
              "in docs/tls.md)"));
      only_tls13 = false;
      continue;
    }
    if (it->tls13) {
      warnings.push_back(listProblem(
          "ssl.cipher_suites", i,
          "\"" + name +
              "\" is a TLS 1.3 suite: TLS 1.3 suites are fixed in BoringSSL "
              "(TLS_AES_128_GCM_SHA256, "
              "TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256 are always on) and cannot be "
              "switched off; ssl.cipher_suites only shapes TLS 1.2 and below",
          true));
      continue;
    }
    only_tls13 = false;
    if (it->boring_name == nullptr || !boringSupportsCipher(it->boring_name)) {
      std::string why = std::string(name).find("RC4") != std::string::npos
                            ? "RC4 is broken and BoringSSL does not implement it"
                            : "this BoringSSL build does not implement it";
      std::string msg = "cipher suite \"" + name + "\"";
      if (it->boring_name) msg += std::string(" (BoringSSL: ") + it->boring_name + ")";
      msg += " is not available: " + why + "; remove it from the list";
      problems.push_back(listProblem("ssl.cipher_suites", i, std::move(msg)));
      continue;
    }
    if (std::string(it->boring_name).find("DES-CBC3") != std::string::npos) {
      warnings.push_back(listProblem("ssl.cipher_suites", i,
                                     "\"" + name +
                                         "\" uses 3DES, which is weak (64-bit blocks, Sweet32); "
                                         "it is enabled because it was asked for",
                                     true));
    }
    if (std::find(added.begin(), added.end(), it->boring_name) == added.end()) {
      added.emplace_back(it->boring_name);
    }
  }
  if (only_tls13) {
    warnings.push_back(Problem{"ssl.cipher_suites",
                               "only TLS 1.3 suites are listed, so TLS 1.2 and below use the "
                               "default suites",
                               true});
  }
  return cipherOrder(added.empty() ? goDefaultSuites() : std::move(added));
}

std::string mapCurves(const ServerOptions& options, std::vector<Problem>& problems) {
  const auto& names = options.curve_types;
  std::string list;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    bool known = std::find_if(std::begin(kCurves), std::end(kCurves),
                              [&](const char* c) { return name == c; }) != std::end(kCurves);
    if (!known) {
      std::string msg;
      if (name == "X25519MLKEM768") {
        msg =
            "curve \"X25519MLKEM768\" is not available in this BoringSSL (it predates ML-KEM); "
            "use P-256, P-384, P-521 or X25519";
      } else {
        msg = "unknown curve \"" + name + "\"; valid values are P-256, P-384, P-521, X25519";
      }
      problems.push_back(listProblem("ssl.curve_types", i, std::move(msg)));
      continue;
    }
    if (std::find(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(i), name) ==
        names.begin() + static_cast<std::ptrdiff_t>(i)) {
      if (!list.empty()) list += ':';
      list += name;
    }
  }
  return list;
}

}  // namespace proxy::tls
