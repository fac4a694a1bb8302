// Loopback sockets for tests: a bounded TCP connect and a socket's local port. Errors are
// values (no Catch2): load threads and apm-bench-client use them. Ports for test
// configurations are in ports.h.
#pragma once

#include <cstdint>

#include "tests/support/deadline.h"

namespace proxy::testsupport {

// A non-blocking TCP connection to 127.0.0.1:port with TCP_NODELAY: the fd (the caller
// closes it) or -1 with errno set (ECONNREFUSED when nothing listens, ETIMEDOUT).
int tcpConnect(uint16_t port, Millis timeout = Millis{2000});

// The local port of a connected socket (0 when unknown).
uint16_t localPortOf(int fd);

}  // namespace proxy::testsupport
