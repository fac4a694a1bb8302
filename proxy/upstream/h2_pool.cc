#include "proxy/upstream/h2_pool.h"

#include <algorithm>
#include <utility>

#include "proxy/common/check.h"
#include "proxy/common/log.h"
#include "proxy/upstream/h2_connection.h"
#include "proxy/upstream/h2_stream.h"

namespace proxy::upstream {
namespace {

void addCounts(http2::ErrorCodeCounts& to, const http2::ErrorCodeCounts& from) {
  for (size_t i = 0; i < to.by_code.size(); ++i) to.by_code[i] += from.by_code[i];
}

void addCounters(http2::SessionCounters& to, const http2::SessionCounters& from) {
  addCounts(to.resets_sent, from.resets_sent);
  addCounts(to.resets_received, from.resets_received);
  addCounts(to.goaways_sent, from.goaways_sent);
  addCounts(to.goaways_received, from.goaways_received);
  to.streams_opened += from.streams_opened;
}

}  // namespace

H2Pool::H2Pool(uv_loop_t* loop, const config::UpstreamConfig& config, WorkerStats& stats,
               uv::ReadBuffer& read_buffer, UpstreamConnector* connector)
    : loop_(loop),
      config_(config),
      stats_(stats),
      read_buffer_(read_buffer),
      connector_(connector) {
  uv_timer_init(loop_, &reap_timer_);  // cannot fail
  reap_timer_.data = this;
  uv_timer_init(loop_, &tick_timer_);
  tick_timer_.data = this;
}

H2Pool::~H2Pool() {
  PROXY_CHECK(connections_.empty(), "H2Pool freed with open connections (closeAll, then run)");
}

H2Stream* H2Pool::open(ResponseSink* sink, http2::HeaderFields headers, bool end_stream) {
  if (closed_) return nullptr;
  auto owned = std::make_unique<H2Stream>(*this, sink, std::move(headers), end_stream);
  H2Stream* stream = owned.get();
  streams_.emplace(stream, std::move(owned));
  ++counters_.streams_opened;
  if (!tick_on_) {
    // Deadlines are checked a few times per timeout (at most once a second), which is
    // as precise as a timeout of that size needs.
    uint64_t every = static_cast<uint64_t>(
                         std::min(config_.response_timeout, config_.streamIdleTimeout()).count()) /
                     4;
    every = std::clamp<uint64_t>(every, 5, 1000);
    uv_timer_start(&tick_timer_, &H2Pool::uvOnTickTimer, every, every);
    tick_on_ = true;
  }
  if (waiting_.size() >= config_.max_pending) {
    ++counters_.overloaded;
    stats_.upstream_overloaded.add();
    stream->failLater(UpstreamError::kOverloaded, "h2c upstream: too many requests waiting");
    return stream;
  }
  waiting_.push_back(stream);
  dispatch();
  if (stream->state() == H2Stream::State::kWaiting) {
    bool any_live = std::any_of(connections_.begin(), connections_.end(),
                                [](const auto& e) { return !e.second->closing(); });
    if (!any_live) {
      // Not even a socket could be made: the caller answers at once.
      removeWaiting(stream);
      streams_.erase(stream);
      return nullptr;
    }
  }
  return stream;
}

void H2Pool::dispatch() {
  if (closed_) return;
  while (!waiting_.empty()) {
    H2Connection* target = nullptr;
    for (auto& entry : connections_) {
      if (entry.second->room() > 0) {
        target = entry.second.get();
        break;
      }
    }
    if (target == nullptr) break;
    H2Stream* stream = waiting_.front();
    waiting_.pop_front();
    if (!target->attach(stream)) {
      stream->failLater(UpstreamError::kClosedEarly, "h2c upstream would not take the request");
    }
  }
  if (waiting_.empty()) return;
  // Every ready connection is full: connect more, up to the cap, counting on each one not
  // yet ready to take the assumed number of streams.
  size_t expected_room = 0;
  size_t live = 0;
  for (auto& entry : connections_) {
    H2Connection::State s = entry.second->state();
    if (entry.second->awaitingSettings()) expected_room += H2Connection::kAssumedStreams;
    if (s == H2Connection::State::kConnecting || s == H2Connection::State::kReady) ++live;
  }
  while (waiting_.size() > expected_room && live < kMaxConnections) {
    if (newConnection() == nullptr) break;
    expected_room += H2Connection::kAssumedStreams;
    ++live;
  }
}

H2Connection* H2Pool::newConnection() {
  auto owned = std::make_unique<H2Connection>(*this, next_id_++);
  H2Connection* conn = owned.get();
  connections_.emplace(conn, std::move(owned));
  Status st = conn->connect();
  if (!st) {
    stats_.upstream_connect_failures.add();
    log::warn("h2 upstream connect failed", {{"error", st.message()}});
    conn->close(st.message().c_str());  // no stream rides it yet: no sink is called
    return nullptr;
  }
  ++counters_.connections_opened;
  return conn;
}

void H2Pool::requeue(H2Stream* stream) { waiting_.push_front(stream); }

void H2Pool::removeWaiting(H2Stream* stream) {
  auto it = std::find(waiting_.begin(), waiting_.end(), stream);
  if (it != waiting_.end()) waiting_.erase(it);
}

void H2Pool::onConnectFailed(H2Connection* conn, const char* detail) {
  // The connector moved on to its next address: the waiting streams go to a connection
  // dialled there (dispatch() opens it) before any fails, as the HTTP/1.1 pool's replay
  // does for its requests.
  if (++failed_in_row_ < connector_->addressCount() && !closed_) {
    dispatch();
    return;
  }
  failed_in_row_ = 0;
  bool others = std::any_of(connections_.begin(), connections_.end(), [conn](const auto& e) {
    return e.first != conn && !e.second->closing();
  });
  if (others) return;  // they take the waiting streams as room frees up
  std::deque<H2Stream*> failed;
  failed.swap(waiting_);
  for (H2Stream* s : failed) s->fail(UpstreamError::kConnectFailed, detail);
}

void H2Pool::scheduleReap(H2Stream* stream) {
  finished_.push_back(stream);
  // A zero timer already due stays due (see H2Connection::scheduleFlush).
  if (!closed_ && uv_is_active(reinterpret_cast<uv_handle_t*>(&reap_timer_)) == 0) {
    uv_timer_start(&reap_timer_, &H2Pool::uvOnReapTimer, 0, 0);
  }
}

void H2Pool::uvOnReapTimer(uv_timer_t* t) { static_cast<H2Pool*>(t->data)->reap(); }

void H2Pool::reap() {
  // Reports first: a sink may open or cancel streams meanwhile, adding to finished_.
  for (size_t i = 0; i < finished_.size(); ++i) finished_[i]->reportDeferred();
  for (H2Stream* s : finished_) streams_.erase(s);
  finished_.clear();
  if (streams_.empty() && tick_on_) {
    uv_timer_stop(&tick_timer_);
    tick_on_ = false;
  }
}

void H2Pool::uvOnTickTimer(uv_timer_t* t) { static_cast<H2Pool*>(t->data)->tick(); }

void H2Pool::tick() {
  uint64_t now = uv_now(loop_);
  std::vector<H2Stream*> all;
  all.reserve(streams_.size());
  for (auto& entry : streams_) all.push_back(entry.first);
  for (H2Stream* s : all) s->checkDeadlines(now);
  dispatch();
}

http2::SessionCounters H2Pool::sessionCounters() const {
  http2::SessionCounters sum = closed_counters_;
  for (const auto& entry : connections_) addCounters(sum, entry.second->counters());
  return sum;
}

void H2Pool::erase(H2Connection* conn) {
  addCounters(closed_counters_, conn->counters());
  connections_.erase(conn);
  dispatch();  // waiting streams may need a connection in its place
}

void H2Pool::closeAll() {
  if (closed_) return;
  closed_ = true;  // from here open() refuses and nothing is dispatched or reaped
  std::vector<H2Stream*> all;
  for (auto& entry : streams_) all.push_back(entry.first);
  for (H2Stream* s : all) {
    s->fail(s->finalHeadSeen() ? UpstreamError::kClosedMidBody : UpstreamError::kClosedEarly,
            "proxy shutting down");
  }
  for (H2Stream* s : all) s->reportDeferred();
  for (auto& entry : connections_) entry.second->close("proxy shutting down");
  waiting_.clear();
  finished_.clear();
  streams_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&reap_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_timer_), nullptr);
}

}  // namespace proxy::upstream
