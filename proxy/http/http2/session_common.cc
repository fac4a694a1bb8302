#include "proxy/http/http2/session_common.h"

#include <algorithm>
#include <cstring>

#include "proxy/common/stats.h"

namespace proxy::http2 {
namespace {

// Short cookies are cheap to guess one byte at a time through HPACK's indexing (CRIME-like
// attacks, RFC 7541 §7.1.3); nghttp2 and Chrome use the same 20-byte threshold.
constexpr size_t kShortCookie = 20;

bool neverIndex(std::string_view name, std::string_view value) {
  return name == "authorization" || name == "proxy-authorization" ||
         (name == "cookie" && value.size() < kShortCookie);
}

// Past this many taken bytes at the front of a body buffer, the rest moves down.
constexpr size_t kCompactAt = 64 * 1024;
// An emptied body buffer keeps up to this much capacity for the next chunk.
constexpr size_t kKeepCapacity = 64 * 1024;

void putBigEndian(std::string& out, uint32_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint8_t* bytes(std::string_view s) {
  // nghttp2_nv has non-const pointers, but nghttp2 only reads them (it copies on submit).
  return reinterpret_cast<uint8_t*>(const_cast<char*>(s.data()));
}

}  // namespace

OptionPtr newOption() {
  nghttp2_option* o = nullptr;
  if (nghttp2_option_new(&o) != 0) return nullptr;
  return OptionPtr(o);
}

CallbacksPtr newCallbacks() {
  nghttp2_session_callbacks* c = nullptr;
  if (nghttp2_session_callbacks_new(&c) != 0) return nullptr;
  return CallbacksPtr(c);
}

bool isLowerCase(std::string_view name) {
  return std::none_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

std::string toLowerCase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

void NvList::reserve(size_t n) {
  if (n <= kInline) return;
  heap_.reserve(n);
  if (!spilled_) {
    heap_.assign(inline_.begin(), inline_.begin() + static_cast<std::ptrdiff_t>(size_));
    spilled_ = true;
  }
}

void NvList::add(std::string_view name, std::string_view value) {
  if (!isLowerCase(name)) {
    lowered_.push_front(toLowerCase(name));
    name = lowered_.front();
  }
  nghttp2_nv nv{};
  nv.name = bytes(name);
  nv.namelen = name.size();
  nv.value = bytes(value);
  nv.valuelen = value.size();
  nv.flags = neverIndex(name, value) ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE;
  if (size_ == kInline) reserve(kInline * 2);
  if (spilled_) {
    heap_.push_back(nv);
  } else {
    inline_[size_] = nv;
  }
  ++size_;
}

void NvList::addAll(const HeaderFields& fields) {
  reserve(size_ + fields.size());
  for (const HeaderField& f : fields) add(f.name, f.value);
}

uint64_t NvList::listSize() const {
  uint64_t size = 0;
  const nghttp2_nv* nva = data();
  for (size_t i = 0; i < size_; ++i) size += nva[i].namelen + nva[i].valuelen + kFieldOverhead;
  return size;
}

size_t BodyBuffer::take(uint8_t* out, size_t max) {
  size_t n = std::min(max, size());
  std::memcpy(out, buf_.data() + pos_, n);
  pos_ += n;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
    if (buf_.capacity() > kKeepCapacity) buf_.shrink_to_fit();
  } else if (pos_ >= kCompactAt && pos_ * 2 >= buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return n;
}

void BodyBuffer::release() {
  std::string().swap(buf_);
  pos_ = 0;
}

std::string goawayFrame(int32_t last_stream_id, uint32_t error_code) {
  std::string f;
  putBigEndian(f, 8, 3);  // payload length
  f.push_back(static_cast<char>(NGHTTP2_GOAWAY));
  f.push_back(0);         // flags
  putBigEndian(f, 0, 4);  // stream 0
  putBigEndian(f, static_cast<uint32_t>(last_stream_id) & 0x7fffffffu, 4);
  putBigEndian(f, error_code, 4);
  return f;
}

const char* errorCodeName(uint32_t error_code) {
  return kHttp2ErrorCodeNames[errorCodeIndex(error_code)];
}

size_t errorCodeIndex(uint32_t error_code) {
  return error_code < kErrorCodeCount ? error_code : kErrorCodeCount;
}

uint64_t ErrorCodeCounts::total() const {
  uint64_t sum = 0;
  for (uint64_t n : by_code) sum += n;
  return sum;
}

}  // namespace proxy::http2
