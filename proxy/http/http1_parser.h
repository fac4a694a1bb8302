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
  kHeadTooLarge,  // request/status line + headers over the limit -> 431
  kBadMessage,    // malformed, smuggling shapes, bad chunk sizes, bare LF, obs-fold -> 400
  kUnsupported,   // CONNECT and similar the proxy refuses deliberately -> 405/501
  kPrematureEof,  // connection closed inside a message
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
  // Frees the head's buffers between messages (never while inMessage()).
  void releaseMemory() {
    if (!in_message_) head_.releaseMemory();
  }

 private:
  static int uvOnMessageBegin(llhttp_t* p);
  static int uvOnUrl(llhttp_t* p, const char* at, size_t n);
  static int uvOnStatus(llhttp_t* p, const char* at, size_t n);
  static int uvOnHeaderField(llhttp_t* p, const char* at, size_t n);
  static int uvOnHeaderValue(llhttp_t* p, const char* at, size_t n);
  static int uvOnHeadersComplete(llhttp_t* p);
  static int uvOnBody(llhttp_t* p, const char* at, size_t n);
  static int uvOnMessageComplete(llhttp_t* p);
  static int uvOnHeaderValueComplete(llhttp_t* p);
  static const llhttp_settings_t kSettings;
  // Adds `n` head bytes to the running count; -1 (and kHeadTooLarge) when over, else 0.
  int countHeadBytes(size_t n);
  // Checks raw head bytes before llhttp sees them (bare CR/LF, obs-fold, controls, double
  // spaces, size); stops at the end of the head. False on error.
  bool scanHead(const char* data, size_t len);
  // Checks the parsed head before onHead() (version, target form, framing headers).
  bool validateHead();
  int onHeadersComplete();
  ExecResult completeMessage(size_t consumed, bool check_chunked_end, const char* data);
  ExecResult fail(ParseError error, const char* reason);
  ExecResult failFromLlhttp(llhttp_errno_t err);
  bool setError(ParseError error, const char* reason);

  // State of the raw head scan (scanHead) for the message being parsed.
  struct HeadScan {
    bool active = true;      // still inside the head (or before it)
    bool started = false;    // the start line has begun (leading CRLFs are skipped)
    bool first_line = true;  // inside the request/status line
    bool prev_cr = false;
    bool prev_sp = false;
    uint32_t line_len = 0;
    uint64_t bytes = 0;
  };

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
  HeadScan scan_;
  bool message_done_ = false;       // on_message_complete ran; reported once llhttp returns
  bool value_done_ = false;         // a header value completed and no new name started yet
  uint64_t field_len_ = 0;          // bytes of the current header name
  uint64_t trailer_bytes_ = 0;      // trailer section bytes (bounded like the head)
  const char* cur_data_ = nullptr;  // input of the execute() call in progress
  char last_byte_ = 0;              // last byte of the previous execute() input
};

}  // namespace proxy::http
