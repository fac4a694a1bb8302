// The upstream-fault matrix's idle-pool cells (HTTP/1.1 upstream): request 1 answered on a
// keep-alive connection, which then idles in the pool until the upstream closes, resets,
// stalls or lies on it, or closes it as request 2 arrives. upstream_fault_matrix_test.cc
// drives them from an HTTP/1.1 client, upstream_fault_matrix_midbody_test.cc from an HTTP/2
// one. Header only.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "tests/integration/upstream_fault_matrix.h"

namespace proxy::integration::upmatrix {

// Every idle cell; `second` is what request 2 gets.
inline std::vector<Cell> idleCells() {
  using O = Outcome;
  auto stall = [](int fd) { Up::waitPeerClose(fd, Millis{8000}); };
  // Waits for request 2 on the idle connection, leaving it unread.
  auto untilReadable = [](int fd) {
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 5000);
  };
  return {
      {"idle-fin", idleThen([](int) {}), 202, O::kWhole, 2, "", 0, 202},
      {"idle-rst", idleThen([](int fd) { Up::reset(fd); }), 202, O::kWhole, 2, "", 0, 202},
      {"idle-stall",
       idleThen([](int fd) { book.proxy_closed_idle = Up::waitPeerClose(fd, Millis{8000}); }), 202,
       O::kWhole, 2, "", 0, 202},
      {"idle-lie", idleThen([stall](int fd) {
         Up::writeAll(fd, kOk);
         stall(fd);
       }),
       202, O::kWhole, 2, "", 0, 202},
      // The close races request 2: a reset without reading it (the one allowed replay) ...
      {"idle-race-rst", idleThen([untilReadable](int fd) {
         untilReadable(fd);
         Up::reset(fd);
       }),
       202, O::kWhole, 2, "", 1, 202},
      // ... a FIN, then the reset the unread request draws (replayed too) ...
      {"idle-race-fin-rst", idleThen([untilReadable](int fd) {
         untilReadable(fd);
         ::shutdown(fd, SHUT_WR);
         Up::reset(fd);
       }),
       202, O::kWhole, 2, "", 1, 202},
      // ... or request 2 read, then a FIN without an answer: it may have been processed.
      {"idle-race-read-fin", idleThen([](int fd) {
         std::string buf;
         take(fd, buf);
       }),
       202, O::kWhole, 2, "", 0, 502},
  };
}

}  // namespace proxy::integration::upmatrix
