// BlockCache (proxy/common/block_cache.h): freed small blocks come back for the next
// request of their size class, every block stays a malloc block, the per-thread budget
// holds, and in sanitizer builds nothing is kept.
#include "proxy/common/block_cache.h"

#include <malloc.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace proxy {
namespace {

TEST_CASE("BlockCache hands a freed block to the next request of its class", "[unit][common]") {
  size_t before = BlockCache::cachedBytes();
  void* a = BlockCache::allocate(100);
  REQUIRE(a != nullptr);
  CHECK(malloc_usable_size(a) >= 100);
  std::memset(a, 0xab, 100);
  BlockCache::release(a);
  if (!BlockCache::enabled()) {
    CHECK(BlockCache::cachedBytes() == 0);
    return;
  }
  CHECK(BlockCache::cachedBytes() > before);
  void* b = BlockCache::allocate(90);  // the same 104-byte class
  CHECK(b == a);
  CHECK(BlockCache::cachedBytes() == before);
  void* c = BlockCache::allocate(200);  // another class: not that block
  CHECK(c != a);
  std::free(b);  // every block is a malloc block
  BlockCache::release(c);

  // A block that never came from the cache is taken too, in the class it holds whole.
  void* plain = std::malloc(300);
  size_t usable = malloc_usable_size(plain);
  BlockCache::release(plain);
  void* again = BlockCache::allocate(usable);
  CHECK(again == plain);
  BlockCache::release(again);
}

TEST_CASE("BlockCache keeps no large block and stops at its budget", "[unit][common]") {
  if (!BlockCache::enabled()) return;
  size_t before = BlockCache::cachedBytes();
  void* large = BlockCache::allocate(BlockCache::kMaxBlock + 1);
  BlockCache::release(large);
  CHECK(BlockCache::cachedBytes() == before);

  std::vector<void*> blocks;
  for (size_t i = 0; i < 2 * BlockCache::kMaxCachedBytes / 1000; ++i) {
    blocks.push_back(BlockCache::allocate(1000));
  }
  for (void* p : blocks) BlockCache::release(p);
  CHECK(BlockCache::cachedBytes() <= BlockCache::kMaxCachedBytes);
  CHECK(BlockCache::cachedBytes() > BlockCache::kMaxCachedBytes - 1016);
  // Taken back out, the budget frees up again (but for the few blocks glibc had made a
  // class larger, 1016 bytes, when the rest of a chunk was too small to split off).
  for (void*& p : blocks) p = BlockCache::allocate(1000);
  CHECK(BlockCache::cachedBytes() <= before + 16 * 1024);
  for (void* p : blocks) std::free(p);
}

TEST_CASE("BlockCache reallocate keeps the bytes across classes", "[unit][common]") {
  auto* p = static_cast<unsigned char*>(BlockCache::allocate(40));
  for (int i = 0; i < 40; ++i) p[i] = static_cast<unsigned char>(i);
  p = static_cast<unsigned char*>(BlockCache::reallocate(p, 500));  // a larger class
  REQUIRE(p != nullptr);
  for (int i = 0; i < 40; ++i) CHECK(p[i] == i);
  p = static_cast<unsigned char*>(BlockCache::reallocate(p, 4000));  // beyond the cache
  REQUIRE(p != nullptr);
  for (int i = 0; i < 40; ++i) CHECK(p[i] == i);
  void* same = BlockCache::reallocate(p, 30);  // fits: stays
  CHECK(same == p);
  BlockCache::release(same);

  auto* zeroed = static_cast<unsigned char*>(BlockCache::allocateZeroed(7, 9));
  REQUIRE(zeroed != nullptr);
  for (int i = 0; i < 63; ++i) CHECK(zeroed[i] == 0);
  BlockCache::release(zeroed);
  CHECK(BlockCache::allocateZeroed(static_cast<size_t>(-1) / 2, 4) == nullptr);  // overflow
}

TEST_CASE("BlockCache lists are per thread", "[unit][common]") {
  if (!BlockCache::enabled()) return;
  size_t here = BlockCache::cachedBytes();
  size_t there = 0;
  std::thread other([&] {
    BlockCache::release(BlockCache::allocate(64));
    there = BlockCache::cachedBytes();
  });
  other.join();  // its cached block is freed as the thread ends
  CHECK(there > 0);
  CHECK(BlockCache::cachedBytes() == here);
}

}  // namespace
}  // namespace proxy
