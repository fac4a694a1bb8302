#include "proxy/certutil/certutil_cli.h"

#include <errno.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace proxy::certutil {

namespace {

constexpr int kDefaultDays = 1095;  // as elasticsearch-certutil
constexpr int kMaxDays = 36500;

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t b = item.find_first_not_of(" \t");
    size_t e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}
}  // namespace

Result<Options> parseOptions(int argc, char** argv, int first,
                             const std::vector<std::string>& allowed, bool lists) {
  Options opts;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      opts.help = true;
      continue;
    }
    if (lists && arg == "--client") {
      opts.client = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      return Status::error("unexpected argument \"" + arg + "\"");
    }
    std::string name = arg;
    std::string value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    bool is_list = lists && (name == "--dns" || name == "--ip" || name == "--uri");
    bool known = is_list;
    for (const std::string& a : allowed) known = known || a == name;
    if (!known) {
      return Status::error("unknown option " + name);
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        return Status::error(name + " needs a value");
      }
      value = argv[++i];
    }
    if (is_list) {
      auto& list = name == "--dns" ? opts.dns : name == "--ip" ? opts.ips : opts.uris;
      for (std::string& item : splitList(value)) list.push_back(std::move(item));
    } else {
      opts.single[name] = value;
    }
  }
  return opts;
}

std::string optionOr(const Options& o, const std::string& name, const std::string& dflt) {
  auto it = o.single.find(name);
  return it == o.single.end() ? dflt : it->second;
}

bool has(const Options& o, const std::string& name) { return o.single.count(name) != 0; }

Result<KeyType> parseKeyType(const Options& o) {
  std::string type = optionOr(o, "--key-type", "");
  std::string size = optionOr(o, "--key-size", "");
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::map<std::string, KeyType> kFixed = {
      {"rsa2048", KeyType::kRsa2048},      {"rsa3072", KeyType::kRsa3072},
      {"rsa4096", KeyType::kRsa4096},      {"ecdsa-p256", KeyType::kEcdsaP256},
      {"ecdsa-p384", KeyType::kEcdsaP384}, {"p256", KeyType::kEcdsaP256},
      {"p384", KeyType::kEcdsaP384},       {"p-256", KeyType::kEcdsaP256},
      {"p-384", KeyType::kEcdsaP384}};
  if (auto it = kFixed.find(type); it != kFixed.end()) {
    if (!size.empty()) {
      return Status::error("--key-size cannot be combined with --key-type " + type);
    }
    return it->second;
  }
  bool rsa = type == "rsa";
  bool ecdsa = type == "ecdsa" || type == "ec";
  if (!type.empty() && !rsa && !ecdsa) {
    return Status::error("unknown --key-type \"" + type +
                         "\" (use ecdsa, ecdsa-p384, rsa, rsa2048, rsa3072 or rsa4096)");
  }
  if (size.empty()) return rsa ? KeyType::kRsa2048 : KeyType::kEcdsaP256;
  if (!ecdsa) {  // rsa, or a size alone
    if (size == "2048") return KeyType::kRsa2048;
    if (size == "3072") return KeyType::kRsa3072;
    if (size == "4096") return KeyType::kRsa4096;
  }
  if (!rsa) {
    if (size == "256") return KeyType::kEcdsaP256;
    if (size == "384") return KeyType::kEcdsaP384;
  }
  return Status::error("unsupported --key-size " + size +
                       (rsa     ? " for RSA (use 2048, 3072 or 4096)"
                        : ecdsa ? " for ECDSA (use 256 or 384)"
                                : " (use 2048, 3072 or 4096 for RSA, 256 or 384 for ECDSA)"));
}

Result<int> parseDays(const Options& o) {
  std::string text = optionOr(o, "--days", std::to_string(kDefaultDays));
  char* end = nullptr;
  errno = 0;
  long days = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || days < 1 || days > kMaxDays) {
    return Status::error("--days must be a whole number from 1 to " + std::to_string(kMaxDays) +
                         ", not \"" + text + "\"");
  }
  return static_cast<int>(days);
}

Result<std::string> readSmallFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::error(std::string("cannot read ") + what + " " + path + ": " +
                         std::strerror(errno));
  }
  std::ostringstream data;
  data << in.rdbuf();
  return data.str();
}
Result<std::string> passphrase(const Options& o, const std::string& flag, bool* usage_error) {
  bool inline_pass = has(o, flag);
  bool file_pass = has(o, flag + "-file");
  if (inline_pass && file_pass) {
    *usage_error = true;
    return Status::error("give " + flag + " or " + flag + "-file, not both");
  }
  if (inline_pass) {
    std::string p = optionOr(o, flag, "");
    if (p.empty()) {
      *usage_error = true;
      return Status::error(flag + " must not be empty");
    }
    return p;
  }
  if (!file_pass) return std::string();
  auto data = readSmallFile(optionOr(o, flag + "-file", ""), "passphrase file");
  if (!data) return data.status();
  std::string line = data.value().substr(0, data.value().find('\n'));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty())
    return Status::error("the passphrase file " + optionOr(o, flag + "-file", "") + " is empty");
  return line;
}

bool isIpAddress(const std::string& text) {
  ASN1_OCTET_STRING* octets = a2i_IPADDRESS(text.c_str());
  if (octets == nullptr) return false;
  ASN1_OCTET_STRING_free(octets);
  return true;
}

bool isDnsName(const std::string& text) {
  if (text.empty() || text.size() > 253) return false;
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '*' || c == '_';
    if (!ok) return false;
  }
  return true;
}
}  // namespace proxy::certutil
