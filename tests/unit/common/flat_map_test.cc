// FlatMap (proxy/common/flat_map.h): the sorted vector the HTTP/2 codecs keep their streams
// in: lookups, inserts in and out of id order, order-keeping erase, and the room given back.
#include "proxy/common/flat_map.h"

#include <catch2/catch.hpp>
#include <memory>
#include <vector>

namespace proxy {
namespace {

std::vector<int> keys(const FlatMap<int, std::unique_ptr<int>>& map) {
  std::vector<int> out;
  for (const auto& entry : map) out.push_back(entry.first);
  return out;
}

TEST_CASE("FlatMap finds, inserts in key order and refuses a key twice", "[unit][common]") {
  FlatMap<int, std::unique_ptr<int>> map;
  CHECK(map.find(1) == map.end());
  for (int id : {1, 3, 7, 5, 9}) CHECK(map.emplace(id, std::make_unique<int>(id * 10)));
  CHECK(keys(map) == std::vector<int>{1, 3, 5, 7, 9});  // 5 went before 7
  auto again = std::make_unique<int>(0);
  CHECK_FALSE(map.emplace(3, std::move(again)));
  CHECK(again != nullptr);  // untouched when refused
  REQUIRE(map.find(3) != map.end());
  CHECK(*map.find(3)->second == 30);
  CHECK(map.find(4) == map.end());
  CHECK(map.find(10) == map.end());
  CHECK(map.find(0) == map.end());
  const auto& constant = map;
  CHECK(constant.find(9) != constant.end());
  CHECK(constant.find(8) == constant.end());

  // operator[] makes an empty value for a new key, anywhere in the order.
  CHECK(map[11] == nullptr);
  CHECK(map[4] == nullptr);
  map[4] = std::make_unique<int>(40);
  CHECK(*map[4] == 40);
  CHECK(keys(map) == std::vector<int>{1, 3, 4, 5, 7, 9, 11});
}

TEST_CASE("FlatMap erases keeping the order, and gives its room back only when empty",
          "[unit][common]") {
  FlatMap<int, std::unique_ptr<int>> map;
  for (int id = 1; id <= 99; id += 2) map.emplace(id, std::make_unique<int>(id));
  CHECK(map.erase(51) == 1);
  CHECK(map.erase(51) == 0);
  CHECK(map.find(51) == map.end());
  CHECK(map.find(53)->first == 53);
  // Erasing while walking, as a caller that drops some streams does.
  for (auto it = map.begin(); it != map.end();) {
    it = it->first % 3 == 0 ? map.erase(it) : it + 1;
  }
  std::vector<int> left = keys(map);
  CHECK(left.size() == 33);  // 49 odd ids left, 16 of them multiples of 3
  for (size_t i = 1; i < left.size(); ++i) CHECK(left[i - 1] < left[i]);
  for (int id : left) CHECK(*map.find(id)->second == id);

  map.releaseIfEmpty();  // entries left: the room stays
  CHECK(map.capacity() >= 32);
  map.clear();
  CHECK(map.empty());
  CHECK(map.capacity() >= 32);
  map.releaseIfEmpty();
  CHECK(map.capacity() == 0);
}

}  // namespace
}  // namespace proxy
