// FrameBufferPages: the allocator (nghttp2_mem) a ServerSession hands nghttp2. It puts the
// two blocks nghttp2 keeps for a session's life and uses only while busy, the outbound
// frame buffer and the stream map's table, on pages of their own, which a quiet session
// gives back to the kernel (issue 12: memory per idle HTTP/2 connection). Every other
// allocation goes to the inner allocator unchanged. Pure code over libc; loop thread only.
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
    if (produced) {
      dirty_ = true;
      map_dirty_ = true;  // a frame sent may have closed a stream
    }
    drained_ = !produced;
  }
  // After each nghttp2_session_mem_recv: streams may have come and gone.
  void afterReceive() { map_dirty_ = true; }
  // True when release() may give pages back: the frame buffer was written since the last
  // release and nghttp2's last send returned nothing (it holds no frame bytes there), or
  // the session ran since the last look at the stream map.
  bool releasable() const {
    return (block_ != nullptr && dirty_ && drained_) || (map_block_ != nullptr && map_dirty_);
  }
  // Gives those pages back to the kernel (madvise MADV_DONTNEED: they read as zeros next
  // time): the frame buffer's when releasable, the stream map's when it is all zeros.
  void release();

  // The page-aligned blocks and their sizes (null when there is none).
  const void* blockForTest() const { return block_; }
  size_t blockSizeForTest() const { return block_size_; }
  const void* mapBlockForTest() const { return map_block_; }
  size_t mapBlockSizeForTest() const { return map_block_size_; }

 private:
  static FrameBufferPages& self(void* user) { return *static_cast<FrameBufferPages*>(user); }
  static void* doMalloc(size_t size, void* user);
  static void doFree(void* ptr, void* user);
  static void* doCalloc(size_t count, size_t size, void* user);
  static void* doRealloc(void* ptr, size_t size, void* user);
  // Page-aligned memory of whole pages (`size` rounded up to them); null when out of it.
  static void* allocatePages(size_t size, size_t* rounded);
  // realloc of a paged block (`block`, `block_size`: which one): it becomes an ordinary
  // allocation of `size` bytes from the inner allocator (none when 0), or stays where it
  // is and nullptr is returned when that fails.
  void* unpage(void*& block, size_t& block_size, size_t size);

  nghttp2_mem mem_;
  nghttp2_mem* inner_;
  void* block_ = nullptr;
  size_t block_size_ = 0;
  void* map_block_ = nullptr;
  size_t map_block_size_ = 0;
  bool constructing_ = false;
  bool dirty_ = false;
  bool drained_ = true;
  bool map_dirty_ = false;
};

}  // namespace proxy::http2
