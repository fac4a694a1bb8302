// Operating-system facts and set-up the Server needs before any loop runs: listening
// sockets sharing a port with SO_REUSEPORT (one per worker, the first bound exclusively), and the
// number of CPUs this process may use (affinity and cgroup CPU quota).
#pragma once

#include <cstdint>

#include "proxy/common/status.h"
#include "proxy/config/config.h"

namespace proxy::app {

inline constexpr int kListenBacklog = 511;

// How a listening socket takes its port.
enum class PortSharing {
  // The process's first socket: bound without SO_REUSEPORT, so the bind fails with
  // EADDRINUSE when anything already listens there (APM Server, or another apm-tls-proxy
  // whose sockets would otherwise silently share the port and take part of the clients,
  // perhaps with an older configuration). SO_REUSEPORT is set after the bind, so that
  // the process's own later sockets can join it; so can a later process of the same user
  // that sets it too (Linux has no way to refuse that but a user of our own).
  kFirst,
  // A later worker's socket: bound with SO_REUSEPORT, joining the first one.
  kJoin,
};

// Binds and listens on a non-blocking TCP socket to `addr` with SO_REUSEADDR and, as
// `sharing` says, SO_REUSEPORT (so each worker can own one; the kernel spreads
// connections across them). Port 0 picks a free port; bind the first socket, read its
// port, then bind the others to that port.
Result<int> bindListenSocket(const config::HostPort& addr, PortSharing sharing);
// The port a bound socket got.
Result<uint16_t> boundPort(int fd);
// CPUs usable by this process: sched affinity, capped by the cgroup v2 cpu.max quota
// (rounded up). At least 1.
uint32_t usableCpus();

}  // namespace proxy::app
