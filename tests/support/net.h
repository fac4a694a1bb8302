// Loopback networking for tests: a bounded TCP connect, a port nothing listens on, and the
// port of a "host:port" string. tcpConnect reports errors as values (usable from load
// threads); unusedPort and portOf fail the test through Catch2.
#pragma once

#include <cstdint>
#include <string>

#include "tests/support/deadline.h"

namespace proxy::testsupport {

// A non-blocking TCP connection to 127.0.0.1:port with TCP_NODELAY: the fd (the caller
// closes it) or -1 with errno set (ECONNREFUSED when nothing listens, ETIMEDOUT).
int tcpConnect(uint16_t port, Millis timeout = Millis{2000});

// A port that nothing listens on (bound to 127.0.0.1:0 and closed again).
uint16_t unusedPort();

// "127.0.0.1:8200" -> 8200; fails the test when there is no colon.
uint16_t portOf(const std::string& host_port);

// The local port of a connected socket (0 when unknown).
uint16_t localPortOf(int fd);

}  // namespace proxy::testsupport
