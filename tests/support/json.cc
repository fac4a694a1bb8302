#include "tests/support/json.h"

#include <nlohmann/json.hpp>

namespace proxy::testsupport {
namespace {

using Json = nlohmann::ordered_json;

JsonValue convert(const Json& j) {
  JsonValue v;
  switch (j.type()) {
    case Json::value_t::boolean:
      v.type = JsonValue::Type::kBool;
      v.boolean = j.get<bool>();
      break;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      v.type = JsonValue::Type::kNumber;
      v.number = j.get<double>();
      break;
    case Json::value_t::string:
      v.type = JsonValue::Type::kString;
      v.string = j.get<std::string>();
      break;
    case Json::value_t::array:
      v.type = JsonValue::Type::kArray;
      for (const Json& item : j) v.array.push_back(convert(item));
      break;
    case Json::value_t::object:
      v.type = JsonValue::Type::kObject;
      for (const auto& [key, member] : j.items()) v.object.emplace_back(key, convert(member));
      break;
    default:
      break;
  }
  return v;
}

}  // namespace

bool JsonValue::has(const std::string& key) const {
  for (const auto& [k, v] : object) {
    if (k == key) return true;
  }
  return false;
}

const JsonValue& JsonValue::get(const std::string& key) const {
  static const JsonValue kNull;
  for (const auto& [k, v] : object) {
    if (k == key) return v;
  }
  return kNull;
}

bool operator==(const JsonValue& a, const JsonValue& b) {
  return a.type == b.type && a.boolean == b.boolean && a.number == b.number &&
         a.string == b.string && a.array == b.array && a.object == b.object;
}

std::optional<JsonValue> parseJson(std::string_view text) {
  // allow_exceptions = false: invalid text yields a "discarded" value, not a throw.
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return convert(j);
}

std::string latin1Bytes(const std::string& utf8) {
  std::string out;
  for (size_t i = 0; i < utf8.size(); ++i) {
    auto c = static_cast<unsigned char>(utf8[i]);
    // U+0080..U+00FF is C2 80..C3 BF in UTF-8.
    if ((c == 0xc2 || c == 0xc3) && i + 1 < utf8.size()) {
      auto next = static_cast<unsigned char>(utf8[i + 1]);
      out += static_cast<char>(((c & 0x03) << 6) | (next & 0x3f));
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace proxy::testsupport
