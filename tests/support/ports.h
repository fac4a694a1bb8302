// Ports for test configurations: one nothing listens on, and the port of a "host:port"
// text (a ready file's listen= value). Both fail the test through Catch2.
#pragma once

#include <cstdint>
#include <string>

namespace proxy::testsupport {

// A port that nothing listens on (bound to 127.0.0.1:0 and closed again).
uint16_t unusedPort();

// "127.0.0.1:8200" -> 8200; fails the test when there is no colon.
uint16_t portOf(const std::string& host_port);

}  // namespace proxy::testsupport
