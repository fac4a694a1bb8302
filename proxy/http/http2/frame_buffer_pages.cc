#include "proxy/http/http2/frame_buffer_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace proxy::http2 {
namespace {

size_t pageSize() {
  static const size_t page = [] {
    long n = ::sysconf(_SC_PAGESIZE);
    return n > 0 ? static_cast<size_t>(n) : size_t{4096};
  }();
  return page;
}

}  // namespace

FrameBufferPages::FrameBufferPages(nghttp2_mem* inner)
    : mem_{this, &FrameBufferPages::doMalloc, &FrameBufferPages::doFree,
           &FrameBufferPages::doCalloc, &FrameBufferPages::doRealloc},
      inner_(inner) {}

void FrameBufferPages::release() {
  if (!releasable()) return;
  // The block is whole pages of its own (allocateBlock), so no other allocation and no
  // allocator header shares them; nghttp2 rewrites a frame buffer from its start before
  // reading it, so zeros are as good as the old bytes.
  ::madvise(block_, block_size_, MADV_DONTNEED);
  dirty_ = false;
}

void* FrameBufferPages::allocateBlock(size_t size) {
  const size_t page = pageSize();
  const size_t rounded = (size + page - 1) / page * page;
  void* p = std::aligned_alloc(page, rounded);
  if (p != nullptr) {
    block_ = p;
    block_size_ = rounded;
  }
  return p;
}

void* FrameBufferPages::doMalloc(size_t size, void* user) {
  FrameBufferPages& s = self(user);
  if (s.constructing_ && s.block_ == nullptr && size >= kMinBlock) return s.allocateBlock(size);
  return s.inner_ != nullptr ? s.inner_->malloc(size, s.inner_->mem_user_data) : std::malloc(size);
}

void FrameBufferPages::doFree(void* ptr, void* user) {
  FrameBufferPages& s = self(user);
  if (ptr != nullptr && ptr == s.block_) {
    std::free(ptr);
    s.block_ = nullptr;
    s.block_size_ = 0;
    return;
  }
  if (s.inner_ != nullptr) {
    s.inner_->free(ptr, s.inner_->mem_user_data);
  } else {
    std::free(ptr);
  }
}

void* FrameBufferPages::doCalloc(size_t count, size_t size, void* user) {
  FrameBufferPages& s = self(user);
  return s.inner_ != nullptr ? s.inner_->calloc(count, size, s.inner_->mem_user_data)
                             : std::calloc(count, size);
}

void* FrameBufferPages::doRealloc(void* ptr, size_t size, void* user) {
  FrameBufferPages& s = self(user);
  if (ptr == nullptr) return doMalloc(size, user);  // how nghttp2 makes its buffers
  if (ptr == s.block_) {
    if (size != 0 && size <= s.block_size_) return ptr;
    // Not seen with nghttp2 1.52 (a frame buffer chunk keeps its size): the block
    // leaves the page-aligned path and becomes an ordinary allocation.
    void* moved = size == 0 ? nullptr : doMalloc(size, user);
    if (size != 0 && moved == nullptr) return nullptr;  // realloc keeps the old block
    if (moved != nullptr) std::memcpy(moved, ptr, std::min(size, s.block_size_));
    std::free(ptr);
    s.block_ = nullptr;
    s.block_size_ = 0;
    return moved;
  }
  return s.inner_ != nullptr ? s.inner_->realloc(ptr, size, s.inner_->mem_user_data)
                             : std::realloc(ptr, size);
}

}  // namespace proxy::http2
