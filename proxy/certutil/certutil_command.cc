#include "proxy/certutil/certutil_command.h"

#include <errno.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "proxy/certutil/cert_builder.h"

namespace proxy::certutil {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kDefaultDays = 1095;  // as elasticsearch-certutil
constexpr int kMaxDays = 36500;
constexpr unsigned kCertMode = 0644;
constexpr unsigned kKeyMode = 0600;
constexpr unsigned kDirMode = 0700;

constexpr const char* kTopUsage =
    "Usage: apm-tls-proxy certutil <command> [options]\n"
    "\n"
    "Creates the certificates apm-tls-proxy and APM agents need, as PEM files.\n"
    "\n"
    "Commands:\n"
    "  ca      create a certificate authority: DIR/ca.crt and DIR/ca.key\n"
    "  cert    create a server (or --client) certificate signed by a CA:\n"
    "          DIR/NAME/NAME.crt and DIR/NAME/NAME.key\n"
    "\n"
    "Run 'apm-tls-proxy certutil <command> --help' for the options of a command.\n";

constexpr const char* kCaUsage =
    "Usage: apm-tls-proxy certutil ca --out DIR [options]\n"
    "\n"
    "Creates a self-signed certificate authority: DIR/ca.crt (mode 0644) and DIR/ca.key\n"
    "(mode 0600). DIR is created (mode 0700) if missing. Existing files are never\n"
    "overwritten.\n"
    "\n"
    "Options:\n"
    "  --out DIR            directory to write to (required)\n"
    "  --ca-dn DN           subject, e.g. \"CN=My CA,O=Example\" (default: CN=apm-tls-proxy CA);\n"
    "                       --dn is accepted too\n"
    "  --days N             validity in days (default: 1095)\n"
    "  --key-type TYPE      ecdsa (P-256, default), ecdsa-p384, rsa, rsa2048, rsa3072, rsa4096\n"
    "  --key-size BITS      with --key-type rsa: 2048 (default), 3072 or 4096;\n"
    "                       with ecdsa: 256 (default) or 384\n"
    "  --pass PASSPHRASE    encrypt the key (PKCS#8, AES-256-CBC); visible in `ps`, prefer:\n"
    "  --pass-file FILE     read the passphrase from the first line of FILE\n"
    "  -h, --help           show this help\n";

constexpr const char* kCertUsage =
    "Usage: apm-tls-proxy certutil cert --ca-cert FILE --ca-key FILE --name NAME --out DIR\n"
    "                                   [options]\n"
    "\n"
    "Creates a certificate signed by the CA: DIR/NAME/NAME.crt (mode 0644) and\n"
    "DIR/NAME/NAME.key (mode 0600). Directories are created (mode 0700) if missing.\n"
    "Existing files are never overwritten.\n"
    "\n"
    "A server certificate (the default) always carries subject alternative names: those\n"
    "given with --dns/--ip, or else NAME itself (as an IP address if it is one), plus\n"
    "127.0.0.1 and ::1 when NAME is localhost. Its extended key usage is serverAuth.\n"
    "\n"
    "Options:\n"
    "  --ca-cert FILE       the CA certificate (PEM; required)\n"
    "  --ca-key FILE        the CA private key (PEM; required)\n"
    "  --ca-pass PASSPHRASE passphrase of an encrypted CA key (or --ca-pass-file FILE)\n"
    "  --name NAME          file and directory name; default subject CN (required)\n"
    "  --out DIR            directory to write NAME/ into (required)\n"
    "  --dns NAMES          DNS names, comma-separated or repeated (*.example.com allowed)\n"
    "  --ip ADDRESSES       IPv4/IPv6 addresses, comma-separated or repeated\n"
    "  --uri URIS           URI names, e.g. spiffe://cluster.local/ns/apm/sa/agent\n"
    "  --dn DN              subject (default: CN=NAME)\n"
    "  --client             a client certificate for mutual TLS (extended key usage\n"
    "                       clientAuth, no default SANs) instead of a server certificate\n"
    "  --days N             validity in days (default: 1095)\n"
    "  --key-type TYPE      ecdsa (P-256, default), ecdsa-p384, rsa, rsa2048, rsa3072, rsa4096\n"
    "  --key-size BITS      with --key-type rsa: 2048 (default), 3072 or 4096;\n"
    "                       with ecdsa: 256 (default) or 384\n"
    "  --pass PASSPHRASE    encrypt the key (PKCS#8, AES-256-CBC); visible in `ps`, prefer:\n"
    "  --pass-file FILE     read the passphrase from the first line of FILE\n"
    "  -h, --help           show this help\n";

struct Options {
  std::map<std::string, std::string> single;  // --opt value, last one wins
  std::vector<std::string> dns, ips, uris;
  bool client = false;
  bool help = false;
};

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

// Accepts "--opt value" and "--opt=value". `allowed` lists the value options of the
// command; with `lists`, --dns/--ip/--uri are lists and --client a flag. Every failure is
// a usage error.
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

// --pass or --pass-file (first line, without its newline). Both is a usage error.
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

// mkdir -p, with kDirMode for the directories it creates; existing ones are left alone.
Status makeDirs(const std::string& path) {
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (partial.empty()) continue;
    struct stat st {};
    if (::stat(partial.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return Status::error(partial + " exists and is not a directory");
      continue;
    }
    if (::mkdir(partial.c_str(), kDirMode) != 0 && errno != EEXIST) {
      return Status::error("cannot create directory " + partial + ": " + std::strerror(errno));
    }
    // mkdir applies the umask; the directory will hold a private key, so set it exactly.
    if (::chmod(partial.c_str(), kDirMode) != 0) {
      return Status::error("cannot set the mode of " + partial + ": " + std::strerror(errno));
    }
  }
  return Status::ok();
}

bool pathExists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string joinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string nameToText(const X509_NAME* name) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string timeToText(const ASN1_TIME* t) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(bio.get(), t);
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

struct Target {
  std::string path;
  std::string contents;
  unsigned mode;
};

// Says which of `paths` exist, if any; true when at least one does.
bool reportExisting(const std::vector<std::string>& paths, std::ostream& err) {
  std::vector<std::string> existing;
  for (const std::string& p : paths) {
    if (pathExists(p)) existing.push_back(p);
  }
  for (const std::string& p : existing) {
    err << "certutil: " << p << " already exists; refusing to overwrite it\n";
  }
  if (!existing.empty()) {
    err << "certutil: nothing was written. Remove the file" << (existing.size() > 1 ? "s" : "")
        << " or choose another --out directory or --name.\n";
  }
  return !existing.empty();
}

// Refuses if any target exists (checking them all first, so nothing is half-written),
// creates `dir`, then writes each file. If a later write fails, the earlier ones are
// removed again.
int writeAll(const std::string& dir, const std::vector<Target>& targets, std::ostream& err) {
  std::vector<std::string> paths;
  for (const Target& t : targets) paths.push_back(t.path);
  if (reportExisting(paths, err)) return kExitFailed;
  if (Status s = makeDirs(dir); !s) {
    err << "certutil: " << s.message() << "\n";
    return kExitFailed;
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    if (Status s = writeNewFile(targets[i].path, targets[i].contents, targets[i].mode); !s) {
      err << "certutil: " << s.message() << "\n";
      for (size_t j = 0; j < i; ++j) ::unlink(targets[j].path.c_str());
      return kExitFailed;
    }
  }
  return kExitOk;
}

// Writes a certificate (0644) and its key (0600, encrypted when `pass` is set) as a pair.
int writePair(const std::string& dir, const Issued& issued, const std::string& pass,
              const std::string& cert_path, const std::string& key_path, std::ostream& err) {
  auto key_pem = keyToPem(issued.key.get(), pass);
  if (!key_pem) {
    err << "certutil: " << key_pem.status().message() << "\n";
    return kExitFailed;
  }
  return writeAll(
      dir,
      {{cert_path, certToPem(issued.cert.get()), kCertMode}, {key_path, key_pem.value(), kKeyMode}},
      err);
}

void describeValidity(const X509* cert, int days, std::ostream& out) {
  out << "  Valid:     " << timeToText(X509_get0_notBefore(cert)) << " to "
      << timeToText(X509_get0_notAfter(cert)) << " (" << days << " days)\n";
}

std::string keyProtection(const std::string& pass) {
  return pass.empty() ? "unencrypted PKCS#8" : "PKCS#8 encrypted with AES-256-CBC";
}

int usageError(const std::string& message, const char* command, std::ostream& err) {
  err << "certutil: " << message << "\n"
      << "Run 'apm-tls-proxy certutil" << (command[0] != '\0' ? " " : "") << command
      << " --help' for usage.\n";
  return kExitUsage;
}

int runCa(int argc, char** argv, std::ostream& out, std::ostream& err) {
  auto parsed = parseOptions(
      argc, argv, 2,
      {"--out", "--ca-dn", "--dn", "--days", "--key-type", "--key-size", "--pass", "--pass-file"},
      false);
  if (!parsed) return usageError(parsed.status().message(), "ca", err);
  const Options& o = parsed.value();
  if (o.help) {
    out << kCaUsage;
    return kExitOk;
  }
  if (!has(o, "--out") || optionOr(o, "--out", "").empty()) {
    return usageError("--out DIR is required", "ca", err);
  }
  if (has(o, "--ca-dn") && has(o, "--dn")) {
    return usageError("give --ca-dn or --dn, not both", "ca", err);
  }
  auto key_type = parseKeyType(o);
  if (!key_type) return usageError(key_type.status().message(), "ca", err);
  auto days = parseDays(o);
  if (!days) return usageError(days.status().message(), "ca", err);
  bool pass_usage = false;
  auto pass = passphrase(o, "--pass", &pass_usage);
  if (!pass) {
    if (pass_usage) return usageError(pass.status().message(), "ca", err);
    err << "certutil: " << pass.status().message() << "\n";
    return kExitFailed;
  }

  CertSpec spec;
  spec.subject = optionOr(o, "--ca-dn", optionOr(o, "--dn", "CN=apm-tls-proxy CA"));
  spec.is_ca = true;
  spec.not_after_offset = static_cast<int64_t>(days.value()) * 86400;
  std::string dir = optionOr(o, "--out", "");
  std::string cert_path = joinPath(dir, "ca.crt");
  std::string key_path = joinPath(dir, "ca.key");
  // Check before spending time on key generation (RSA 4096 takes a while); writeAll checks
  // again right before writing.
  if (reportExisting({cert_path, key_path}, err)) return kExitFailed;

  auto ca = selfSigned(spec, key_type.value());
  if (!ca) {
    bool bad_dn = ca.status().message().find("distinguished name") != std::string::npos;
    if (bad_dn) return usageError(ca.status().message(), "ca", err);
    err << "certutil: cannot create the CA: " << ca.status().message() << "\n";
    return kExitFailed;
  }
  int rc = writePair(dir, ca.value(), pass.value(), cert_path, key_path, err);
  if (rc != kExitOk) return rc;

  const X509* cert = ca.value().cert.get();
  out << "Wrote the CA certificate " << cert_path << " (mode 0644)\n"
      << "Wrote the CA private key " << key_path << " (mode 0600, " << keyProtection(pass.value())
      << ")\n"
      << "  Subject:   " << nameToText(X509_get_subject_name(cert)) << "\n"
      << "  Key:       " << describeKey(ca.value().key.get()) << ", signatures SHA-256\n"
      << "  Usage:     CA:TRUE; keyCertSign, cRLSign\n";
  describeValidity(cert, days.value(), out);
  out << "Give " << cert_path << " to APM agents and clients to trust; keep " << key_path
      << " private.\n"
      << "Next: apm-tls-proxy certutil cert --ca-cert " << cert_path << " --ca-key " << key_path
      << (pass.value().empty() ? "" : " --ca-pass-file FILE") << " --name localhost --out " << dir
      << "\n";
  return kExitOk;
}

int runCert(int argc, char** argv, std::ostream& out, std::ostream& err) {
  auto parsed =
      parseOptions(argc, argv, 2,
                   {"--ca-cert", "--ca-key", "--ca-pass", "--ca-pass-file", "--name", "--out",
                    "--dn", "--days", "--key-type", "--key-size", "--pass", "--pass-file"},
                   true);
  if (!parsed) return usageError(parsed.status().message(), "cert", err);
  const Options& o = parsed.value();
  if (o.help) {
    out << kCertUsage;
    return kExitOk;
  }
  std::vector<std::string> missing;
  for (const char* required : {"--ca-cert", "--ca-key", "--name", "--out"}) {
    if (optionOr(o, required, "").empty()) missing.emplace_back(required);
  }
  if (!missing.empty()) {
    return usageError(
        "missing required option" + std::string(missing.size() > 1 ? "s " : " ") + joined(missing),
        "cert", err);
  }
  std::string name = optionOr(o, "--name", "");
  if (name == "." || name == ".." || name.find('/') != std::string::npos) {
    return usageError("--name \"" + name + "\" cannot be used as a file name", "cert", err);
  }
  auto key_type = parseKeyType(o);
  if (!key_type) return usageError(key_type.status().message(), "cert", err);
  auto days = parseDays(o);
  if (!days) return usageError(days.status().message(), "cert", err);

  CertSpec spec;
  spec.subject = optionOr(o, "--dn", "CN=" + name);
  spec.not_after_offset = static_cast<int64_t>(days.value()) * 86400;
  spec.client_auth = o.client;
  spec.server_auth = !o.client;
  spec.dns = o.dns;
  spec.ips = o.ips;
  spec.uris = o.uris;
  std::string sans_note;
  if (!o.client && spec.dns.empty() && spec.ips.empty()) {
    // Hostname verification (RFC 6125 §6.4.4, and every agent's TLS stack) ignores the CN
    // when SANs exist and most ignore it entirely, so a server certificate gets SANs.
    if (isIpAddress(name)) {
      spec.ips.push_back(name);
    } else if (isDnsName(name)) {
      spec.dns.push_back(name);
      if (name == "localhost") spec.ips = {"127.0.0.1", "::1"};
    } else {
      return usageError("--name \"" + name +
                            "\" is neither a DNS name nor an IP address, so it cannot be the "
                            "default SAN; give the server's names with --dns and/or --ip",
                        "cert", err);
    }
    sans_note = " (default from --name; use --dns/--ip to choose)";
  }

  bool pass_usage = false;
  auto pass = passphrase(o, "--pass", &pass_usage);
  if (!pass && pass_usage) return usageError(pass.status().message(), "cert", err);
  auto ca_pass = passphrase(o, "--ca-pass", &pass_usage);
  if (!ca_pass && pass_usage) return usageError(ca_pass.status().message(), "cert", err);
  if (!pass || !ca_pass) {
    err << "certutil: " << (!pass ? pass.status() : ca_pass.status()).message() << "\n";
    return kExitFailed;
  }

  std::string dir = joinPath(optionOr(o, "--out", ""), name);
  std::string cert_path = joinPath(dir, name + ".crt");
  std::string key_path = joinPath(dir, name + ".key");
  if (reportExisting({cert_path, key_path}, err)) return kExitFailed;

  std::string ca_cert_path = optionOr(o, "--ca-cert", "");
  std::string ca_key_path = optionOr(o, "--ca-key", "");
  auto ca_cert_pem = readSmallFile(ca_cert_path, "the CA certificate");
  auto ca_key_pem = readSmallFile(ca_key_path, "the CA key");
  if (!ca_cert_pem || !ca_key_pem) {
    err << "certutil: " << (!ca_cert_pem ? ca_cert_pem.status() : ca_key_pem.status()).message()
        << "\n";
    return kExitFailed;
  }
  auto ca_cert = certFromPem(ca_cert_pem.value());
  if (!ca_cert) {
    err << "certutil: " << ca_cert_path << ": " << ca_cert.status().message() << "\n";
    return kExitFailed;
  }
  if ((X509_get_extension_flags(ca_cert.value().get()) & EXFLAG_CA) == 0) {
    err << "certutil: " << ca_cert_path
        << " is not a CA certificate (no basicConstraints CA:TRUE); use the ca.crt that "
           "'certutil ca' wrote\n";
    return kExitFailed;
  }
  auto ca_key = keyFromPem(ca_key_pem.value(), ca_pass.value());
  if (!ca_key) {
    err << "certutil: " << ca_key_path << ": " << ca_key.status().message();
    if (ca_pass.value().empty()) err << " (give --ca-pass or --ca-pass-file)";
    err << "\n";
    return kExitFailed;
  }

  auto leaf = issue(spec, key_type.value(), ca_cert.value().get(), ca_key.value().get());
  if (!leaf) {
    const std::string& m = leaf.status().message();
    bool bad_input = m.find("invalid") == 0;
    if (bad_input) return usageError(m, "cert", err);
    err << "certutil: cannot create the certificate: " << m << "\n";
    return kExitFailed;
  }
  int rc = writePair(dir, leaf.value(), pass.value(), cert_path, key_path, err);
  if (rc != kExitOk) return rc;

  const X509* cert = leaf.value().cert.get();
  std::vector<std::string> sans;
  for (const std::string& d : spec.dns) sans.push_back("DNS:" + d);
  for (const std::string& ip : spec.ips) sans.push_back("IP:" + ip);
  for (const std::string& u : spec.uris) sans.push_back("URI:" + u);
  out << "Wrote the " << (o.client ? "client" : "server") << " certificate " << cert_path
      << " (mode 0644)\n"
      << "Wrote its private key " << key_path << " (mode 0600, " << keyProtection(pass.value())
      << ")\n"
      << "  Subject:   " << nameToText(X509_get_subject_name(cert)) << "\n"
      << "  Issuer:    " << nameToText(X509_get_issuer_name(cert)) << "\n"
      << "  SANs:      " << (sans.empty() ? "none" : joined(sans)) << sans_note << "\n"
      << "  EKU:       "
      << (o.client ? "clientAuth (TLS client, for mutual TLS)" : "serverAuth (TLS server)") << "\n"
      << "  Key:       " << describeKey(leaf.value().key.get()) << ", signed with SHA-256\n";
  describeValidity(cert, days.value(), out);
  int day_diff = 0;
  int sec_diff = 0;
  if (ASN1_TIME_diff(&day_diff, &sec_diff, X509_get0_notAfter(ca_cert.value().get()),
                     X509_get0_notAfter(cert)) &&
      day_diff > 0) {  // seconds apart is only the time between the two commands
    out << "Warning: the CA expires first ("
        << timeToText(X509_get0_notAfter(ca_cert.value().get()))
        << "); clients will reject this certificate from then on.\n";
  }
  return kExitOk;
}

}  // namespace

int runCertutil(int argc, char** argv, std::ostream& out, std::ostream& err) {
  if (argc < 2) {
    err << kTopUsage;
    return kExitUsage;
  }
  std::string command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") {
    out << kTopUsage;
    return kExitOk;
  }
  if (command == "ca") return runCa(argc, argv, out, err);
  if (command == "cert") return runCert(argc, argv, out, err);
  return usageError("unknown command \"" + command + "\" (use ca or cert)", "", err);
}

int runCertutil(int argc, char** argv) { return runCertutil(argc, argv, std::cout, std::cerr); }

}  // namespace proxy::certutil
