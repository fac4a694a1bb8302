// FakeH2Server: a scriptable HTTP/2 server session over raw nghttp2, for tests of the
// h2c client side. Bytes in (receive), bytes out (takeOutput); requests are recorded and
// the test answers them, resets them or sends GOAWAY. No sockets: the codec test wires it
// to a ClientSession in memory, the upstream test puts it behind a loopback socket.
// Header-only so that both test executables can use it.
#pragma once

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/http2/session_common.h"

namespace proxy::testing {

class FakeH2Server {
 public:
  struct Request {
    http2::HeaderFields headers;
    http2::HeaderFields trailers;
    std::string body;
    bool ended = false;  // END_STREAM received
    bool closed = false;
    uint32_t close_code = 0;
    std::string header(std::string_view name) const {
      for (const auto& f : headers) {
        if (f.name == name) return f.value;
      }
      return {};
    }
  };

  struct Options {
    uint32_t max_concurrent_streams = 100;
    // When set, request bytes are credited only through consumeRequestBody().
    bool manual_window = false;
  };

  FakeH2Server() : FakeH2Server(Options{}) {}
  explicit FakeH2Server(const Options& options) {
    http2::CallbacksPtr cbs = http2::newCallbacks();
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs.get(), &onBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(cbs.get(), &onHeader);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs.get(), &onFrameRecv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs.get(), &onData);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs.get(), &onClose);
    http2::OptionPtr opt = http2::newOption();
    nghttp2_option_set_no_auto_window_update(opt.get(), options.manual_window ? 1 : 0);
    nghttp2_session* raw = nullptr;
    nghttp2_session_server_new2(&raw, cbs.get(), this, opt.get());
    session_.reset(raw);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams}};
    nghttp2_submit_settings(raw, NGHTTP2_FLAG_NONE, iv, 1);
  }

  // Feeds client bytes; false on a protocol error.
  bool receive(const char* data, size_t len) {
    return nghttp2_session_mem_recv(session_.get(), reinterpret_cast<const uint8_t*>(data), len) >=
           0;
  }
  // Frames the server wants to send.
  std::string takeOutput() {
    std::string out;
    for (;;) {
      const uint8_t* p = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_.get(), &p);
      if (n <= 0) break;
      out.append(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    }
    return out;
  }

  // Response HEADERS (with END_STREAM when `end_stream`); body bytes follow with sendData.
  void sendHead(int32_t id, int status, const http2::HeaderFields& fields, bool end_stream) {
    http2::NvList nva;
    std::string code = std::to_string(status);
    nva.add(":status", code);
    nva.addAll(fields);
    Out& out = outs_[id];
    nghttp2_data_provider provider{};
    provider.source.ptr = &out;
    provider.read_callback = &readOut;
    if (status < 200) {
      nghttp2_submit_headers(session_.get(), NGHTTP2_FLAG_NONE, id, nullptr, nva.data(), nva.size(),
                             nullptr);
      return;
    }
    nghttp2_submit_response(session_.get(), id, nva.data(), nva.size(),
                            end_stream ? nullptr : &provider);
  }
  // Body bytes; `end` ends the response (with `trailers` when non-empty).
  void sendData(int32_t id, std::string_view bytes, bool end,
                const http2::HeaderFields& trailers = {}) {
    Out& out = outs_[id];
    out.data.append(bytes);
    out.end = end;
    out.trailers = trailers;
    nghttp2_session_resume_data(session_.get(), id);
  }
  void reset(int32_t id, uint32_t code) {
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, id, code);
  }
  void goaway(int32_t last_stream_id, uint32_t code) {
    nghttp2_submit_goaway(session_.get(), NGHTTP2_FLAG_NONE, last_stream_id, code, nullptr, 0);
  }
  void consumeRequestBody(int32_t id, size_t n) { nghttp2_session_consume(session_.get(), id, n); }
  // How many more response bytes the client lets this stream send now.
  int32_t sendWindow(int32_t id) {
    return nghttp2_session_get_stream_remote_window_size(session_.get(), id);
  }

  std::map<int32_t, Request> requests;
  std::vector<int32_t> order;  // stream ids in the order their requests arrived

 private:
  struct Out {
    std::string data;
    bool end = false;
    http2::HeaderFields trailers;
  };
  static FakeH2Server& self(void* u) { return *static_cast<FakeH2Server*>(u); }

  static ssize_t readOut(nghttp2_session* s, int32_t id, uint8_t* buf, size_t len, uint32_t* flags,
                         nghttp2_data_source* src, void*) {
    Out& out = *static_cast<Out*>(src->ptr);
    size_t n = std::min(len, out.data.size());
    std::copy_n(out.data.data(), n, buf);
    out.data.erase(0, n);
    if (out.data.empty() && out.end) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!out.trailers.empty()) {
        http2::NvList nva;
        nva.addAll(out.trailers);
        nghttp2_submit_trailer(s, id, nva.data(), nva.size());
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      }
      return static_cast<ssize_t>(n);
    }
    return n == 0 ? ssize_t{NGHTTP2_ERR_DEFERRED} : static_cast<ssize_t>(n);
  }
  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* f, void* u) {
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
      self(u).requests[f->hd.stream_id] = Request{};
      self(u).order.push_back(f->hd.stream_id);
    }
    return 0;
  }
  static int onHeader(nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
                      const uint8_t* v, size_t vl, uint8_t, void* u) {
    Request& r = self(u).requests[f->hd.stream_id];
    http2::HeaderField field{std::string(reinterpret_cast<const char*>(n), nl),
                             std::string(reinterpret_cast<const char*>(v), vl)};
    (f->headers.cat == NGHTTP2_HCAT_REQUEST ? r.headers : r.trailers).push_back(field);
    return 0;
  }
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* f, void* u) {
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
      self(u).requests[f->hd.stream_id].ended = true;
    }
    return 0;
  }
  static int onData(nghttp2_session*, uint8_t, int32_t id, const uint8_t* d, size_t n, void* u) {
    self(u).requests[id].body.append(reinterpret_cast<const char*>(d), n);
    return 0;
  }
  static int onClose(nghttp2_session*, int32_t id, uint32_t code, void* u) {
    auto it = self(u).requests.find(id);
    if (it != self(u).requests.end()) {
      it->second.closed = true;
      it->second.close_code = code;
    }
    self(u).outs_.erase(id);
    return 0;
  }

  http2::SessionPtr session_;
  std::map<int32_t, Out> outs_;
};

}  // namespace proxy::testing
