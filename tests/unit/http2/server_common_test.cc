// session_common.h, the pieces ServerSession (and ClientSession) share: nv lists, body
// buffers, the hand-built GOAWAY and error-code names.
#include <catch2/catch.hpp>
#include <string>

#include "proxy/http/http2/session_common.h"
#include "tests/unit/http2/server_test_peer.h"

namespace proxy::http2 {
namespace {

std::string name(const nghttp2_nv& nv) {
  return std::string(reinterpret_cast<const char*>(nv.name), nv.namelen);
}

TEST_CASE("NvList lower-cases names and never indexes credentials", "[unit][http2]") {
  HeaderFields fields = {{"Content-Type", "text/plain"},
                         {"authorization", "Bearer x"},
                         {"cookie", "short=1"},
                         {"cookie", std::string(40, 'c')},
                         {"x-ok", "1"}};
  NvList nv;
  nv.addAll(fields);
  REQUIRE(nv.size() == 5);
  CHECK(name(nv.data()[0]) == "content-type");
  CHECK(fields[0].name == "Content-Type");  // the caller's fields are untouched
  CHECK(nv.data()[0].flags == NGHTTP2_NV_FLAG_NONE);
  CHECK(nv.data()[1].flags == NGHTTP2_NV_FLAG_NO_INDEX);
  CHECK(nv.data()[2].flags == NGHTTP2_NV_FLAG_NO_INDEX);
  CHECK(nv.data()[3].flags == NGHTTP2_NV_FLAG_NONE);
  CHECK(nv.data()[4].value == reinterpret_cast<const uint8_t*>(fields[4].value.data()));
  // RFC 7541 §4.1 sizes: name + value + 32 each.
  uint64_t expected = 0;
  for (const HeaderField& f : fields) expected += f.name.size() + f.value.size() + 32;
  CHECK(nv.listSize() == expected);
}

TEST_CASE("NvList keeps lowered names valid as more are added", "[unit][http2]") {
  HeaderFields fields;
  for (int i = 0; i < 200; ++i) fields.push_back({"X-Header-Number-" + std::to_string(i), "v"});
  NvList nv;
  nv.addAll(fields);
  for (int i = 0; i < 200; ++i) CHECK(name(nv.data()[i]) == "x-header-number-" + std::to_string(i));
}

TEST_CASE("NvList keeps every field in order when added one by one past its inline room",
          "[unit][http2]") {
  // The first fields live inside the list, the rest spill to the heap: the order, the
  // pointers into the caller's strings and the size count must not notice.
  std::vector<std::string> values;
  for (int i = 0; i < 60; ++i) values.push_back("value-" + std::to_string(i));
  NvList nv;
  uint64_t expected = 0;
  for (int i = 0; i < 60; ++i) {
    std::string n = (i % 3 == 0 ? "Upper-" : "lower-") + std::to_string(i);
    nv.add(n, values[static_cast<size_t>(i)]);  // `n` dies: upper-case names are copied
    expected += n.size() + values[static_cast<size_t>(i)].size() + 32;
    if (i == 5) nv.reserve(3);  // smaller than what it holds: changes nothing
  }
  REQUIRE(nv.size() == 60);
  for (int i = 0; i < 60; i += 3) {
    CHECK(name(nv.data()[i]) == "upper-" + std::to_string(i));
  }
  for (int i = 0; i < 60; ++i) {
    CHECK(nv.data()[i].value ==
          reinterpret_cast<const uint8_t*>(values[static_cast<size_t>(i)].data()));
  }
  CHECK(nv.listSize() == expected);
}

TEST_CASE("BodyBuffer hands out bytes in order and frees them", "[unit][http2]") {
  BodyBuffer b;
  std::string in;
  for (int i = 0; i < 300000; ++i) in.push_back(static_cast<char>('a' + i % 26));
  std::string out;
  uint8_t chunk[16384];
  size_t fed = 0;
  while (out.size() < in.size()) {
    if (fed < in.size()) {
      size_t n = std::min<size_t>(50000, in.size() - fed);
      b.append(in.data() + fed, n);
      fed += n;
    }
    size_t n = b.take(chunk, sizeof(chunk));
    REQUIRE(n > 0);
    out.append(reinterpret_cast<const char*>(chunk), n);
    CHECK(b.size() == fed - out.size());
  }
  CHECK(out == in);
  CHECK(b.take(chunk, sizeof(chunk)) == 0);
  b.append("xy", 2);
  b.release();
  CHECK(b.size() == 0);
}

TEST_CASE("goawayFrame builds a GOAWAY that HTTP/2 peers parse", "[unit][http2]") {
  std::vector<test::Frame> frames = test::parseFrames(goawayFrame(41, NGHTTP2_ENHANCE_YOUR_CALM));
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].type == NGHTTP2_GOAWAY);
  CHECK(frames[0].stream_id == 0);
  CHECK(frames[0].lastStreamId() == 41);
  CHECK(frames[0].errorCode() == NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST_CASE("errorCodeName and ErrorCodeCounts follow RFC 9113 §7", "[unit][http2]") {
  CHECK(std::string(errorCodeName(NGHTTP2_NO_ERROR)) == "NO_ERROR");
  CHECK(std::string(errorCodeName(NGHTTP2_REFUSED_STREAM)) == "REFUSED_STREAM");
  CHECK(std::string(errorCodeName(NGHTTP2_HTTP_1_1_REQUIRED)) == "HTTP_1_1_REQUIRED");
  CHECK(std::string(errorCodeName(0xdead)) == "UNKNOWN");
  for (uint32_t code = 0; code < kErrorCodeCount; ++code) {
    CHECK(std::string(errorCodeName(code)) == nghttp2_http2_strerror(code));
  }
  ErrorCodeCounts counts;
  counts.add(NGHTTP2_CANCEL);
  counts.add(NGHTTP2_CANCEL);
  counts.add(0xdead);
  CHECK(counts.get(NGHTTP2_CANCEL) == 2);
  CHECK(counts.get(0xbeef) == 1);  // every unknown code shares the last slot
  CHECK(counts.total() == 3);
}

}  // namespace
}  // namespace proxy::http2
