// AccessLog: one JSON line per request ([log] access = "stderr" or a file path).
// Shared by every worker: each line goes out in a single write(2) on an O_APPEND
// descriptor, so lines never interleave. Owned by the Server.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/common/status.h"

namespace proxy::downstream {

class AccessLog {
 public:
  struct Entry {
    std::string_view peer_ip;
    uint16_t peer_port = 0;
    std::string_view tls_version;  // empty for plain HTTP
    std::string_view tls_cipher;
    std::string_view sni;
    std::string_view client_subject;
    std::string_view client_sans;
    std::string_view method;
    std::string_view path;  // the query string is dropped (it may carry secrets)
    int status = 0;
    uint64_t bytes_in = 0;
    uint64_t bytes_out = 0;
    double duration_s = 0;
    double upstream_s = -1;         // < 0: unknown
    std::string_view close_reason;  // empty when the connection stays open
  };

  // `target` is "stderr" or a file path (created 0640, appended to).
  static Result<std::unique_ptr<AccessLog>> open(const std::string& target);
  ~AccessLog();
  void write(const Entry& e);
  // Formats one line (without writing it); used by write() and tests.
  static std::string format(const Entry& e);

 private:
  explicit AccessLog(int fd, bool owned) : fd_(fd), owned_(owned) {}
  int fd_;
  bool owned_;
};

}  // namespace proxy::downstream
