#include "proxy/certutil/certutil_command.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <iostream>
#include <string>
#include <vector>

#include "proxy/certutil/cert_builder.h"
#include "proxy/certutil/certutil_cli.h"
#include "proxy/certutil/output_files.h"

namespace proxy::certutil {
namespace {

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
