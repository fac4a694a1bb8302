#include "proxy/tls/verified_chains.h"

#include <openssl/asn1.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

namespace proxy::tls {
namespace {

// Unix seconds of an ASN1_TIME; false when it cannot be read.
bool toUnix(const ASN1_TIME* t, int64_t* out) {
  ASN1_TIME* epoch = ASN1_TIME_set(nullptr, 0);
  int days = 0, secs = 0;
  bool ok = epoch != nullptr && t != nullptr && ASN1_TIME_diff(&days, &secs, epoch, t) == 1;
  ASN1_TIME_free(epoch);
  if (ok) *out = int64_t{days} * 86400 + secs;
  return ok;
}

}  // namespace

VerifiedChains::Digest VerifiedChains::digestOf(const STACK_OF(CRYPTO_BUFFER) * chain) {
  SHA256_CTX sha;
  SHA256_Init(&sha);
  for (size_t i = 0; chain != nullptr && i < sk_CRYPTO_BUFFER_num(chain); ++i) {
    const CRYPTO_BUFFER* cert = sk_CRYPTO_BUFFER_value(chain, i);
    // The length first, so that no two different chains hash the same bytes.
    uint64_t len = CRYPTO_BUFFER_len(cert);
    SHA256_Update(&sha, &len, sizeof len);
    SHA256_Update(&sha, CRYPTO_BUFFER_data(cert), CRYPTO_BUFFER_len(cert));
  }
  Digest d{};
  SHA256_Final(d.data(), &sha);
  return d;
}

size_t VerifiedChains::DigestHash::operator()(const Digest& d) const {
  size_t h = 0;
  std::memcpy(&h, d.data(), sizeof h);  // already a cryptographic digest
  return h;
}

std::shared_ptr<const VerifiedClient> VerifiedChains::find(const Digest& digest,
                                                           std::time_t now) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(digest);
  if (it == entries_.end() || now < it->second.not_before || now > it->second.not_after)
    return nullptr;
  return it->second.client;
}

void VerifiedChains::remember(const Digest& digest, STACK_OF(X509) * built,
                              std::shared_ptr<const VerifiedClient> client) {
  Entry v{std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
          std::move(client)};
  if (built == nullptr || sk_X509_num(built) == 0 || v.client == nullptr) return;
  for (size_t i = 0; i < sk_X509_num(built); ++i) {
    X509* cert = sk_X509_value(built, i);
    int64_t nb = 0, na = 0;
    // A time we cannot read is not remembered: the next handshake verifies in full.
    if (!toUnix(X509_get0_notBefore(cert), &nb) || !toUnix(X509_get0_notAfter(cert), &na)) return;
    v.not_before = std::max(v.not_before, nb);
    v.not_after = std::min(v.not_after, na);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (entries_.size() >= kMaxEntries) entries_.clear();
  entries_[digest] = std::move(v);
}

size_t VerifiedChains::sizeForTest() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

}  // namespace proxy::tls
