// The nghttp2_mem both HTTP/2 sessions give nghttp2: malloc and friends through this
// thread's BlockCache (proxy/common/block_cache.h), where nghttp2's per-stream blocks
// come back for the next stream.
#pragma once

#include <nghttp2/nghttp2.h>

namespace proxy::http2 {

nghttp2_mem* blockCacheMem();

}  // namespace proxy::http2
