// yaml-cpp throws (YAML::ParserException and friends); this file is the boundary where
// that becomes a Status (STYLE.md §4).
#include "proxy/importer/apm_server_yaml.h"

#include <yaml-cpp/yaml.h>

#include <string>
#include <utility>

namespace proxy::importer {

namespace {

std::string position(const YAML::Mark& mark) {
  return std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

// `key` gives the position: an empty value has none of its own (yaml-cpp marks the next
// token), and a block list starts on the line after its key.
YamlValue leafOf(const YAML::Node& key, const YAML::Node& node) {
  YamlValue value;
  YAML::Mark mark = key.Mark();
  value.line = static_cast<uint32_t>(mark.line + 1);
  value.column = static_cast<uint32_t>(mark.column + 1);
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      value.kind = YamlValue::Kind::kScalar;
      value.text = node.Scalar();
      // yaml-cpp tags a quoted scalar "!" and a plain one "?" (YAML 1.2 §6.9.1).
      value.quoted = node.Tag() == "!";
      break;
    case YAML::NodeType::Sequence:
      value.kind = YamlValue::Kind::kList;
      for (const YAML::Node& item : node) {
        if (!item.IsScalar()) {
          value.kind = YamlValue::Kind::kOther;
          value.items.clear();
          break;
        }
        value.items.push_back(item.Scalar());
      }
      break;
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Map:  // only an empty one reaches here: others are walked
      value.kind = YamlValue::Kind::kNull;
      break;
  }
  return value;
}

void walk(const YAML::Node& map, const std::string& prefix, std::vector<YamlSetting>* out) {
  for (const auto& entry : map) {
    std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "?";
    std::string path = prefix.empty() ? key : prefix + "." + key;
    if (entry.second.IsMap() && entry.second.size() > 0) {
      walk(entry.second, path, out);
    } else {
      out->push_back(YamlSetting{path, leafOf(entry.first, entry.second)});
    }
  }
}

}  // namespace

Result<std::vector<YamlSetting>> flattenYaml(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Status::error(position(e.mark) + ": " + e.msg);
  }
  std::vector<YamlSetting> settings;
  if (root.IsNull()) return settings;
  if (!root.IsMap()) {
    return Status::error(position(root.Mark()) +
                         ": the top level is not a mapping of settings (\"apm-server:\" ...)");
  }
  try {
    walk(root, "", &settings);
  } catch (const YAML::Exception& e) {
    return Status::error(position(e.mark) + ": " + e.msg);
  }
  return settings;
}

}  // namespace proxy::importer
