// ServerSession, what nghttp2 tells it while it reads the client's frames (inside
// receive()): a request head's fields as HPACK decodes them, counted against the limits
// field by field; the frames that complete a head, trailers or the body; body bytes; and
// the GOAWAYs nghttp2 sends on its own. Heads are delivered after receive() returns
// (deliverPending, server_session.cc); body bytes that come before are noted till then.
#include <string>
#include <string_view>

#include "proxy/http/http2/server_session.h"
#include "proxy/http/http2/server_session_stream.h"

namespace proxy::http2 {

void ServerSession::refuseHeaders(Stream& s, int32_t stream_id) {
  s.head = RequestHead();
  s.trailers = HeaderFields();
  if (s.head_state == Stream::Head::kDelivered) {
    resetStream(stream_id, kHeaderLimitResetCode);  // oversized trailers
    return;
  }
  s.ignored = true;
  nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, stream_id, kHeaderLimitResetCode);
}

int ServerSession::onBeginHeaders(const nghttp2_frame& frame) {
  if (frame.hd.type != NGHTTP2_HEADERS) return 0;
  int32_t id = frame.hd.stream_id;
  if (frame.headers.cat == NGHTTP2_HCAT_REQUEST) {
    streams_[id] = std::make_unique<Stream>();
    return 0;
  }
  if (Stream* s = stream(id)) {  // trailers: a fresh count for this block
    s->fields = 0;
    s->list_bytes = 0;
  }
  return 0;
}

int ServerSession::onHeader(const nghttp2_frame& frame, std::string_view name,
                            std::string_view value) {
  int32_t id = frame.hd.stream_id;
  Stream* s = stream(id);
  if (s == nullptr || s->ignored) return 0;
  // Counted per field as HPACK decodes it, so an amplified block (one byte on the wire
  // naming a large table entry) is cut off before it costs memory.
  ++s->fields;
  s->list_bytes += name.size() + value.size() + kFieldOverhead;
  if (s->fields > settings_.max_header_fields || s->list_bytes > settings_.max_header_list_size) {
    refuseHeaders(*s, id);
    return 0;
  }
  if (frame.headers.cat != NGHTTP2_HCAT_REQUEST) {
    s->trailers.push_back({std::string(name), std::string(value)});
    return 0;
  }
  RequestHead& h = s->head;
  if (!name.empty() && name[0] == ':') {
    // nghttp2 already rejected unknown, repeated and misplaced pseudo-headers (§8.3).
    if (name == ":method")
      h.method = value;
    else if (name == ":scheme")
      h.scheme = value;
    else if (name == ":authority")
      h.authority = value;
    else if (name == ":path")
      h.path = value;
    return 0;
  }
  if (name == "cookie" && s->cookie_index >= 0) {
    std::string& joined = h.headers[static_cast<size_t>(s->cookie_index)].value;
    joined.append("; ").append(value);
    return 0;
  }
  if (name == "cookie") s->cookie_index = static_cast<int>(h.headers.size());
  // Room for a typical request's fields at once (an agent sends 4 to 8), instead of
  // growing the list field by field.
  if (h.headers.empty()) h.headers.reserve(8);
  h.headers.push_back({std::string(name), std::string(value)});
  return 0;
}

int ServerSession::onFrameRecv(const nghttp2_frame& frame) {
  int32_t id = frame.hd.stream_id;
  bool end_stream = (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  switch (frame.hd.type) {
    case NGHTTP2_HEADERS: {
      Stream* s = stream(id);
      if (s == nullptr || s->ignored) return 0;
      if (frame.headers.cat == NGHTTP2_HCAT_REQUEST) {
        ++useful_frames_;
        s->head.end_stream = end_stream;
        s->request_ended = end_stream;
        s->head_state = Stream::Head::kPending;
        pending_heads_.push_back(id);
        return 0;
      }
      // Trailers; nghttp2 made sure they carry END_STREAM (RFC 9113 §8.1).
      s->request_ended = true;
      if (s->head_state != Stream::Head::kDelivered) {
        s->trailers_ready = true;
        return 0;
      }
      HeaderFields trailers = std::move(s->trailers);
      s->trailers = HeaderFields();
      callbacks_.onRequestTrailers(id, trailers);
      if ((s = stream(id)) != nullptr && !s->ignored) callbacks_.onRequestEnd(id);
      return 0;
    }
    case NGHTTP2_DATA: {
      if (frame.hd.length > 0) {
        ++useful_frames_;
      } else if (!end_stream &&
                 ++empty_data_frames_ > settings_.max_empty_data_frames + useful_frames_) {
        // Empty DATA frames cost us work and the client nothing (CVE-2019-9518).
        fail(NGHTTP2_ENHANCE_YOUR_CALM, "flood of empty DATA frames");
        return 0;
      }
      Stream* s = stream(id);
      if (!end_stream || s == nullptr || s->ignored) return 0;
      s->request_ended = true;
      if (s->head_state == Stream::Head::kDelivered) callbacks_.onRequestEnd(id);
      return 0;
    }
    case NGHTTP2_RST_STREAM:
      byCode().resets_received.add(frame.rst_stream.error_code);
      return 0;
    case NGHTTP2_GOAWAY:
      byCode().goaways_received.add(frame.goaway.error_code);
      return 0;
    default:
      return 0;
  }
}

int ServerSession::onDataChunk(int32_t stream_id, const uint8_t* data, size_t len) {
  Stream* s = stream(stream_id);
  if (s == nullptr || s->ignored) {
    // Nobody will consume these: give them back at once.
    nghttp2_session_consume(session_.get(), stream_id, len);
    return 0;
  }
  s->unconsumed += len;
  if (s->head_state == Stream::Head::kDelivered) {
    callbacks_.onRequestData(stream_id, reinterpret_cast<const char*>(data), len);
  } else {
    early_data_.push_back({stream_id, data, len});  // nghttp2 does not copy DATA: in the input
  }
  return 0;
}

int ServerSession::onBeginFrame(const nghttp2_frame_hd& hd) {
  // With RFC 7540 priorities off and closed streams forgotten (start()), nghttp2 skips
  // PRIORITY frames whole and ignores frames on closed streams; RFC 9113 makes these two
  // connection errors, so they are checked here, before nghttp2 looks at the frame
  // (DATA, which nghttp2 ignores without this call, in receive()).
  if (hd.type == NGHTTP2_PRIORITY && hd.stream_id == 0) {
    fail(NGHTTP2_PROTOCOL_ERROR, "PRIORITY on stream 0");  // §6.3
    return 0;
  }
  if (hd.type != NGHTTP2_HEADERS) return 0;
  if (!used_ids_.use(hd.stream_id)) {
    fail(NGHTTP2_PROTOCOL_ERROR, "HEADERS on a stream id below the last one");  // §5.1.1
  } else if (stream(hd.stream_id) == nullptr && client_closed_.holds(hd.stream_id)) {
    fail(NGHTTP2_STREAM_CLOSED, "HEADERS on a stream the client had closed");  // §5.1
  }
  return 0;
}

int ServerSession::onFrameSend(const nghttp2_frame& frame) {
  if (frame.hd.type == NGHTTP2_RST_STREAM) {
    byCode().resets_sent.add(frame.rst_stream.error_code);
    if (Stream* s = stream(frame.hd.stream_id)) s->reset_sent = true;
  }
  if ((frame.hd.type == NGHTTP2_HEADERS || frame.hd.type == NGHTTP2_DATA) &&
      (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
    // The answer is complete while the client still sends its request (an early answer,
    // a local 413 or gRPC status): RFC 9113 §8.1 lets the server ask it to stop, without
    // error. Otherwise the stream, and its connection's idle deadline, would wait for a
    // body nobody reads. Sent after the last frame, so it cannot cut the answer.
    Stream* s = stream(frame.hd.stream_id);
    if (s != nullptr && !s->request_ended) resetStream(frame.hd.stream_id, NGHTTP2_NO_ERROR);
  }
  if (frame.hd.type != NGHTTP2_GOAWAY) return 0;
  const nghttp2_goaway& g = frame.goaway;
  byCode().goaways_sent.add(g.error_code);
  // GOAWAYs nghttp2 decided on itself (rapid reset, too many SETTINGS entries, protocol
  // errors) explain themselves only here; nghttp2 puts its reason in the debug data.
  if (g.error_code != NGHTTP2_NO_ERROR && error_reason_.empty()) {
    error_reason_ = std::string("sent GOAWAY ") + errorCodeName(g.error_code);
    if (g.opaque_data_len > 0) {
      error_reason_.append(": ").append(reinterpret_cast<const char*>(g.opaque_data),
                                        g.opaque_data_len);
    }
  }
  return 0;
}

}  // namespace proxy::http2
