// FrameBufferPages: the allocator (nghttp2_mem) a ServerSession hands nghttp2, so that the
// one large block nghttp2 keeps for a session's whole life, its outbound frame buffer
// (16 KiB, allocated as the session is made), sits on pages of its own, which a quiet
// session gives back to the kernel (issue 12: memory per idle HTTP/2 connection). An idle
// connection that wrote small frames keeps the first page of that buffer resident (4 KiB,
// a quarter of what nghttp2 holds per idle session); after release() it keeps none, and
// the next frame nghttp2 writes faults a zeroed page back in.
//
// Every other allocation goes to the inner allocator unchanged (malloc, or a test's
// counting one). Pure code over libc; loop thread only, like its session.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>

namespace proxy::http2 {

class FrameBufferPages {
 public:
  // Blocks at least this large, allocated while the session is being made, are its frame
  // buffer (nghttp2 1.52 allocates it first and nothing else that large then).
  static constexpr size_t kMinBlock = 16 * 1024;

  // `inner`: where every other allocation goes; null = malloc and friends.
  explicit FrameBufferPages(nghttp2_mem* inner);
  FrameBufferPages(const FrameBufferPages&) = delete;
  FrameBufferPages& operator=(const FrameBufferPages&) = delete;

  // The allocator to pass to nghttp2_session_server_new3; valid while this object lives,
  // which must be at least as long as the session.
  nghttp2_mem* mem() { return &mem_; }
  // Bracket the nghttp2_session_*_new3 call.
  void beginSession() { constructing_ = true; }
  void endSession() { constructing_ = false; }

  // After each nghttp2_session_mem_send: `produced` = it returned bytes (which came from
  // the frame buffer and may be referenced until the next call).
  void afterSend(bool produced) {
    if (produced) dirty_ = true;
    drained_ = !produced;
  }
  // True when release() would give pages back: the buffer was written since the last
  // release and nghttp2's last send returned nothing (it holds no frame bytes there).
  bool releasable() const { return block_ != nullptr && dirty_ && drained_; }
  // Gives the frame buffer's pages back to the kernel (madvise MADV_DONTNEED: they read
  // as zeros next time); does nothing unless releasable().
  void release();

  // For tests: the page-aligned block and its size (null when there is none).
  const void* block() const { return block_; }
  size_t blockSize() const { return block_size_; }

 private:
  static FrameBufferPages& self(void* user) { return *static_cast<FrameBufferPages*>(user); }
  static void* doMalloc(size_t size, void* user);
  static void doFree(void* ptr, void* user);
  static void* doCalloc(size_t count, size_t size, void* user);
  static void* doRealloc(void* ptr, size_t size, void* user);
  // The frame buffer, page-aligned and a whole number of pages.
  void* allocateBlock(size_t size);

  nghttp2_mem mem_;
  nghttp2_mem* inner_;
  void* block_ = nullptr;
  size_t block_size_ = 0;
  bool constructing_ = false;
  bool dirty_ = false;
  bool drained_ = true;
};

}  // namespace proxy::http2
