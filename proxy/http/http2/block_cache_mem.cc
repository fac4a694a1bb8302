#include "proxy/http/http2/block_cache_mem.h"

#include "proxy/common/block_cache.h"

namespace proxy::http2 {
namespace {

void* memMalloc(size_t size, void*) { return BlockCache::allocate(size); }
void memFree(void* ptr, void*) { BlockCache::release(ptr); }
void* memCalloc(size_t count, size_t size, void*) {
  return BlockCache::allocateZeroed(count, size);
}
void* memRealloc(void* ptr, size_t size, void*) { return BlockCache::reallocate(ptr, size); }

nghttp2_mem mem_table = {nullptr, &memMalloc, &memFree, &memCalloc, &memRealloc};

}  // namespace

nghttp2_mem* blockCacheMem() { return &mem_table; }

}  // namespace proxy::http2
