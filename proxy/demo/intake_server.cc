#include "proxy/demo/intake_server.h"

#include <csignal>
#include <cstdlib>
#include <cstring>

#include "proxy/demo/intake_connection.h"

namespace proxy::demo {
namespace {

constexpr size_t kReadBufferBytes = 64 * 1024;

// "127.0.0.1:8201" or "[::1]:8201" into a socket address.
bool parseListen(const std::string& text, sockaddr_storage* out) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = text.substr(0, colon);
  char* end = nullptr;
  long port = std::strtol(text.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || end == text.c_str() + colon + 1 || port < 0 || port > 65535) return false;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return uv_ip6_addr(host.substr(1, host.size() - 2).c_str(), static_cast<int>(port),
                       reinterpret_cast<sockaddr_in6*>(out)) == 0;
  }
  if (host.empty()) host = "0.0.0.0";
  return uv_ip4_addr(host.c_str(), static_cast<int>(port), reinterpret_cast<sockaddr_in*>(out)) ==
         0;
}

}  // namespace

IntakeServer::IntakeServer(Options options)
    : options_(std::move(options)), read_buffer_(new char[kReadBufferBytes]) {}

IntakeServer::~IntakeServer() {
  if (record_ != nullptr) std::fclose(record_);
}

uv_buf_t IntakeServer::readBuffer() {
  return uv_buf_init(read_buffer_.get(), static_cast<unsigned>(kReadBufferBytes));
}

int IntakeServer::run() {
  sockaddr_storage addr{};
  if (!parseListen(options_.listen, &addr)) {
    std::fprintf(stderr, "apm-intake-demo: bad --listen address \"%s\"\n", options_.listen.c_str());
    return 2;
  }
  if (!options_.record_file.empty()) {
    record_ = std::fopen(options_.record_file.c_str(), "a");
    if (record_ == nullptr) {
      std::fprintf(stderr, "apm-intake-demo: cannot open %s: %s\n", options_.record_file.c_str(),
                   std::strerror(errno));
      return 1;
    }
  }
  // A client that resets while we write must cost an EPIPE, not the process.
  std::signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&loop_);
  uv_tcp_init(&loop_, &listener_);
  listener_.data = this;
  uv_signal_init(&loop_, &sigterm_);
  uv_signal_init(&loop_, &sigint_);
  sigterm_.data = this;
  sigint_.data = this;
  uv_signal_start(&sigterm_, uvOnSignal, SIGTERM);
  uv_signal_start(&sigint_, uvOnSignal, SIGINT);

  int rc = uv_tcp_bind(&listener_, reinterpret_cast<sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 511, uvOnConnection);
  char host[64] = "?";
  int port = 0;
  if (rc == 0) {
    sockaddr_storage bound{};
    int len = sizeof bound;
    rc = uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
    if (bound.ss_family == AF_INET6) {
      auto* a6 = reinterpret_cast<sockaddr_in6*>(&bound);
      uv_ip6_name(a6, host + 1, sizeof host - 2);
      std::strcat(host, "]");
      host[0] = '[';
      port = ntohs(a6->sin6_port);
    } else {
      auto* a4 = reinterpret_cast<sockaddr_in*>(&bound);
      uv_ip4_name(a4, host, sizeof host);
      port = ntohs(a4->sin_port);
    }
  }
  int exit_code = 0;
  if (rc != 0) {
    std::fprintf(stderr, "apm-intake-demo: cannot listen on %s: %s\n", options_.listen.c_str(),
                 uv_strerror(rc));
    exit_code = 1;
    shutdown();
  } else {
    std::string address = std::string(host) + ":" + std::to_string(port);
    if (!options_.quiet) std::fprintf(stderr, "apm-intake-demo listening on %s\n", address.c_str());
    if (!writeReadyFile(address)) {
      exit_code = 1;
      shutdown();
    }
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop_) != 0) {
    std::fprintf(stderr, "apm-intake-demo: handles still open at exit\n");
    return 1;
  }
  return exit_code;
}

bool IntakeServer::writeReadyFile(const std::string& address) {
  if (options_.ready_file.empty()) return true;
  // Write a temporary file and rename it, so a reader never sees half a line.
  std::string tmp = options_.ready_file + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "apm-intake-demo: cannot write %s: %s\n", tmp.c_str(),
                 std::strerror(errno));
    return false;
  }
  std::fprintf(f, "listen=%s\n", address.c_str());
  bool ok = std::fclose(f) == 0 && std::rename(tmp.c_str(), options_.ready_file.c_str()) == 0;
  if (!ok) std::fprintf(stderr, "apm-intake-demo: cannot write %s\n", options_.ready_file.c_str());
  return ok;
}

void IntakeServer::record(const std::string& json_line) {
  if (record_ == nullptr) return;
  // One fwrite and a flush per line: tests read the file while we run.
  std::string line = json_line + "\n";
  std::fwrite(line.data(), 1, line.size(), record_);
  std::fflush(record_);
}

void IntakeServer::erase(IntakeConnection* connection) { connections_.erase(connection); }

void IntakeServer::uvOnConnection(uv_stream_t* server, int status) {
  static_cast<IntakeServer*>(server->data)->onConnection(status);
}

void IntakeServer::onConnection(int status) {
  if (status < 0 || stopping_) return;
  auto connection = std::make_unique<IntakeConnection>(*this, next_id_++);
  IntakeConnection* raw = connection.get();
  connections_.emplace(raw, std::move(connection));
  raw->accept(reinterpret_cast<uv_stream_t*>(&listener_));
}

void IntakeServer::uvOnSignal(uv_signal_t* handle, int) {
  static_cast<IntakeServer*>(handle->data)->shutdown();
}

void IntakeServer::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
  // close() never frees; connections erase themselves from their close callbacks.
  std::vector<IntakeConnection*> open;
  open.reserve(connections_.size());
  for (auto& entry : connections_) open.push_back(entry.first);
  for (IntakeConnection* c : open) c->close();
}

}  // namespace proxy::demo
