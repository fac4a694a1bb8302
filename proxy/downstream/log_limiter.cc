#include "proxy/downstream/log_limiter.h"

namespace proxy::downstream {

bool LogLimiter::allow(const std::string& key, uint64_t now_ms, uint64_t* suppressed) {
  *suppressed = 0;
  auto it = peers_.find(key);
  if (it == peers_.end()) {
    if (peers_.size() >= kMaxPeers) {
      // Forget peers whose window has passed; if all are current, forget them all
      // rather than grow (a flood from many addresses is logged, just less evenly).
      for (auto i = peers_.begin(); i != peers_.end();) {
        i = now_ms - i->second.window_start >= kWindowMs ? peers_.erase(i) : std::next(i);
      }
      if (peers_.size() >= kMaxPeers) peers_.clear();
    }
    it = peers_.emplace(key, Entry{now_ms, 0, 0}).first;
  }
  Entry& e = it->second;
  if (now_ms - e.window_start >= kWindowMs) {
    e.window_start = now_ms;
    e.lines = 0;
  }
  if (e.lines >= kLinesPerWindow) {
    ++e.suppressed;
    return false;
  }
  ++e.lines;
  *suppressed = e.suppressed;
  e.suppressed = 0;
  return true;
}

}  // namespace proxy::downstream
