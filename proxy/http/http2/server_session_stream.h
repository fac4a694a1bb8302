// ServerSession::Stream: the state of one client stream, from its first HEADERS to its
// close. Internal to the session's two source files (server_session.cc: submits, sends
// and the stream's life; server_session_frames.cc: what nghttp2 reports while reading).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "proxy/http/http2/server_session.h"

namespace proxy::http2 {

struct ServerSession::Stream {
  enum class Head { kReceiving, kPending, kDelivered };
  Head head_state = Head::kReceiving;
  bool ignored = false;  // refused or reset by us: request events are dropped
  // Request side.
  uint32_t fields = 0;    // in the header block being received
  size_t list_bytes = 0;  // RFC 7541 §4.1 size of that block
  int cookie_index = -1;  // where the joined cookie field sits in head.headers
  RequestHead head;       // until delivered
  HeaderFields trailers;  // until delivered
  bool trailers_ready = false;
  bool request_ended = false;
  bool reset_sent = false;  // an RST_STREAM of ours (or nghttp2's) went out
  size_t unconsumed = 0;    // body bytes received and not yet given back by consume()
  // Response side.
  bool response_submitted = false;
  bool response_ended = false;  // no more body bytes will be queued
  bool deferred = false;        // readBody returned NGHTTP2_ERR_DEFERRED
  bool above_low = false;       // buffered bytes went above kLowWatermark
  BodyBuffer out;
  HeaderFields out_trailers;

  size_t buffered() const { return out.size(); }
};

}  // namespace proxy::http2
