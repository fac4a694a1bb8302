#include "proxy/http/http2/frame_buffer_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

// The two blocks: the frame buffer (16 KiB, allocated as the session is made), of which an
// idle connection that wrote small frames keeps the first page resident until release();
// and the stream map's table (4 KiB, calloc'ed then), which with no stream in it is all
// zeros again (nghttp2 clears a removed bucket). release() gives the table's page back
// only when it finds it all zeros, so the fresh zero page that replaces it reads the same
// bytes whatever nghttp2 keeps there: nothing depends on when nghttp2 empties the map.

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
  // Each block is whole pages of its own (allocatePages), so no other allocation and no
  // allocator header shares them. nghttp2 rewrites a frame buffer from its start before
  // reading it, so zeros are as good as the old bytes.
  if (block_ != nullptr && dirty_ && drained_) {
    ::madvise(block_, block_size_, MADV_DONTNEED);
    dirty_ = false;
  }
  if (map_block_ != nullptr && map_dirty_) {
    map_dirty_ = false;
    // Only a table that is all zeros already: then a fresh zero page is the same bytes.
    const auto* p = static_cast<const unsigned char*>(map_block_);
    if (p[0] == 0 && std::memcmp(p, p + 1, map_block_size_ - 1) == 0) {
      ::madvise(map_block_, map_block_size_, MADV_DONTNEED);
    }
  }
}

void* FrameBufferPages::allocatePages(size_t size, size_t* rounded) {
  const size_t page = pageSize();
  *rounded = (size + page - 1) / page * page;
  return std::aligned_alloc(page, *rounded);
}

void* FrameBufferPages::unpage(void*& block, size_t& block_size, size_t size) {
  void* moved = nullptr;
  if (size != 0) {
    moved = inner_ != nullptr ? inner_->malloc(size, inner_->mem_user_data) : std::malloc(size);
    if (moved == nullptr) return nullptr;  // realloc keeps the old block
    std::memcpy(moved, block, std::min(size, block_size));
  }
  std::free(block);
  block = nullptr;
  block_size = 0;
  return moved;
}

void* FrameBufferPages::doMalloc(size_t size, void* user) {
  FrameBufferPages& s = self(user);
  if (s.constructing_ && s.block_ == nullptr && size >= kMinBlock) {
    s.block_ = allocatePages(size, &s.block_size_);
    if (s.block_ == nullptr) s.block_size_ = 0;
    return s.block_;
  }
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
  if (ptr != nullptr && ptr == s.map_block_) {  // the map grew (or the session ends)
    std::free(ptr);
    s.map_block_ = nullptr;
    s.map_block_size_ = 0;
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
  // A calloc of whole pages while the session is being made is its stream map's table
  // (nghttp2 1.52: 256 buckets of 16 bytes; nothing else it callocs then is that large).
  // Where pages are larger than 4 KiB the table shares one and stays an ordinary block.
  const size_t page = pageSize();
  if (s.constructing_ && s.map_block_ == nullptr && size != 0 && count <= SIZE_MAX / size &&
      count * size >= page && count * size % page == 0) {
    s.map_block_ = allocatePages(count * size, &s.map_block_size_);
    if (s.map_block_ == nullptr) {
      s.map_block_size_ = 0;
      return nullptr;
    }
    std::memset(s.map_block_, 0, s.map_block_size_);
    return s.map_block_;
  }
  return s.inner_ != nullptr ? s.inner_->calloc(count, size, s.inner_->mem_user_data)
                             : std::calloc(count, size);
}

void* FrameBufferPages::doRealloc(void* ptr, size_t size, void* user) {
  FrameBufferPages& s = self(user);
  if (ptr == nullptr) return doMalloc(size, user);  // how nghttp2 makes its buffers
  // Neither paged block is reallocated by nghttp2 1.52 (a frame buffer chunk keeps its
  // size; the map makes a new table to grow); if one were, it leaves the page path.
  if (ptr == s.map_block_) return s.unpage(s.map_block_, s.map_block_size_, size);
  if (ptr == s.block_) {
    if (size != 0 && size <= s.block_size_) return ptr;
    return s.unpage(s.block_, s.block_size_, size);
  }
  return s.inner_ != nullptr ? s.inner_->realloc(ptr, size, s.inner_->mem_user_data)
                             : std::realloc(ptr, size);
}

}  // namespace proxy::http2
