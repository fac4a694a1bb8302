// PEM and X.509 details for the test clients and certificate helpers: certificates and
// keys out of PEM text, and the serial number and CN tests compare. No Catch2 (the TLS
// client uses it in load threads and apm-bench-client).
#pragma once

#include <openssl/base.h>

#include <string>
#include <vector>

namespace proxy::testsupport {

// Every certificate of a PEM text, in order (empty when there is none).
std::vector<bssl::UniquePtr<X509>> certsFromPem(const std::string& pem);
// The first private key of a PEM text (unencrypted); null when there is none.
bssl::UniquePtr<EVP_PKEY> keyFromPem(const std::string& pem);
// Upper-case hex serial number and subject CN of a certificate ("" when absent).
std::string certSerialHex(const X509* cert);
std::string certCommonName(const X509* cert);

}  // namespace proxy::testsupport
