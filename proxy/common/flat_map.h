// FlatMap: the streams of one HTTP/2 connection by id, in one vector sorted by id. A
// node-based map allocates and frees a node per stream: with three of them, six of a gRPC
// call's 35 allocations (issue 12). New streams take ever higher ids (RFC 9113 §5.1.1), so
// an insert is an append; a lookup is a binary search, an erase a move of the entries
// after it (a few hundred bytes for a connection's hundred streams). The vector's room
// stays for the next streams; releaseIfEmpty() gives it back on an idle connection.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace proxy {

template <typename K, typename V>
class FlatMap {
 public:
  using value_type = std::pair<K, V>;
  using iterator = typename std::vector<value_type>::iterator;
  using const_iterator = typename std::vector<value_type>::const_iterator;

  iterator begin() { return items_.begin(); }
  iterator end() { return items_.end(); }
  const_iterator begin() const { return items_.begin(); }
  const_iterator end() const { return items_.end(); }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  size_t capacity() const { return items_.capacity(); }

  // The last entry found is tried first: a stream's frames and fields come one after
  // another, each asking for the same id.
  iterator find(const K& key) { return items_.begin() + static_cast<ptrdiff_t>(indexOf(key)); }
  const_iterator find(const K& key) const {
    return items_.begin() + static_cast<ptrdiff_t>(indexOf(key));
  }

  // The value for `key`, made (value-initialized) if there is none.
  V& operator[](const K& key) {
    iterator it = lowerBound(key);
    if (it == items_.end() || it->first != key) it = items_.emplace(it, key, V());
    return it->second;
  }

  // Adds `value` for `key` unless `key` is there; false (and `value` untouched) if it is.
  bool emplace(const K& key, V&& value) {
    iterator it = lowerBound(key);
    if (it != items_.end() && it->first == key) return false;
    items_.emplace(it, key, std::move(value));
    return true;
  }

  // Removes the entry at `it`, keeping the order; returns the iterator to the next entry.
  // Iterators at or after `it` are invalid afterwards, as for a vector.
  iterator erase(iterator it) { return items_.erase(it); }
  size_t erase(const K& key) {
    iterator it = find(key);
    if (it == items_.end()) return 0;
    items_.erase(it);
    return 1;
  }

  void clear() { items_.clear(); }
  // Frees the vector's room when no entry is left (an idle connection's memory).
  void releaseIfEmpty() {
    if (items_.empty()) std::vector<value_type>().swap(items_);
  }

 private:
  static bool less(const value_type& item, const K& key) { return item.first < key; }
  // The index of `key`'s entry, or size() when there is none.
  size_t indexOf(const K& key) const {
    size_t n = items_.size();
    if (hint_ < n && items_[hint_].first == key) return hint_;
    if (n == 0 || items_.back().first < key) return n;
    auto it = std::lower_bound(items_.begin(), items_.end(), key, less);
    if (it == items_.end() || it->first != key) return n;
    hint_ = static_cast<size_t>(it - items_.begin());
    return hint_;
  }
  // Where `key` is or would go; the end at once for a new highest key (the usual insert).
  iterator lowerBound(const K& key) {
    if (items_.empty() || items_.back().first < key) return items_.end();
    return std::lower_bound(items_.begin(), items_.end(), key, less);
  }

  std::vector<value_type> items_;
  mutable size_t hint_ = 0;  // where the last find() found its key (checked before use)
};

}  // namespace proxy
