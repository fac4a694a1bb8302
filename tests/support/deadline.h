// Time limits for the test support code: every wait in tests/support has a deadline, and
// a test polls for what it waits for instead of sleeping. Header only; no Catch2 here, so
// load threads may use it.
#pragma once

#include <chrono>
#include <thread>

namespace proxy::testsupport {

using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Time left until `deadline`, never negative.
inline Millis remaining(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
  return left.count() > 0 ? left : Millis{0};
}

// Waits up to `timeout` for `events` on `fd`; the revents, or 0 on timeout.
short pollOne(int fd, short events, Millis timeout);

// Polls `predicate` every few ms until it is true or `timeout` passes; its last value.
template <typename F>
bool eventually(F predicate, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (predicate()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(Millis{10});
  }
}

}  // namespace proxy::testsupport
