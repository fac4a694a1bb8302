// ResolvingConnector: the real UpstreamConnector. Resolves the upstream's name without
// blocking the loop (uv_getaddrinfo on libuv's thread pool), keeps every address it gives,
// dials the one that worked last and moves on to the next after a failed connect, and
// looks the name up again when every address failed or the list is old. A unix-socket
// upstream is dialled by path. One per worker, shared by both pools. Loop thread only.
#pragma once

#include <netdb.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "proxy/config/config.h"
#include "proxy/upstream/upstream_connector.h"

namespace proxy::upstream {

// Owned by the Worker; must outlive both pools. close(), then run the loop until it
// ends, before destroying it (a lookup in flight still calls back).
class ResolvingConnector : public UpstreamConnector {
 public:
  // A resolved list is looked up again in the background after this long, so that a
  // name that moves (a Kubernetes Service, a DNS failover) is followed.
  static constexpr uint64_t kRefreshMs = 60'000;

  // Starts the first lookup at once (a literal IP needs none).
  ResolvingConnector(uv_loop_t* loop, const config::UpstreamConfig& config);
  ~ResolvingConnector() override;
  ResolvingConnector(const ResolvingConnector&) = delete;
  ResolvingConnector& operator=(const ResolvingConnector&) = delete;

  Status connect(UpstreamSocket& socket, void* data, Client* client, Attempt& attempt) override;
  void abandon(Attempt& attempt) override;
  void timedOut(Attempt& attempt) override;
  void failedAfterConnect(const Attempt& attempt) override;
  size_t addressCount() const override;
  void close() override;

  // Replaces the address list, as a lookup would (tests: several addresses for one name).
  void setAddressesForTest(const std::vector<sockaddr_storage>& addresses);
  // The index of the address the next connect dials.
  size_t preferredForTest() const { return preferred_; }
  // Starts a background lookup now, as the periodic refresh does; true while one runs.
  void refreshForTest() { startLookup(); }
  bool resolvingForTest() const { return resolving_ != nullptr; }

 private:
  static void uvOnConnect(uv_connect_t* req, int status);
  static void uvOnResolved(uv_getaddrinfo_t* req, int status, addrinfo* res);
  void onResolved(int status, const addrinfo* res);
  // Starts a background lookup unless one is in flight.
  void startLookup();
  // Dials the preferred address; a libuv error when the connect could not start.
  int dial(Attempt& attempt);
  // A connect to address `index` failed: prefer the next one; look the name up again
  // once every address failed in a row.
  void noteFailure(size_t index);
  void report(Attempt& attempt, const Status& status);

  uv_loop_t* loop_;
  const config::UpstreamConfig& config_;
  bool literal_ = false;  // the host is an IP address: nothing to look up
  bool closed_ = false;
  std::vector<sockaddr_storage> addresses_;      // every address the name gave
  size_t preferred_ = 0;                         // the one that worked last
  size_t failures_in_row_ = 0;                   // connects failed since the last success
  uint64_t resolved_at_ms_ = 0;                  // loop time of the last good lookup
  std::unique_ptr<uv_getaddrinfo_t> resolving_;  // in flight; freed in its callback
  std::vector<Attempt*> parked_;                 // waiting for the first lookup
};

}  // namespace proxy::upstream
