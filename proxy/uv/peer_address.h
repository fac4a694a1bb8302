// Where the other end of a connected socket is, as far as the proxy's policies care:
// on this host (a unix socket or a loopback address) or elsewhere. The upstream pool
// uses it to decide what it may assume about a reused connection (upstream_pool.h).
#pragma once

#include <sys/socket.h>
#include <uv.h>

namespace proxy::uv {

// True for AF_UNIX, 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104.
bool isLocalAddress(const sockaddr* addr);
// The peer of the connected socket behind `handle` (a uv_tcp_t or uv_pipe_t); false
// when it cannot be read.
bool peerIsLocal(const uv_handle_t* handle);

}  // namespace proxy::uv
