// The modes of apm-bench-client, each printing its one "key=value ..." line on stdout
// (scripts/bench/*.sh parse it). `ctx` (tests/support's TLS client settings) is null for
// plain TCP.
#pragma once

#include <memory>

#include "tests/bench/bench_options.h"
#include "tests/support/tls_client.h"

namespace bench {

using proxy::testsupport::TlsClientContext;

// The client context: TLS 1.3 only (or 1.2 with --tls12), no certificate-chain
// verification, ALPN http/1.1 or h2, the optional client certificate, tickets kept per
// connection for --resume. Null (after a message) when the certificate cannot be loaded.
std::unique_ptr<TlsClientContext> makeClientContext(const Options& o);

// upload (`upload`) or download: --requests transfers of --bytes on one connection.
int runTransfer(const Options& o, const TlsClientContext* ctx, bool upload);
// handshake: --concurrency connections re-opened for --duration seconds.
int runHandshakes(const Options& o, const TlsClientContext* ctx);
// idle: --count connections established, then held.
int runIdle(const Options& o, const TlsClientContext* ctx);
// rate: --rate requests per second over --concurrency connections for --duration seconds.
int runRate(const Options& o, const TlsClientContext* ctx);

}  // namespace bench
