// The program's operator new and delete: small blocks through this thread's BlockCache
// (proxy/common/block_cache.h), so that the objects and strings of one request or call
// are taken from the last one's instead of from malloc's slow path (issue 12). Every
// block is still a malloc block. In sanitizer builds the sanitizer's own operators stay.
#include <cstddef>
#include <new>

#include "proxy/common/block_cache.h"

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)

namespace {

void* allocateOrThrow(std::size_t size) {
  void* p = proxy::BlockCache::allocate(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(std::size_t size) { return allocateOrThrow(size); }
void* operator new[](std::size_t size) { return allocateOrThrow(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return proxy::BlockCache::allocate(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return proxy::BlockCache::allocate(size == 0 ? 1 : size);
}
void operator delete(void* p) noexcept { proxy::BlockCache::release(p); }
void operator delete[](void* p) noexcept { proxy::BlockCache::release(p); }
void operator delete(void* p, std::size_t) noexcept { proxy::BlockCache::release(p); }
void operator delete[](void* p, std::size_t) noexcept { proxy::BlockCache::release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { proxy::BlockCache::release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { proxy::BlockCache::release(p); }
// The over-aligned forms (alignment above 16) keep libstdc++'s own, which use
// aligned_alloc and free: the proxy allocates none of those per request.

#endif
