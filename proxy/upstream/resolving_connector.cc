#include "proxy/upstream/resolving_connector.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "proxy/common/check.h"
#include "proxy/common/log.h"

namespace proxy::upstream {
namespace {

bool sameAddress(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  size_t len = a.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  return std::memcmp(&a, &b, len) == 0;
}

}  // namespace

ResolvingConnector::ResolvingConnector(uv_loop_t* loop, const config::UpstreamConfig& config)
    : loop_(loop), config_(config) {
  if (!config_.tcp) return;
  sockaddr_storage ss{};
  const char* host = config_.tcp->host.c_str();
  int port = config_.tcp->port;
  if (uv_ip4_addr(host, port, reinterpret_cast<sockaddr_in*>(&ss)) == 0 ||
      uv_ip6_addr(host, port, reinterpret_cast<sockaddr_in6*>(&ss)) == 0) {
    literal_ = true;
    addresses_.push_back(ss);
    return;
  }
  // Looked up when the worker starts, off the loop thread: a slow DNS server delays only
  // the first connects (they wait for the answer), never the loop.
  startLookup();
}

ResolvingConnector::~ResolvingConnector() {
  PROXY_CHECK(resolving_ == nullptr, "ResolvingConnector freed with a lookup in flight");
}

void ResolvingConnector::setAddressesForTest(const std::vector<sockaddr_storage>& addresses) {
  addresses_ = addresses;
  preferred_ = 0;
  failures_in_row_ = 0;
  resolved_at_ms_ = uv_now(loop_);
  literal_ = true;  // no lookup replaces them
}

size_t ResolvingConnector::addressCount() const {
  return config_.tcp ? std::max<size_t>(1, addresses_.size()) : 1;
}

Status ResolvingConnector::connect(UpstreamSocket& socket, void* data, Client* client,
                                   Attempt& attempt) {
  attempt.client = nullptr;
  attempt.socket = &socket;
  attempt.handle_open = false;
  attempt.awaiting_lookup = false;
  attempt.req.data = this;
  if (closed_) return Status::error("proxy shutting down");
  if (!config_.tcp) {
    int rc = uv_pipe_init(loop_, &socket.pipe, 0);
    if (rc < 0) return Status::error(uv_strerror(rc));
    socket.pipe.data = data;
    attempt.handle_open = true;
    attempt.client = client;
    // Failures (no such file, refused) come back through the callback.
    uv_pipe_connect(&attempt.req, &socket.pipe, config_.unix_path.c_str(),
                    &ResolvingConnector::uvOnConnect);
    return Status::ok();
  }
  int rc = uv_tcp_init(loop_, &socket.tcp);
  if (rc < 0) return Status::error(uv_strerror(rc));
  socket.tcp.data = data;
  attempt.handle_open = true;
  uv_tcp_nodelay(&socket.tcp, 1);
  attempt.client = client;
  if (addresses_.empty()) {
    attempt.awaiting_lookup = true;
    parked_.push_back(&attempt);
    startLookup();
    return Status::ok();
  }
  if (!literal_ && uv_now(loop_) - resolved_at_ms_ >= kRefreshMs) startLookup();
  rc = dial(attempt);
  if (rc < 0) {
    attempt.client = nullptr;
    return Status::error(uv_strerror(rc));
  }
  return Status::ok();
}

int ResolvingConnector::dial(Attempt& attempt) {
  attempt.address = preferred_ % addresses_.size();
  return uv_tcp_connect(&attempt.req, &attempt.socket->tcp,
                        reinterpret_cast<const sockaddr*>(&addresses_[attempt.address]),
                        &ResolvingConnector::uvOnConnect);
}

void ResolvingConnector::abandon(Attempt& attempt) {
  attempt.client = nullptr;
  if (attempt.awaiting_lookup) {
    attempt.awaiting_lookup = false;
    parked_.erase(std::remove(parked_.begin(), parked_.end(), &attempt), parked_.end());
  }
}

void ResolvingConnector::timedOut(Attempt& attempt) {
  if (attempt.client != nullptr && !attempt.awaiting_lookup) noteFailure(attempt.address);
  abandon(attempt);
}

void ResolvingConnector::failedAfterConnect(const Attempt& attempt) {
  noteFailure(attempt.address);
}

void ResolvingConnector::noteFailure(size_t index) {
  if (!config_.tcp || addresses_.empty()) return;
  // So "localhost" works whether the upstream listens on ::1 or 127.0.0.1.
  if (index == preferred_ % addresses_.size()) preferred_ = (index + 1) % addresses_.size();
  if (++failures_in_row_ >= addresses_.size() && !literal_) {
    failures_in_row_ = 0;
    startLookup();  // the name may point somewhere else by now
  }
}

void ResolvingConnector::report(Attempt& attempt, const Status& status) {
  Client* client = attempt.client;
  attempt.client = nullptr;
  if (client != nullptr) client->onUpstreamConnected(status);
}

void ResolvingConnector::uvOnConnect(uv_connect_t* req, int status) {
  auto* self = static_cast<ResolvingConnector*>(req->data);
  // req is the first member of its Attempt (see UpstreamConnector::Attempt).
  Attempt& attempt = *reinterpret_cast<Attempt*>(req);
  if (attempt.client == nullptr) return;  // abandoned: the socket is closing (UV_ECANCELED)
  if (status < 0) {
    self->noteFailure(attempt.address);
    self->report(attempt, Status::error(uv_strerror(status)));
    return;
  }
  if (self->config_.tcp && !self->addresses_.empty()) {
    self->preferred_ = attempt.address % self->addresses_.size();
    self->failures_in_row_ = 0;
  }
  self->report(attempt, Status::ok());
}

void ResolvingConnector::startLookup() {
  if (resolving_ || closed_ || !config_.tcp) return;
  resolving_ = std::make_unique<uv_getaddrinfo_t>();
  resolving_->data = this;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  std::string port = std::to_string(config_.tcp->port);
  int rc = uv_getaddrinfo(loop_, resolving_.get(), &ResolvingConnector::uvOnResolved,
                          config_.tcp->host.c_str(), port.c_str(), &hints);
  if (rc < 0) {
    resolving_.reset();
    log::error("upstream lookup cannot start",
               {{"host", config_.tcp->host}, {"error", uv_strerror(rc)}});
  }
}

void ResolvingConnector::uvOnResolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  auto* self = static_cast<ResolvingConnector*>(req->data);
  self->resolving_.reset();  // libuv is done with the request
  self->onResolved(status, res);
  if (res != nullptr) uv_freeaddrinfo(res);
}

void ResolvingConnector::onResolved(int status, const addrinfo* res) {
  if (closed_) return;
  if (status == 0 && res != nullptr) {
    std::vector<sockaddr_storage> found;
    for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
      sockaddr_storage ss{};
      std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
      found.push_back(ss);
    }
    if (!found.empty()) {
      // The address that works stays preferred when the name still gives it (a refresh
      // must not send the next connect back to a first address that refuses).
      size_t keep = 0;
      if (!addresses_.empty()) {
        const sockaddr_storage& current = addresses_[preferred_ % addresses_.size()];
        for (size_t i = 0; i < found.size(); ++i) {
          if (sameAddress(found[i], current)) keep = i;
        }
      }
      addresses_ = std::move(found);
      preferred_ = keep;
      failures_in_row_ = 0;
      resolved_at_ms_ = uv_now(loop_);
      log::debug("upstream address resolved",
                 {{"host", config_.tcp->host}, {"addresses", addresses_.size()}});
    }
  } else {
    // A list from an earlier lookup stays in use: a DNS hiccup is not an upstream outage.
    log::error("upstream address does not resolve",
               {{"host", config_.tcp->host}, {"error", uv_strerror(status)}});
  }
  std::vector<Attempt*> parked;
  parked.swap(parked_);
  for (Attempt* attempt : parked) {
    // A report may close other connections, abandoning their attempts in this list.
    if (!attempt->awaiting_lookup || attempt->client == nullptr) continue;
    attempt->awaiting_lookup = false;
    if (addresses_.empty()) {
      report(*attempt,
             Status::error(std::string("upstream name does not resolve: ") + uv_strerror(status)));
      continue;
    }
    int rc = dial(*attempt);
    if (rc < 0) report(*attempt, Status::error(uv_strerror(rc)));
  }
}

void ResolvingConnector::close() {
  closed_ = true;
  parked_.clear();
  if (resolving_) uv_cancel(reinterpret_cast<uv_req_t*>(resolving_.get()));
}

}  // namespace proxy::upstream
