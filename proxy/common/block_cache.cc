#include "proxy/common/block_cache.h"

#include <malloc.h>

#include <array>
#include <cstdlib>
#include <cstring>

namespace proxy {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCaching = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kCaching = false;
#else
constexpr bool kCaching = true;
#endif
#else
constexpr bool kCaching = true;
#endif

// Class k holds blocks of at least 24 + 16k usable bytes: glibc's chunk sizes, whose
// usable sizes are exactly these (a 16-byte-aligned chunk less its 8-byte size field).
constexpr size_t kMinUsable = 24;
constexpr size_t kStep = 16;
constexpr size_t kClasses = (BlockCache::kMaxBlock - kMinUsable) / kStep + 1;

// The class a request of `size` bytes takes its block from (the smallest that holds it).
size_t requestClass(size_t size) {
  return size <= kMinUsable ? 0 : (size - kMinUsable + kStep - 1) / kStep;
}
// The class a freed block of `usable` bytes can serve (the largest it holds whole).
size_t blockClass(size_t usable) { return (usable - kMinUsable) / kStep; }
size_t classBytes(size_t k) { return kMinUsable + k * kStep; }

struct FreeBlock {
  FreeBlock* next;
};

// Trivially destructible, so a free after the thread's Drainer ran (a session freed
// late in the thread's exit) still finds valid lists, with no room left to fill.
struct Lists {
  std::array<FreeBlock*, kClasses> heads;
  size_t cached_bytes;
  size_t limit;
};
thread_local Lists lists = {{}, 0, BlockCache::kMaxCachedBytes};

// Gives this thread's cached blocks back when the thread ends.
struct Drainer {
  ~Drainer() {
    lists.limit = 0;
    for (FreeBlock*& head : lists.heads) {
      while (head != nullptr) {
        FreeBlock* next = head->next;
        std::free(head);
        head = next;
      }
    }
    lists.cached_bytes = 0;
  }
};
thread_local Drainer drainer;

void* take(size_t size) {
  if (kCaching && size <= BlockCache::kMaxBlock) {
    (void)&drainer;  // its destructor must run with this thread's
    size_t k = requestClass(size);
    if (FreeBlock* block = lists.heads[k]) {
      lists.heads[k] = block->next;
      lists.cached_bytes -= classBytes(k);
      return block;
    }
    // A new block of the class's full size, so that it serves the class again.
    return std::malloc(classBytes(k));
  }
  return std::malloc(size);
}

void give(void* ptr) {
  if (ptr == nullptr) return;
  if (kCaching) {
    size_t usable = malloc_usable_size(ptr);
    if (usable >= kMinUsable && usable <= BlockCache::kMaxBlock) {
      size_t k = blockClass(usable);
      if (lists.cached_bytes + classBytes(k) <= lists.limit) {
        auto* block = static_cast<FreeBlock*>(ptr);
        block->next = lists.heads[k];
        lists.heads[k] = block;
        lists.cached_bytes += classBytes(k);
        return;
      }
    }
  }
  std::free(ptr);
}

}  // namespace

void* BlockCache::allocate(size_t size) { return take(size); }

void BlockCache::release(void* ptr) { give(ptr); }

void* BlockCache::allocateZeroed(size_t count, size_t size) {
  if (size != 0 && count > static_cast<size_t>(-1) / size) return nullptr;
  void* p = take(count * size);
  if (p != nullptr) std::memset(p, 0, count * size);
  return p;
}

void* BlockCache::reallocate(void* ptr, size_t size) {
  if (ptr == nullptr) return take(size);
  size_t usable = malloc_usable_size(ptr);
  if (size <= usable && size != 0) return ptr;
  if (!kCaching || size == 0 || size > kMaxBlock) return std::realloc(ptr, size);
  void* p = take(size);
  if (p == nullptr) return nullptr;  // ptr stays valid, as after realloc's failure
  std::memcpy(p, ptr, usable);
  give(ptr);
  return p;
}

size_t BlockCache::cachedBytes() { return lists.cached_bytes; }

bool BlockCache::enabled() { return kCaching; }

}  // namespace proxy
