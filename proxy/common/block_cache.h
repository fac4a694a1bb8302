// BlockCache: per-thread lists of freed small blocks, handed out again before malloc is
// asked. A gRPC call allocates and frees about thirty small blocks (nghttp2's stream and
// frames on both sides, our stream objects, header strings); with tens of calls in flight
// glibc's per-thread cache (7 blocks a size) overflows, and each block takes malloc's slow
// path: a sixth of a call's instructions were malloc and free (issue 12). nghttp2 gets
// this through its nghttp2_mem (http2/block_cache_mem.h), the proxy's C++ code through
// operator new (app/operator_new.cc).
//
// Every block is a glibc malloc block, kept by glibc's own size classes
// (malloc_usable_size): free() may take any of them, release() any malloc block, and a
// cached block holds no more memory than glibc's free lists would. At most
// kMaxCachedBytes per thread, of blocks up to kMaxBlock bytes. Under AddressSanitizer
// nothing is cached, so a use after free is still found. Pure code over libc.
#pragma once

#include <cstddef>

namespace proxy {

class BlockCache {
 public:
  static constexpr size_t kMaxBlock = 1016;  // glibc's tcache range
  static constexpr size_t kMaxCachedBytes = 256 * 1024;

  // malloc, free, calloc and realloc, with this thread's lists in front.
  static void* allocate(size_t size);
  static void release(void* ptr);
  static void* allocateZeroed(size_t count, size_t size);
  static void* reallocate(void* ptr, size_t size);
  // This thread's cached bytes (for tests).
  static size_t cachedBytes();
  // False in sanitizer builds: every call goes straight to libc.
  static bool enabled();
};

}  // namespace proxy
