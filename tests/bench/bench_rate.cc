// apm-bench-client's rate mode: an open-loop load, so that servers are compared at the same
// request rate rather than each at its own throughput (issue 12 item 2). --concurrency
// keep-alive connections share a fixed timetable of --rate requests per second: connection
// k sends its j-th 1 KiB POST at start + (j * N + k) / rate. A request whose connection is
// still busy with the previous answer goes out as soon as that answer is in, and its
// latency still counts from the scheduled time, so a server that stalls pays for every
// request it delayed (wrk2's correction of coordinated omission).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "tests/bench/bench_engine.h"
#include "tests/bench/bench_modes.h"

namespace bench {
namespace {

using Nanos = std::chrono::nanoseconds;

// What the timetable knows about one connection.
struct Slot {
  bool ready = false;            // established and not waiting for an answer
  bool busy = false;             // a request is in flight
  uint64_t next = 0;             // the index j of its next request
  Clock::time_point sent_for;    // the scheduled time of the request in flight
  Clock::time_point free_since;  // when it last became ready
};

// Nearest-rank percentile of sorted values, in milliseconds.
double percentileMs(const std::vector<Nanos>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<size_t>(p * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::min(std::max<size_t>(rank, 1), sorted.size());
  return std::chrono::duration<double, std::milli>(sorted[rank - 1]).count();
}

class RateRun {
 public:
  RateRun(const Options& o, const TlsClientContext* ctx)
      : o_(o),
        engine_(o, ctx, Engine::AfterHandshake::kHold),
        conns_(static_cast<size_t>(std::max(1, o.concurrency))),
        slots_(conns_.size()),
        period_(std::chrono::duration_cast<Nanos>(
            std::chrono::duration<double>(static_cast<double>(conns_.size()) / o.rate))),
        offset_(std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(1 / o.rate))) {}

  ~RateRun() {
    for (Conn& c : conns_) engine_.finish(c, false);
  }

  int run() {
    if (!connectAll()) {
      std::fprintf(stderr, "apm-bench-client: only %zu of %zu connections were established\n",
                   readyCount(), conns_.size());
    }
    // The timetable starts once every connection is up, so handshakes are not measured.
    start_ = Clock::now() + std::chrono::milliseconds(10);
    end_ = start_ + std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(o_.duration));
    // Requests scheduled before end_ are all sent; a server that fell behind gets as long
    // again as the run (at least 5 s) to catch up, then what is left counts as unsent.
    auto grace = std::max<Nanos>(end_ - start_, std::chrono::seconds(5));
    Clock::time_point give_up = end_ + grace;
    auto onStep = [this](Conn& c, Engine::Step s) { onConnStep(c, s); };
    while (!g_stop) {
      Clock::time_point now = Clock::now();
      Clock::time_point wake = sendDue(now);
      if (!anyBusy() && wake >= end_) break;
      if (now >= give_up) break;
      engine_.poll(std::min<Nanos>(wake - Clock::now(), std::chrono::milliseconds(50)), onStep);
      engine_.expireTicketWaits(conns_, onStep);
    }
    report();
    return 0;
  }

 private:
  size_t index(const Conn& c) const { return static_cast<size_t>(&c - conns_.data()); }
  Clock::time_point scheduled(size_t k, uint64_t j) const {
    return start_ + period_ * static_cast<int64_t>(j) + offset_ * static_cast<int64_t>(k);
  }
  size_t readyCount() const {
    return static_cast<size_t>(
        std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.ready; }));
  }
  bool anyBusy() const {
    return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.busy; });
  }

  // Opens every connection (handshake and, for TLS 1.3, the session ticket) within 30 s.
  bool connectAll() {
    for (Conn& c : conns_) {
      if (!engine_.start(c)) ++errors_;
    }
    auto onStep = [this](Conn& c, Engine::Step s) { onConnStep(c, s); };
    Clock::time_point deadline = Clock::now() + std::chrono::seconds(30);
    while (!g_stop && readyCount() < conns_.size() && Clock::now() < deadline) {
      engine_.poll(std::chrono::milliseconds(50), onStep);
      engine_.expireTicketWaits(conns_, onStep);
    }
    return readyCount() == conns_.size();
  }

  // Sends every request that is due on a ready connection; returns when the next one is
  // due (end_ or later when none is scheduled before the end).
  Clock::time_point sendDue(Clock::time_point now) {
    Clock::time_point wake = end_ + std::chrono::hours(1);
    for (size_t k = 0; k < conns_.size(); ++k) {
      Slot& s = slots_[k];
      if (!s.ready) continue;
      Clock::time_point due = scheduled(k, s.next);
      if (due >= end_) continue;
      if (due > now) {
        wake = std::min(wake, due);
        continue;
      }
      // Late with an idle connection: the client's own delay, not the server's.
      if (s.free_since <= due) lag_.push_back(now - due);
      s.ready = false;
      s.busy = true;
      s.sent_for = due;
      ++sent_;
      Engine::Step step = engine_.sendRequest(conns_[k]);
      if (step != Engine::Step::kWait) onConnStep(conns_[k], step);
      if (s.ready) wake = std::min(wake, scheduled(k, s.next));
    }
    return wake;
  }

  void onConnStep(Conn& c, Engine::Step step) {
    size_t k = index(c);
    Slot& s = slots_[k];
    Clock::time_point now = Clock::now();
    if (s.busy) {
      s.busy = false;
      ++s.next;
      if (step == Engine::Step::kDone) {
        latency_.push_back(now - s.sent_for);
        last_answer_ = now;
      } else {
        ++errors_;
      }
    } else if (step != Engine::Step::kDone) {
      ++errors_;  // failed while connecting
    }
    if (step == Engine::Step::kDone) {
      s.ready = true;
      s.free_since = now;
      return;
    }
    // A broken connection is replaced; its timetable goes on.
    s.ready = false;
    engine_.finish(c, false);
    ++reconnects_;
    if (!engine_.start(c)) ++errors_;
  }

  void report() {
    uint64_t unanswered = 0;
    for (const Slot& s : slots_) unanswered += s.busy ? 1 : 0;
    uint64_t scheduled_total = 0;
    for (size_t k = 0; k < conns_.size(); ++k) {
      // Requests j with scheduled(k, j) < end_.
      auto span = end_ - scheduled(k, 0);
      if (span.count() > 0) {
        scheduled_total += static_cast<uint64_t>((span - Nanos(1)) / period_) + 1;
      }
    }
    std::sort(latency_.begin(), latency_.end());
    std::sort(lag_.begin(), lag_.end());
    double seconds = std::chrono::duration<double>(std::max(last_answer_, end_) - start_).count();
    std::printf(
        "mode=rate rate=%.0f connections=%zu scheduled=%llu sent=%llu completed=%zu "
        "errors=%llu unanswered=%llu non2xx=%llu reconnects=%llu seconds=%.3f achieved=%.0f "
        "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f client_lag_p99_ms=%.3f "
        "client_lag_max_ms=%.3f\n",
        o_.rate, conns_.size(), static_cast<unsigned long long>(scheduled_total),
        static_cast<unsigned long long>(sent_), latency_.size(),
        static_cast<unsigned long long>(errors_), static_cast<unsigned long long>(unanswered),
        static_cast<unsigned long long>(engine_.non2xx()),
        static_cast<unsigned long long>(reconnects_), seconds,
        static_cast<double>(latency_.size()) / seconds, percentileMs(latency_, 0.5),
        percentileMs(latency_, 0.9), percentileMs(latency_, 0.99), percentileMs(latency_, 0.999),
        percentileMs(latency_, 1.0), percentileMs(lag_, 0.99), percentileMs(lag_, 1.0));
  }

  const Options& o_;
  Engine engine_;
  std::vector<Conn> conns_;  // never resized: the epoll data points into it
  std::vector<Slot> slots_;
  Nanos period_;  // between two requests of one connection
  Nanos offset_;  // between the first requests of two neighbouring connections
  Clock::time_point start_;
  Clock::time_point end_;
  Clock::time_point last_answer_;
  std::vector<Nanos> latency_;  // per answered request, from its scheduled time
  std::vector<Nanos> lag_;      // how late the client itself sent, when it was its fault
  uint64_t sent_ = 0;
  uint64_t errors_ = 0;
  uint64_t reconnects_ = 0;
};

}  // namespace

int runRate(const Options& o, const TlsClientContext* ctx) {
  if (o.rate <= 0 || o.h2) {
    std::fprintf(stderr, "apm-bench-client: rate mode needs --rate > 0 (and no --h2)\n");
    return 2;
  }
  RateRun run(o, ctx);
  return run.run();
}

}  // namespace bench
