#include "proxy/upstream/upstream_socket.h"

#include <netdb.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "proxy/common/log.h"

namespace proxy::upstream {

const sockaddr* UpstreamAddress::get() {
  if (resolved_) return reinterpret_cast<const sockaddr*>(&address_);
  if (!config_.tcp) return nullptr;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(config_.tcp->port);
  int rc = getaddrinfo(config_.tcp->host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    log::error("upstream address does not resolve",
               {{"host", config_.tcp->host}, {"error", gai_strerror(rc)}});
    return nullptr;
  }
  std::memcpy(&address_, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  resolved_ = true;
  return reinterpret_cast<const sockaddr*>(&address_);
}

int startUpstreamConnect(uv_loop_t* loop, const config::UpstreamConfig& config,
                         const sockaddr* tcp_address, UpstreamSocket& socket, void* data,
                         uv_connect_t* req, uv_connect_cb cb, bool* handle_open) {
  req->data = data;
  if (!config.tcp) {
    int rc = uv_pipe_init(loop, &socket.pipe, 0);
    if (rc < 0) return rc;
    socket.pipe.data = data;
    *handle_open = true;
    uv_pipe_connect(req, &socket.pipe, config.unix_path.c_str(), cb);
    return 0;
  }
  int rc = uv_tcp_init(loop, &socket.tcp);
  if (rc < 0) return rc;
  socket.tcp.data = data;
  *handle_open = true;
  uv_tcp_nodelay(&socket.tcp, 1);
  if (tcp_address == nullptr) return UV_EAI_NONAME;
  return uv_tcp_connect(req, &socket.tcp, tcp_address, cb);
}

}  // namespace proxy::upstream
