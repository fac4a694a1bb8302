// Http1Parser: llhttp in strict mode behind a small callback interface, for requests
// (from clients) and responses (from the upstream). Bytes in, events out: no libuv, no
// sockets, so it is unit-tested by feeding fixtures at every split point.
// The parser pauses after each complete message; the caller resumes it when ready for
// the next one (that is how pipelined requests are answered in order).
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "proxy/http/message.h"

namespace proxy::http {

// Why parsing failed; the downstream maps this to its local response.
enum class ParseError {
  kNone,
  kHeadTooLarge,   // request/status line + headers over the limit -> 431
  kBadMessage,     // malformed, smuggling shapes, bad chunk sizes, bare LF, obs-fold -> 400
  kUnsupported,    // CONNECT and similar the proxy refuses deliberately -> 405/501
  kPrematureEof,   // connection closed inside a message
};

class Http1Parser {
 public:
  enum class Kind { kRequest, kResponse };

  // Implemented by the connection that owns the parser. Called synchronously from
  // execute(); the data pointers are valid only during the call.
  class Callbacks {
   public:
    virtual ~Callbacks() = default;
    // The head is complete. Return true when the message has no body even though its
    // headers would say otherwise (a response to HEAD). May close the connection.
    virtual bool onHead(MessageHead& head) = 0;
    // Decoded body bytes (chunk framing already removed).
    virtual void onBody(const char* data, size_t len) = 0;
    // The whole message has arrived. The parser pauses after this call returns.
    virtual void onMessageComplete() = 0;
  };

  // `max_head_bytes` bounds the request/status line plus headers (0 = no limit).
  Http1Parser(Kind kind, Callbacks& callbacks, uint64_t max_head_bytes);
  Http1Parser(const Http1Parser&) = delete;
  Http1Parser& operator=(const Http1Parser&) = delete;

  enum class Outcome {
    kConsumedAll,  // every byte was parsed; feed more when it arrives
    kPaused,       // a message completed; `consumed` bytes were used, keep the rest
    kError,        // see error() / errorReason(); the connection must not be reused
  };
  struct ExecResult {
    Outcome outcome;
    size_t consumed;
  };
  // Parses bytes until they run out, a message completes, or an error. Callbacks
  // may run (and may close the owner). Must not be called while paused.
  ExecResult execute(const char* data, size_t len);
  // Continues after kPaused.
  void resume();
  // The peer closed the connection. Completes a close-delimited response body
  // (returns kConsumedAll after calling onMessageComplete) or reports kPrematureEof.
  ExecResult finish();

  bool paused() const { return paused_; }
  // True between the first byte of a message and its completion.
  bool inMessage() const { return in_message_; }
  // True once the head of the current message is complete.
  bool headComplete() const { return head_complete_; }
  ParseError error() const { return error_; }
  // llhttp's errno name and reason, for logs ("HPE_INVALID_CHUNK_SIZE: Invalid character...").
  const std::string& errorReason() const { return error_reason_; }
  MessageHead& head() { return head_; }

 private:
  static int uvOnMessageBegin(llhttp_t* p);
  static int uvOnUrl(llhttp_t* p, const char* at, size_t n);
  static int uvOnStatus(llhttp_t* p, const char* at, size_t n);
  static int uvOnHeaderField(llhttp_t* p, const char* at, size_t n);
  static int uvOnHeaderValue(llhttp_t* p, const char* at, size_t n);
  static int uvOnHeadersComplete(llhttp_t* p);
  static int uvOnBody(llhttp_t* p, const char* at, size_t n);
  static int uvOnMessageComplete(llhttp_t* p);
  int countHeadBytes(size_t n);

  llhttp_t parser_{};
  Kind kind_;
  Callbacks& callbacks_;
  uint64_t max_head_bytes_;
  MessageHead head_;
  bool paused_ = false;
  bool in_message_ = false;
  bool head_complete_ = false;
  ParseError error_ = ParseError::kNone;
  std::string error_reason_;
};

}  // namespace proxy::http
