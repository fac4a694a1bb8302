// Operating-system facts and set-up the Server needs before any loop runs: listening
// sockets bound with SO_REUSEPORT (one per worker), and the number of CPUs this
// process may use (affinity and cgroup CPU quota).
#pragma once

#include <cstdint>

#include "proxy/common/status.h"
#include "proxy/config/config.h"

namespace proxy::app {

inline constexpr int kListenBacklog = 511;

// Binds and listens on a non-blocking TCP socket to `addr` with SO_REUSEADDR and SO_REUSEPORT (so
// each worker can own one; the kernel spreads connections across them). Port 0 picks a
// free port; bind the first socket, read its port, then bind the others to that port.
Result<int> bindListenSocket(const config::HostPort& addr);
// The port a bound socket got.
Result<uint16_t> boundPort(int fd);
// CPUs usable by this process: sched affinity, capped by the cgroup v2 cpu.max quota
// (rounded up). At least 1.
uint32_t usableCpus();

}  // namespace proxy::app
