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

int StreamWriter::write(std::string_view data) {
  if (data.empty()) return 0;
  if (in_flight_ == 0 && pending_.empty()) {
    // Fast path: nothing queued, so the kernel may take it all without a copy.
    uv_buf_t buf = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
    int n = uv_try_write(stream_, &buf, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
    if (n < 0) return n;
    data.remove_prefix(static_cast<size_t>(n));
    if (data.empty()) return 0;
  }
  pending_.append(data);
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
