// AccessLog: one line per request ([log] access = "stderr" or a file path), in our flat
// JSON schema or, with [log] format = "ecs", as Elastic Common Schema JSON. Workers format
// lines on their own thread and hand them to a LogFileWriter, whose thread does the I/O:
// no loop blocks on the disk, lines never interleave, and the file is reopened for
// logrotate (SIGUSR1, or renamed/removed). Owned by the Server; shared by every worker.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/common/status.h"
#include "proxy/downstream/log_file_writer.h"

namespace proxy::http {
class MessageHead;
}

namespace proxy::downstream {

class AccessLog {
 public:
  enum class Format { kJson, kEcs };

  // What one request did. Views stay valid only for the write() call.
  struct Entry {
    std::string_view peer_ip;
    uint16_t peer_port = 0;
    std::string_view tls_version;  // empty for plain HTTP
    std::string_view tls_cipher;
    std::string_view sni;
    std::string_view client_subject;  // RFC 2253; ECS also takes the CN from it
    std::string_view client_sans;
    std::string_view method;
    std::string_view path;  // the query string is dropped (it may carry secrets)
    int status = 0;
    uint64_t bytes_in = 0;   // the request as received: head and body, with framing
    uint64_t bytes_out = 0;  // the response as sent: head and body, with framing
    double duration_s = 0;
    double upstream_s = -1;         // < 0: unknown
    std::string_view close_reason;  // empty when the connection stays open

    // Used by the ECS format only (issue 11); the JSON format ignores them.
    std::string_view http_version;         // "1.0", "1.1", "2"; empty: unknown
    std::string_view user_agent;           // the User-Agent header
    std::string_view traceparent;          // the traceparent header, raw
    std::string_view elastic_traceparent;  // the elastic-apm-traceparent header, raw
    bool tls_resumed = false;              // the session was resumed (ticket or cache)
    std::string_view client_cert_sha256;   // hex SHA-256 of the client leaf's DER; empty: none
    uint64_t request_head_bytes = 0;       // 0: unknown (then no http.request.body.bytes)
    uint64_t response_head_bytes = 0;      // 0: unknown (then no http.response.body.bytes)
    int grpc_status = -1;  // a gRPC call's grpc-status as the client got it; -1: none
  };

  // The request headers the ECS line needs, copied from a request head when it is parsed
  // (the head's buffers are reused before the access-log line is written). One per
  // connection; loop thread only.
  class RequestFacts {
   public:
    // Copies User-Agent, traceparent, elastic-apm-traceparent and the head's size.
    void capture(const http::MessageHead& head);
    // The same for one header field at a time (an HTTP/2 header callback): keeps the value
    // when `lowercase_name` is one of the three, ignores anything else.
    void captureHeader(std::string_view lowercase_name, std::string_view value);
    // Points `e`'s matching fields at the captured values.
    void fill(Entry& e) const;
    // Forgets them (keeps the capacity), so a later request cannot log stale values.
    void clear();

   private:
    std::string user_agent_;
    std::string traceparent_;
    std::string elastic_traceparent_;
    uint64_t head_bytes_ = 0;
  };

  // `target` is "stderr" or a file path (created 0640, appended to).
  static Result<std::unique_ptr<AccessLog>> open(const std::string& target,
                                                 Format format = Format::kJson,
                                                 const LogFileWriter::Options& options = {});
  // Writes what is still queued, then closes the file.
  ~AccessLog();
  // Formats `e` on the calling thread and queues the line; any thread, never blocks on I/O.
  void write(const Entry& e);
  // Asks the writer to reopen the file (SIGUSR1); any thread.
  void reopen() { writer_->requestReopen(); }
  // Lines lost because the disk fell behind or a write failed (for metrics).
  uint64_t droppedLines() const { return writer_->droppedLines(); }
  // Blocks until every line written so far has reached write(2).
  void flushForTest() { writer_->flush(); }
  uint64_t reopensForTest() const { return writer_->reopens(); }

  // Formats one line (without writing it): our flat JSON schema, and ECS.
  static std::string format(const Entry& e);
  static std::string formatEcs(const Entry& e);

  // "1.1" for (1, 1), "2" for (2, 0): ECS http.version spelling. Static storage.
  static std::string_view httpVersionName(unsigned major, unsigned minor);
  // The SHA-256 hex of an X-Forwarded-Client-Cert element ("Hash=<hex>;Subject=..."),
  // as TlsSession::clientCertHeader() makes it; empty when there is none.
  static std::string_view sha256FromXfcc(std::string_view xfcc);

 private:
  AccessLog(std::unique_ptr<LogFileWriter> writer, Format format)
      : writer_(std::move(writer)), format_(format) {}
  std::unique_ptr<LogFileWriter> writer_;
  Format format_;
};

}  // namespace proxy::downstream
