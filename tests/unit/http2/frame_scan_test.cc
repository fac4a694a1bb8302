// FrameScan, ClosedByClient and UsedStreamIds (proxy/http/http2/frame_scan.h): the frame
// headers of a client's input found whatever the pieces it arrives in, and the two small
// memories ServerSession judges frames on closed or skipped streams with.
#include "proxy/http/http2/frame_scan.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace proxy::http2 {
namespace {

std::string frameHeader(uint32_t length, uint8_t type, int32_t stream_id) {
  std::string h(9, '\0');
  h[0] = static_cast<char>(length >> 16);
  h[1] = static_cast<char>(length >> 8);
  h[2] = static_cast<char>(length);
  h[3] = static_cast<char>(type);
  h[5] = static_cast<char>((static_cast<uint32_t>(stream_id) >> 24) | 0x80);  // reserved bit
  h[6] = static_cast<char>(stream_id >> 16);
  h[7] = static_cast<char>(stream_id >> 8);
  h[8] = static_cast<char>(stream_id);
  return h;
}

struct Seen {
  uint8_t type;
  int32_t stream_id;
  size_t at;  // where the header's bytes in its last piece began, in the whole input
};

// Scans `input` in pieces of `piece` bytes.
std::vector<Seen> scanAll(const std::string& input, size_t piece) {
  FrameScan scan;
  std::vector<Seen> seen;
  for (size_t off = 0; off < input.size(); off += piece) {
    const auto* p = reinterpret_cast<const uint8_t*>(input.data()) + off;
    size_t len = std::min(piece, input.size() - off);
    for (size_t pos = 0; pos < len;) {
      FrameScan::Header h = scan.next(p + pos, len - pos);
      if (h.found) seen.push_back({h.type, h.stream_id, off + pos + h.begin});
      pos += h.consumed;
    }
  }
  return seen;
}

TEST_CASE("FrameScan finds every frame header whatever the pieces", "[unit][http2]") {
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  std::string input = preface + frameHeader(6, 4, 0) + std::string(6, 's') +  // SETTINGS
                      frameHeader(20, 1, 1) + std::string(20, 'h') +          // HEADERS
                      frameHeader(0, 0, 1) +                                  // empty DATA
                      frameHeader(70000, 0, 3) + std::string(70000, 'd') +    // large DATA
                      frameHeader(8, 7, 0) + std::string(8, 'g');             // GOAWAY
  const std::vector<Seen> expected = {
      {4, 0, 24}, {1, 1, 39}, {0, 1, 68}, {0, 3, 77}, {7, 0, 70086}};
  for (size_t piece :
       {size_t{1}, size_t{2}, size_t{7}, size_t{9}, size_t{24}, size_t{4096}, input.size()}) {
    INFO("pieces of " << piece << " bytes");
    std::vector<Seen> seen = scanAll(input, piece);
    REQUIRE(seen.size() == expected.size());
    for (size_t i = 0; i < seen.size(); ++i) {
      INFO("frame " << i);
      CHECK(seen[i].type == expected[i].type);
      CHECK(seen[i].stream_id == expected[i].stream_id);  // the reserved bit dropped
    }
  }
  // In one piece, each header's bytes begin where the header does.
  std::vector<Seen> whole = scanAll(input, input.size());
  for (size_t i = 0; i < whole.size(); ++i) CHECK(whole[i].at == expected[i].at);
}

TEST_CASE("FrameScan reports where a header's bytes begin in the piece", "[unit][http2]") {
  FrameScan scan;
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  std::string first = preface + frameHeader(3, 0, 5).substr(0, 4);
  const auto* p = reinterpret_cast<const uint8_t*>(first.data());
  FrameScan::Header h = scan.next(p, first.size());
  CHECK_FALSE(h.found);
  CHECK(h.consumed == first.size());
  std::string rest = frameHeader(3, 0, 5).substr(4) + "abc" + frameHeader(0, 1, 7);
  p = reinterpret_cast<const uint8_t*>(rest.data());
  h = scan.next(p, rest.size());
  REQUIRE(h.found);
  CHECK(h.begin == 0);  // it began in the earlier piece
  CHECK(h.consumed == 5);
  CHECK(h.stream_id == 5);
  FrameScan::Header next = scan.next(p + h.consumed, rest.size() - h.consumed);
  REQUIRE(next.found);
  CHECK(next.begin == 3);  // after the 3-byte payload
  CHECK(next.type == 1);
  CHECK(next.stream_id == 7);
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string setting(uint16_t id, uint32_t value) {
  return std::string{static_cast<char>(id >> 8), static_cast<char>(id)} + be32(value);
}

// The payload events of `input` scanned in pieces of `piece` bytes: "self:<stream>" for a
// self-dependent PRIORITY, "window:<max>@<offset of the SETTINGS' last byte>".
std::vector<std::string> payloadEvents(const std::string& input, size_t piece) {
  FrameScan scan;
  std::vector<std::string> events;
  for (size_t off = 0; off < input.size(); off += piece) {
    const auto* p = reinterpret_cast<const uint8_t*>(input.data()) + off;
    size_t len = std::min(piece, input.size() - off);
    for (size_t pos = 0; pos < len;) {
      FrameScan::Header h = scan.next(p + pos, len - pos);
      CHECK(int{h.found} + int{h.self_dependent} + int{h.initial_window} <= 1);
      if (h.self_dependent) events.push_back("self:" + std::to_string(h.stream_id));
      if (h.initial_window) {
        events.push_back("window:" + std::to_string(h.max_initial_window) + "@" +
                         std::to_string(off + pos + h.begin));
      }
      REQUIRE(h.consumed > 0);
      pos += h.consumed;
    }
  }
  return events;
}

TEST_CASE("FrameScan reads PRIORITY dependencies and initial window settings", "[unit][http2]") {
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  std::string input = preface;
  // SETTINGS without SETTINGS_INITIAL_WINDOW_SIZE: nothing to report.
  input += frameHeader(6, 4, 0) + setting(3, 100);
  // PRIORITY on stream 3 depending on 1, then 5 on itself (the E bit set does not hide it).
  input += frameHeader(5, 2, 3) + be32(1) + "\x0f";
  input += frameHeader(5, 2, 5) + be32(0x80000005) + "\x0f";
  // A PRIORITY of the wrong size is nghttp2's FRAME_SIZE_ERROR, not read here.
  input += frameHeader(4, 2, 7) + be32(7);
  // Two initial window values in one SETTINGS: the larger is reported, at the last byte.
  input += frameHeader(18, 4, 0) + setting(4, 70000) + setting(1, 8) + setting(4, 1000);
  size_t last_byte = input.size() - 1;
  // A SETTINGS ACK and a SETTINGS on a stream carry nothing to read.
  input += frameHeader(0, 4, 0) + frameHeader(6, 4, 1) + setting(4, 9);
  // DATA whose bytes look like a SETTINGS entry.
  std::string data = setting(4, 5);
  input += frameHeader(static_cast<uint32_t>(data.size()), 0, 1) + data;
  const std::vector<std::string> expected = {"self:5", "window:70000@" + std::to_string(last_byte)};
  for (size_t piece : {size_t{1}, size_t{3}, size_t{7}, size_t{16}, input.size()}) {
    INFO("pieces of " << piece << " bytes");
    CHECK(payloadEvents(input, piece) == expected);
  }
}

TEST_CASE("ClosedByClient remembers the last two streams, never stream 0", "[unit][http2]") {
  ClosedByClient closed;
  CHECK_FALSE(closed.holds(0));
  closed.note(1);
  closed.note(3);
  CHECK(closed.holds(1));
  CHECK(closed.holds(3));
  closed.note(5);
  CHECK_FALSE(closed.holds(1));  // forgotten: the check is lax, not wrong
  CHECK(closed.holds(3));
  CHECK(closed.holds(5));
  CHECK_FALSE(closed.holds(0));
}

TEST_CASE("UsedStreamIds refuses a lower client stream id never used", "[unit][http2]") {
  UsedStreamIds ids;
  CHECK(ids.use(5));
  CHECK_FALSE(ids.use(3));  // below 5, never used
  CHECK(ids.use(5));        // trailers on a used stream
  CHECK(ids.use(9));
  CHECK(ids.use(5));
  CHECK_FALSE(ids.use(7));
  CHECK(ids.use(2));  // even: not a client stream, nghttp2 judges it
  CHECK(ids.use(9 + 2 * 200));
  CHECK(ids.use(9));  // more than 32 ids below the highest: not judged
  CHECK_FALSE(ids.use(9 + 2 * 199));
}

}  // namespace
}  // namespace proxy::http2
