// The bounds every client connection and HTTP/2 stream keeps (../shared/STYLE.md §2), in
// one place for the transport, the HTTP/1.1 side and the HTTP/2 side;
// docs/architecture.md states the memory bound they give.
#pragma once

#include <cstddef>
#include <cstdint>

#include "proxy/config/config.h"

namespace proxy::downstream {

// Watermarks on bytes queued towards the slower side: above the high one the other side
// is no longer read (or, over HTTP/2, given window credit); below the low one it is again.
inline constexpr size_t kHighWatermark = 256 * 1024;
inline constexpr size_t kLowWatermark = 64 * 1024;
// Pipelined input kept while a response is pending, before reading stops.
inline constexpr size_t kMaxPendingInput = 64 * 1024;
// Response pieces at least this large are written without first copying them into out_.
inline constexpr size_t kDirectWriteMin = 16 * 1024;
// After the last response byte, keep reading (and discarding) this long before closing,
// so a client still sending does not get a reset that destroys the response
// (the "lingering close" of RFC 9112 §9.6).
inline constexpr uint64_t kLingerMs = 2000;

inline uint64_t toMs(config::Millis d) { return static_cast<uint64_t>(d.count()); }

}  // namespace proxy::downstream
