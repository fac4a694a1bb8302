// The socket to the upstream, TCP or unix, as both upstream connection kinds make it:
// the address resolved once per worker, and a connect that picks TCP or a pipe from the
// config. libuv glue for proxy/upstream only; owns nothing but the resolved address.
#pragma once

#include <uv.h>

#include "proxy/config/config.h"

namespace proxy::upstream {

// TCP or unix-socket handle, as a member of its connection.
union UpstreamSocket {
  uv_tcp_t tcp;
  uv_pipe_t pipe;
};

// The upstream's host:port resolved once (a literal IP without a lookup). A name that
// does not resolve is tried again at the next get(), blocking the loop only while the
// upstream is unusable anyway. Owned by a pool; loop thread only.
class UpstreamAddress {
 public:
  explicit UpstreamAddress(const config::UpstreamConfig& config) : config_(config) {}
  // The address, or nullptr when it does not resolve (logged).
  const sockaddr* get();

 private:
  const config::UpstreamConfig& config_;
  sockaddr_storage address_{};
  bool resolved_ = false;
};

// Initialises `socket` (TCP when config.tcp, else a pipe to config.unix_path) with
// `data` as its handle data, and starts connecting `req` with callback `cb`.
// `*handle_open` is set once the handle exists (it must be uv_close()d from then on).
// Returns 0 or a libuv error (UV_EAI_NONAME when `tcp_address` is null for TCP).
int startUpstreamConnect(uv_loop_t* loop, const config::UpstreamConfig& config,
                         const sockaddr* tcp_address, UpstreamSocket& socket, void* data,
                         uv_connect_t* req, uv_connect_cb cb, bool* handle_open);

}  // namespace proxy::upstream
