// UpstreamConnection, the exchange itself: request bytes out (batched or written straight
// from the caller's buffer, kept for a replay while one is possible) and response bytes in
// (parsed and streamed to the sink, with backpressure). Lifecycle, connect, timers and
// failures are in upstream_connection.cc.
#include <cstdio>

#include "proxy/common/log.h"
#include "proxy/http/head_writer.h"
#include "proxy/upstream/upstream_connection.h"
#include "proxy/upstream/upstream_pool.h"

namespace proxy::upstream {

void UpstreamConnection::afterBrokenWrite(int rc) {
  // The same judgement as a reset read (failOrReplay): an HTTP/2 client's request goes
  // up in several writes (head, then body), so the reset of a connection the upstream
  // closed while idle may meet a write rather than a read.
  if (!unreadAfter(rc)) {
    out_.clear();
    return;
  }
  log::debug("upstream never read the request", {{"upstream", id_}, {"detail", uv_strerror(rc)}});
  out_ = std::move(replay_copy_);
  replay_copy_ = std::string();
  replay_after_reset_ = true;
}

void UpstreamConnection::keepForReplay(std::string_view bytes) {
  if (!replay_kept_) return;
  if (replay_copy_.size() + bytes.size() > kReplayLimit) {
    replay_kept_ = false;
    std::string().swap(replay_copy_);
    return;
  }
  replay_copy_.append(bytes);
}

int UpstreamConnection::flush() {
  if (state_ != State::kActive || out_.empty()) return 0;
  // The first bytes written become the replay copy by a swap after the write, not by a
  // copy (issue 12: a keep-alive request is usually all in this one flush).
  bool adopt = replay_kept_ && replay_copy_.empty() && out_.size() <= kReplayLimit;
  if (!adopt) keepForReplay(out_);
  int rc = writer_.write(out_);
  if (rc < 0) {
    // Reported to the caller as a value, never through the sink, because the caller
    // is the sink (../shared/STYLE.md §3.8). When nothing of this exchange reached the
    // kernel, out_ keeps the request so that the caller can replay it.
    if (writer_.touched()) {
      if (adopt) replay_copy_.swap(out_);  // the kept copy is then all of it
      afterBrokenWrite(rc);
    }
    sink_ = nullptr;
    close();
    return rc;
  }
  if (adopt) replay_copy_.swap(out_);
  out_.clear();
  last_io_ms_ = uv_now(pool_.loop());
  markSentIfDone();
  return 0;
}

int UpstreamConnection::sendBody(std::string_view data, bool chunked) {
  char size_line[24] = {};
  size_t size_len = 0;
  if (chunked) {
    int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", data.size());
    size_len = static_cast<size_t>(n);
  }
  std::string_view head(size_line, size_len);
  std::string_view tail = chunked ? http::kChunkEnd : std::string_view();
  if (state_ != State::kActive || data.size() < kDirectWriteMin) {
    out_.append(head).append(data).append(tail);
    return 0;
  }
  if (replay_kept_) {
    keepForReplay(out_);
    keepForReplay(head);
    keepForReplay(data);
    keepForReplay(tail);
  }
  int rc = writer_.write({out_, head, data, tail});
  if (rc < 0 && !writer_.touched()) {
    // Nothing left: keep the whole request for a replay (see flush()).
    out_.append(head).append(data).append(tail);
  } else if (rc < 0) {
    afterBrokenWrite(rc);  // every byte is in the kept copy, if one is kept
  } else {
    out_.clear();
  }
  if (rc < 0) {
    sink_ = nullptr;
    close();
    return rc;
  }
  last_io_ms_ = uv_now(pool_.loop());
  return 0;
}

int UpstreamConnection::writeBody(std::string_view data, bool chunked) {
  int rc = sendBody(data, chunked);
  // Small pieces collect in out(); hand them over once they add up, so that the queue
  // the downstream's watermarks look at is what is really pending.
  if (rc == 0 && out_.size() >= kLowWatermark) rc = flush();
  return rc;
}

int UpstreamConnection::endRequest(const http2::HeaderFields*, bool chunked) {
  if (chunked) out_.append(http::kLastChunk);
  int rc = flush();
  if (rc < 0) return rc;
  requestComplete();
  return 0;
}

void UpstreamConnection::requestComplete() {
  request_done_ = true;
  markSentIfDone();
}

void UpstreamConnection::markSentIfDone() {
  if (!request_done_ || request_sent_ || state_ != State::kActive || queuedBytes() != 0) return;
  request_sent_ = true;
  request_sent_ns_ = uv_hrtime();
  request_sent_ms_ = uv_now(pool_.loop());
  armActiveTimer();
}

void UpstreamConnection::pauseReading() {
  read_paused_ = true;
  if (reading_) {
    uv_read_stop(stream());
    reading_ = false;
  }
}

void UpstreamConnection::resumeReading() {
  if (!read_paused_) return;
  read_paused_ = false;
  if (!reading_ && (state_ == State::kActive || state_ == State::kIdle)) {
    uv_read_start(stream(), &UpstreamConnection::uvOnAlloc, &UpstreamConnection::uvOnRead);
    reading_ = true;
  }
}

void UpstreamConnection::uvOnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  *buf = static_cast<UpstreamConnection*>(h->data)->pool_.readBuffer().get();
}

void UpstreamConnection::uvOnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  static_cast<UpstreamConnection*>(s->data)->onRead(nread, buf);
}

void UpstreamConnection::onRead(ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0 || closing()) return;
  if (state_ == State::kIdle || sink_ == nullptr) {
    // An idle keep-alive connection that the upstream closed (or that sent bytes
    // nobody asked for) is simply dropped.
    close();
    return;
  }
  last_io_ms_ = uv_now(pool_.loop());
  if (nread < 0) {
    if (!got_response_byte_) {
      if (nread == UV_EOF && writer_.touched() && unreadIfReset()) {
        // A FIN with our request written. If the upstream closed before the request
        // arrived, its kernel answers the request with a RST that is a moment behind
        // this FIN: wait that moment, then decide (see onEofGrace).
        eof_pending_ = true;
        uv_timer_start(&timer_, &UpstreamConnection::uvOnTimer, kResetGraceMs, 0);
        return;
      }
      // Closed before answering. If not one byte of this request was written, the
      // upstream never saw it (typically a keep-alive connection it closed while idle).
      failOrReplay(
          UpstreamError::kClosedEarly,
          nread == UV_EOF ? "upstream closed the connection" : uv_strerror(static_cast<int>(nread)),
          unreadAfter(static_cast<int>(nread)));
      return;
    }
    std::string().swap(replay_copy_);
    if (nread == UV_EOF && final_head_seen_ && !response_done_) {
      // A response without Content-Length or chunking ends when the upstream closes
      // (RFC 9112 §6.3 item 8).
      http::Http1Parser::ExecResult r = parser_.finish();
      if (r.outcome != http::Http1Parser::Outcome::kError && response_done_) {
        finishExchange(/*reusable=*/false);
        return;
      }
    }
    fail(final_head_seen_ ? UpstreamError::kClosedMidBody : UpstreamError::kClosedEarly,
         nread == UV_EOF ? "upstream closed the connection" : uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (!got_response_byte_) {
    got_response_byte_ = true;
    replay_kept_ = false;
    std::string().swap(replay_copy_);
  }
  const char* p = buf->base;
  size_t left = static_cast<size_t>(nread);
  while (left > 0) {
    http::Http1Parser::ExecResult r = parser_.execute(p, left);
    if (closing() || sink_ == nullptr) return;
    p += r.consumed;
    left -= r.consumed;
    if (r.outcome == http::Http1Parser::Outcome::kError) {
      fail(final_head_seen_ ? UpstreamError::kClosedMidBody : UpstreamError::kBadResponse,
           parser_.errorReason().c_str());
      return;
    }
    if (r.outcome == http::Http1Parser::Outcome::kPaused) {
      if (response_done_) {
        // Bytes after a complete response were never asked for: do not reuse.
        finishExchange(/*reusable=*/left == 0);
        return;
      }
      parser_.resume();  // an interim 1xx response completed; the final one follows
    }
  }
  sink_->onUpstreamEventDone();
}

bool UpstreamConnection::onHead(http::MessageHead& head) {
  if (head.status >= 200) {
    final_head_seen_ = true;
    // Only a response to a request fully sent times the upstream: an early answer (an
    // error before the body ended) has no such start.
    if (request_sent_) {
      pool_.stats().upstream_duration.observe(static_cast<double>(uv_hrtime() - request_sent_ns_) /
                                              1e9);
    }
  }
  sink_->onResponseHead(head);
  return head_request_ && head.status >= 200;
}

void UpstreamConnection::onBody(const char* data, size_t len) {
  if (sink_ != nullptr) sink_->onResponseBody(data, len);
}

void UpstreamConnection::onMessageComplete() {
  if (final_head_seen_) response_done_ = true;
}

void UpstreamConnection::finishExchange(bool reusable) {
  ResponseSink* sink = sink_;
  sink_ = nullptr;
  reusable = reusable && request_done_ && parser_.head().keep_alive && out_.empty() && !closing();
  if (reusable) {
    pool_.release(this);
  } else {
    close();
  }
  sink->onResponseComplete();
}

void UpstreamConnection::onWriteDone(int status) {
  if (status == UV_ECANCELED || closing()) return;
  if (status < 0) {
    if (got_response_byte_) {
      fail(UpstreamError::kClosedMidBody, uv_strerror(status));
    } else {
      failOrReplay(UpstreamError::kClosedEarly, uv_strerror(status), unreadAfter(status));
    }
    return;
  }
  last_io_ms_ = uv_now(pool_.loop());
  markSentIfDone();
  if (sink_ != nullptr && queuedBytes() < kLowWatermark) sink_->onUpstreamDrained();
}

}  // namespace proxy::upstream
