#include "proxy/app/system.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>

namespace proxy::app {

Result<int> bindListenSocket(const config::HostPort& addr, PortSharing sharing) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(addr.port);
  const char* host = addr.host.empty() ? nullptr : addr.host.c_str();
  int rc = getaddrinfo(host, port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    return Status::error("cannot resolve listen address " + config::formatHostPort(addr) + ": " +
                         gai_strerror(rc));
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(res);
    return Status::error(std::string("socket: ") + std::strerror(errno));
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (sharing == PortSharing::kJoin) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (res->ai_family == AF_INET6) {
    // "[::]:8200" serves IPv4 too, as Go's listener (and so APM Server) does.
    int v6only = 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
  }
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
    int err = errno;
    freeaddrinfo(res);
    ::close(fd);
    return Status::error("cannot bind " + config::formatHostPort(addr) + ": " + std::strerror(err));
  }
  freeaddrinfo(res);
  // Bound alone, so the port was free of listeners; from now on this process's other
  // workers may share it (Linux checks the bound socket's flag when they bind).
  if (sharing == PortSharing::kFirst &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int err = errno;
    ::close(fd);
    return Status::error("cannot share " + config::formatHostPort(addr) +
                         " among workers: SO_REUSEPORT: " + std::strerror(err));
  }
  // Listening now, on the control thread, means the port accepts connections (into the
  // backlog) from the moment the ready file says so, before the worker thread runs.
  if (::listen(fd, kListenBacklog) != 0) {
    int err = errno;
    ::close(fd);
    return Status::error("cannot listen on " + config::formatHostPort(addr) + ": " +
                         std::strerror(err));
  }
  return fd;
}

Result<uint16_t> boundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return Status::error(std::string("getsockname: ") + std::strerror(errno));
  }
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

uint32_t usableCpus() {
  uint32_t cpus = 1;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    cpus = static_cast<uint32_t>(CPU_COUNT(&set));
  } else {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n > 0) cpus = static_cast<uint32_t>(n);
  }
  // cgroup v2: "max 100000" (no limit) or "<quota> <period>" in microseconds.
  std::ifstream f("/sys/fs/cgroup/cpu.max");
  std::string quota;
  long period = 0;
  if (f >> quota >> period && quota != "max" && period > 0) {
    double q = std::stod(quota) / static_cast<double>(period);
    auto limit = static_cast<uint32_t>(std::ceil(q));
    if (limit >= 1 && limit < cpus) cpus = limit;
  }
  return cpus < 1 ? 1 : cpus;
}

}  // namespace proxy::app
