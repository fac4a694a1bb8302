// systemd's notify protocol (sd_notify(3)), written directly: one datagram to
// $NOTIFY_SOCKET ("@name" = abstract socket). Does nothing when the variable is unset,
// so the binary behaves the same outside systemd. No libsystemd dependency.
#pragma once

#include <string>

namespace proxy::app {

// Sends `state` (e.g. "READY=1", "STOPPING=1", "RELOADING=1\nMONOTONIC_USEC=…").
// Returns false when NOTIFY_SOCKET is unset or the send failed.
bool sdNotify(const std::string& state);
// "RELOADING=1\nMONOTONIC_USEC=<now>" as systemd 253+ expects; harmless on 252.
std::string sdReloadingMessage();

}  // namespace proxy::app
