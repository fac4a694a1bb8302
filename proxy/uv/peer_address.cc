#include "proxy/uv/peer_address.h"

#include <netinet/in.h>

namespace proxy::uv {

bool isLocalAddress(const sockaddr* addr) {
  switch (addr->sa_family) {
    case AF_UNIX:
      return true;
    case AF_INET: {
      const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
      return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    case AF_INET6: {
      const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr;
      if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
      return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
    }
    default:
      return false;
  }
}

bool peerIsLocal(const uv_handle_t* handle) {
  uv_os_fd_t fd;
  if (uv_fileno(handle, &fd) != 0) return false;
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return false;
  return isLocalAddress(reinterpret_cast<const sockaddr*>(&peer));
}

}  // namespace proxy::uv
