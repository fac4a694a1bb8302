// FrameBufferPages: nghttp2's frame buffer on pages of its own, given back to the kernel
// when a session is quiet (issue 12, memory per idle HTTP/2 connection); and a
// ServerSession that gives them back and then serves the next request as before.
#include "proxy/http/http2/frame_buffer_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <vector>

#include "proxy/http/http2/server_session.h"
#include "tests/unit/http2/server_test_peer.h"

namespace proxy::http2 {
namespace {

// Pages of [p, p + n) the kernel has resident (p page-aligned).
size_t residentPages(const void* p, size_t n) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((n + page - 1) / page);
  REQUIRE(::mincore(const_cast<void*>(p), n, vec.data()) == 0);
  size_t resident = 0;
  for (unsigned char v : vec) resident += v & 1;
  return resident;
}

// Counts what reaches the inner allocator, by pointer.
struct Inner {
  nghttp2_mem mem{this, &Inner::doMalloc, &Inner::doFree, &Inner::doCalloc, &Inner::doRealloc};
  int live = 0;
  static Inner& self(void* u) { return *static_cast<Inner*>(u); }
  static void* doMalloc(size_t n, void* u) {
    ++self(u).live;
    return std::malloc(n);
  }
  static void doFree(void* p, void* u) {
    if (p != nullptr) --self(u).live;
    std::free(p);
  }
  static void* doCalloc(size_t n, size_t s, void* u) {
    ++self(u).live;
    return std::calloc(n, s);
  }
  static void* doRealloc(void* p, size_t n, void* u) {
    if (p == nullptr) ++self(u).live;
    return std::realloc(p, n);
  }
};

// A FrameBufferPages over a counting inner allocator, its nghttp2_mem and the page size.
struct Paged {
  Inner inner;
  FrameBufferPages pages{&inner.mem};
  nghttp2_mem* m = pages.mem();
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
};

// Frees the inner allocator's blocks (none left after), then the paged one, which never
// reaches the inner allocator.
void freeAllThenPaged(FrameBufferPages& pages, Inner& inner, std::initializer_list<void*> ptrs,
                      void* paged) {
  nghttp2_mem* m = pages.mem();
  for (void* p : ptrs) m->free(p, m->mem_user_data);
  CHECK(inner.live == 0);
  m->free(paged, m->mem_user_data);
  CHECK(inner.live == 0);
}

TEST_CASE(
    "The frame buffer gets whole pages of its own: everything else goes to the inner "
    "allocator",
    "[unit][http2]") {
  Paged p;
  auto& [inner, pages, m, page] = p;
  pages.beginSession();
  void* small = m->malloc(64, m->mem_user_data);
  // nghttp2 1.52 makes its frame buffer with realloc(NULL, 16 KiB + 10).
  void* frames = m->realloc(nullptr, 16384 + 10, m->mem_user_data);
  void* second = m->realloc(nullptr, 20000, m->mem_user_data);  // only the first is it
  pages.endSession();
  void* later = m->malloc(32 * 1024, m->mem_user_data);
  REQUIRE(frames != nullptr);
  CHECK(pages.blockForTest() == frames);
  CHECK(reinterpret_cast<uintptr_t>(frames) % page == 0);
  CHECK(pages.blockSizeForTest() % page == 0);
  CHECK(pages.blockSizeForTest() >= 16384 + 10);
  CHECK(inner.live == 3);  // small, second, later
  freeAllThenPaged(pages, inner, {small, second, later}, frames);
  CHECK(pages.blockForTest() == nullptr);
}

TEST_CASE("Released pages leave memory and read as zeros: only a drained buffer is released",
          "[unit][http2]") {
  FrameBufferPages pages(nullptr);
  nghttp2_mem* m = pages.mem();
  pages.beginSession();
  auto* frames = static_cast<char*>(m->realloc(nullptr, 16394, m->mem_user_data));
  pages.endSession();
  REQUIRE(frames != nullptr);
  CHECK_FALSE(pages.releasable());  // nothing written yet
  std::memset(frames, 'f', pages.blockSizeForTest());
  REQUIRE(residentPages(frames, pages.blockSizeForTest()) ==
          pages.blockSizeForTest() / static_cast<size_t>(::sysconf(_SC_PAGESIZE)));

  pages.afterSend(true);  // nghttp2 handed out bytes of the buffer: still in use
  CHECK_FALSE(pages.releasable());
  pages.release();
  CHECK(frames[0] == 'f');
  pages.afterSend(false);  // its next send had nothing: the buffer holds no frame
  REQUIRE(pages.releasable());
  pages.release();
  CHECK(residentPages(frames, pages.blockSizeForTest()) == 0);
  CHECK_FALSE(pages.releasable());  // until written again
  CHECK(frames[0] == 0);
  CHECK(frames[pages.blockSizeForTest() - 1] == 0);
  frames[100] = 'g';  // usable again: a fresh zeroed page
  CHECK(frames[100] == 'g');
  m->free(frames, m->mem_user_data);
}

TEST_CASE("The stream map's table gets a page of its own, given back only when all zeros",
          "[unit][http2]") {
  Paged p;
  auto& [inner, pages, m, page] = p;
  pages.beginSession();
  void* odd = m->calloc(3, 1000, m->mem_user_data);  // not whole pages: inner
  // nghttp2 1.52's map is 256 buckets of 16 bytes, one page where pages are 4 KiB; here
  // a table of one page, whatever this machine's page size.
  auto* table = static_cast<unsigned char*>(m->calloc(page / 16, 16, m->mem_user_data));
  void* second = m->calloc(page / 16, 16, m->mem_user_data);  // only the first is it
  pages.endSession();
  void* later = m->calloc(page / 8, 16, m->mem_user_data);  // a grown table: inner
  REQUIRE(table != nullptr);
  CHECK(pages.mapBlockForTest() == table);
  CHECK(reinterpret_cast<uintptr_t>(table) % page == 0);
  CHECK(pages.mapBlockSizeForTest() == page);
  for (size_t i = 0; i < page; ++i) REQUIRE(table[i] == 0);  // calloc's promise
  CHECK(inner.live == 3);
  CHECK_FALSE(pages.releasable());  // the session has not run yet

  pages.afterReceive();  // a stream arrived: a bucket is set
  table[1234] = 7;
  REQUIRE(pages.releasable());
  pages.release();
  CHECK(residentPages(table, page) == 1);  // not all zeros: kept, bytes and all
  CHECK(table[1234] == 7);
  CHECK_FALSE(pages.releasable());  // looked at; until the session runs again

  pages.afterSend(true);  // its response went out and the stream closed: bucket cleared
  table[1234] = 0;
  pages.afterSend(false);
  REQUIRE(pages.releasable());
  pages.release();
  CHECK(residentPages(table, page) == 0);
  CHECK(table[1234] == 0);  // reads as zeros, as it was
  table[99] = 1;            // and can be written again
  CHECK(table[99] == 1);

  freeAllThenPaged(pages, inner, {odd, second, later}, table);
  CHECK(pages.mapBlockForTest() == nullptr);
}

TEST_CASE("A paged block that is reallocated leaves the page path with its bytes",
          "[unit][http2]") {
  // Not done by nghttp2 1.52, handled anyway: a realloc never loses or corrupts bytes.
  Paged p;
  auto& [inner, pages, m, page] = p;
  pages.beginSession();
  auto* frames = static_cast<char*>(m->realloc(nullptr, 16394, m->mem_user_data));
  auto* table = static_cast<char*>(m->calloc(page / 16, 16, m->mem_user_data));
  pages.endSession();
  REQUIRE(frames != nullptr);
  REQUIRE(table != nullptr);
  std::memcpy(frames, "frames", 6);
  std::memcpy(table, "table", 5);
  CHECK(m->realloc(frames, 100, m->mem_user_data) == frames);  // fits: stays put
  auto* bigger = static_cast<char*>(m->realloc(frames, 64 * 1024, m->mem_user_data));
  auto* moved = static_cast<char*>(m->realloc(table, page * 2, m->mem_user_data));
  REQUIRE(bigger != nullptr);
  REQUIRE(moved != nullptr);
  CHECK(std::memcmp(bigger, "frames", 6) == 0);
  CHECK(std::memcmp(moved, "table", 5) == 0);
  CHECK(pages.blockForTest() == nullptr);
  CHECK(pages.mapBlockForTest() == nullptr);
  CHECK(inner.live == 2);  // both are the inner allocator's now
  m->free(bigger, m->mem_user_data);
  m->free(moved, m->mem_user_data);
  CHECK(inner.live == 0);
}

TEST_CASE("A ServerSession gives its frame buffer back when quiet and serves on as before",
          "[unit][http2]") {
  test::Recorder recorder;
  test::Client client;
  std::unique_ptr<ServerSession> server = ServerSession::create({}, recorder);
  recorder.session = server.get();
  CHECK_FALSE(server->holdsIdlePages());  // SETTINGS queued, not written
  test::exchange(client, *server);
  REQUIRE(server->holdsIdlePages());
  server->releaseIdlePages();
  CHECK_FALSE(server->holdsIdlePages());

  for (int round = 0; round < 3; ++round) {
    int32_t id = client.request(test::Client::get("/intake/v2/events"));
    test::exchange(client, *server);
    REQUIRE(server->openStreams() == 1);
    server->submitResponse(id, 202, {{"content-type", "application/json"}}, false);
    server->sendData(id, "{}", 2);
    server->endResponse(id, nullptr);
    test::exchange(client, *server);
    const test::Client::Response& r = client.responses[id];
    CHECK(r.status == 202);
    CHECK(r.body == "{}");
    CHECK(r.ended);
    REQUIRE(server->holdsIdlePages());
    server->releaseIdlePages();
    // Nothing of the session's two idle blocks stays resident: the stream map is empty
    // again once the stream closed, so its zeros went too.
    const FrameBufferPages& pages = server->pagesForTest();
    if (::sysconf(_SC_PAGESIZE) == 4096) REQUIRE(pages.mapBlockForTest() != nullptr);
    if (pages.mapBlockForTest() != nullptr) {
      CHECK(residentPages(pages.mapBlockForTest(), pages.mapBlockSizeForTest()) == 0);
    }
    CHECK(residentPages(pages.blockForTest(), pages.blockSizeForTest()) == 0);
  }
  CHECK(server->wantsRead());
}

}  // namespace
}  // namespace proxy::http2
