#include "proxy/uv/stream_writer.h"

#include <utility>

namespace proxy::uv {

std::string errorText(int uv_err) {
  std::string s = uv_err_name(uv_err);
  s.append(" (").append(uv_strerror(uv_err)).append(")");
  return s;
}

// The request and the bytes it sends live together; freed in uvOnWrite.
struct StreamWriter::WriteOp {
  uv_write_t req{};
  std::string bytes;
  StreamWriter* writer = nullptr;
};

int StreamWriter::write(std::initializer_list<std::string_view> pieces) {
  size_t total = 0;
  for (std::string_view p : pieces) total += p.size();
  if (total == 0) return 0;
  size_t skip = 0;  // bytes of the pieces the kernel took at once
  if (in_flight_ == 0 && pending_.empty()) {
    // Fast path: nothing queued, so the kernel may take it all without a copy.
    uv_buf_t bufs[8];
    unsigned n = 0;
    for (std::string_view p : pieces) {
      if (p.empty()) continue;
      if (n == sizeof bufs / sizeof bufs[0]) break;  // more pieces than we offer at once
      bufs[n++] = uv_buf_init(const_cast<char*>(p.data()), static_cast<unsigned>(p.size()));
    }
    int rc = uv_try_write(stream_, bufs, n);
    if (rc == UV_EAGAIN || rc == UV_ENOSYS) rc = 0;
    if (rc < 0) return rc;
    skip = static_cast<size_t>(rc);
    if (skip > 0) touched_ = true;
    if (skip == total) return 0;
  }
  // Keep what the kernel did not take, in order.
  for (std::string_view p : pieces) {
    if (skip >= p.size()) {
      skip -= p.size();
      continue;
    }
    pending_.append(p.substr(skip));
    skip = 0;
  }
  return in_flight_ == 0 ? startWrite() : 0;
}

int StreamWriter::startWrite() {
  auto* op = new WriteOp;
  op->writer = this;
  op->bytes = std::move(pending_);  // the op owns the bytes; no copy
  pending_ = std::string();
  op->req.data = op;
  uv_buf_t buf = uv_buf_init(op->bytes.data(), static_cast<unsigned>(op->bytes.size()));
  int rc = uv_write(&op->req, stream_, &buf, 1, &StreamWriter::uvOnWrite);
  if (rc < 0) {
    delete op;
    return rc;
  }
  in_flight_ = op->bytes.size();
  touched_ = true;
  return 0;
}

void StreamWriter::uvOnWrite(uv_write_t* req, int status) {
  auto* op = static_cast<WriteOp*>(req->data);
  StreamWriter* self = op->writer;
  delete op;
  self->in_flight_ = 0;
  if (status == 0 && !self->pending_.empty()) {
    int rc = self->startWrite();
    if (rc < 0) status = rc;
  }
  self->owner_.onWriteDone(status);
}

void StreamWriter::releaseMemory() {
  if (pending_.empty()) pending_ = std::string();
}

}  // namespace proxy::uv
