#!/usr/bin/python3
"""The chaos test's upstream: a plain-HTTP/1.1 server on 127.0.0.1 that answers 202 and
records every request it received completely and intact, and that misbehaves on purpose.
A connection that opens with the HTTP/2 preface (the proxy's gRPC calls, h2c) is served
by chaos_upstream_h2.py, with the same records and faults of its own.

Each request carries X-Chaos-Id (unique) and X-Chaos-Len (body length); its body is
chaos_common.body_for(id, len). A request whose body arrived whole and equal to that is
recorded as "OK <id>" in the record file *before* any response byte is sent, so a 2xx a
client saw implies a record. A body that arrived whole but different is recorded as
"CORRUPT <id>". A fault chosen for a request is recorded first, as "FAULT-<name> <id>".
Lines are appended with one write(2) each (O_APPEND), so a SIGKILL never
leaves half a line.

Faults, chosen per connection or per request with the probabilities below (--faults 0
turns them all off, for the warm-up):
  reset      reset the connection right after accepting it (SO_LINGER 0); also the
             first --reset-first connections after a start (a restart with a full backlog)
  cut        answer a head and part of the body, then close
  stall      answer a head and part of the body, then stall
  noread     stop reading the request body and stall
At most MAX_STALLS requests stall per start. A stalled connection is handed to the driver (SCM_RIGHTS over the --holder Unix socket),
which keeps it open until the run ends: killing this process does not end the stall.
  idleclose  answer normally, then close the keep-alive connection at once

Usage: chaos_upstream.py PORT RECORD_FILE [--faults 0|1] [--seed N] [--reset-first N]
                         [--holder PATH]
"""
import os
import random
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaos_common  # noqa: E402
from chaos_upstream_h2 import serve_h2  # noqa: E402

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # the proxy's gRPC calls (h2c)

FAULTS = {"reset": 0.03, "cut": 0.03, "stall": 0.01, "noread": 0.01, "idleclose": 0.08}
# A stall holds a client until the proxy's deadline ends it; a few per start keep most
# clients busy with the other faults.
MAX_STALLS = 2
stalls_left = threading.Semaphore(MAX_STALLS)
STALL_SECONDS = 600  # without a holder: longer than any run


def stall(conn, holder):
    """Keeps `conn` open and silent: the holder keeps it, or this thread sleeps."""
    if holder:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(holder)
                socket.send_fds(s, [b"s"], [conn.fileno()])
                s.recv(1)  # the holder has it once it answers
            return
        except OSError:
            pass
    time.sleep(STALL_SECONDS)


class Recorder:
    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def record(self, verdict, chaos_id):
        os.write(self.fd, f"{verdict} {chaos_id}\n".encode())


class Reader:
    """Buffered reads from a socket; None on EOF."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def line(self, limit=65536):
        while b"\r\n" not in self.buf:
            if len(self.buf) > limit or not self._fill():
                return None
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                return None
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


def read_head(reader):
    """Returns (request line, {lower-case name: value}) or None."""
    line = reader.line()
    while line == b"":  # tolerate stray CRLF between requests
        line = reader.line()
    if line is None:
        return None
    headers = {}
    while True:
        h = reader.line()
        if h is None:
            return None
        if h == b"":
            return line, headers
        name, _, value = h.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")


def read_body(reader, headers):
    """The decoded body, or None when the connection ended first."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size_line = reader.line()
            if size_line is None:
                return None
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while True:  # trailers up to the empty line
                    t = reader.line()
                    if t is None:
                        return None
                    if t == b"":
                        return body
            piece = reader.exact(size)
            if piece is None or reader.exact(2) is None:
                return None
            body += piece
    return reader.exact(int(headers.get("content-length", "0")))


def pick(rng, faults_on):
    if faults_on:
        for name, p in FAULTS.items():
            if name != "reset" and rng.random() < p:
                if name in ("stall", "noread") and not stalls_left.acquire(blocking=False):
                    continue
                return name
    return "ok"


def serve(conn, reader, recorder, rng, faults_on, holder):
    while True:
        head = read_head(reader)
        if head is None:
            return
        _, headers = head
        fault = pick(rng, faults_on)
        chaos_id = headers.get("x-chaos-id", "")
        if fault != "ok" and chaos_id:
            recorder.record("FAULT-" + fault, chaos_id)
        if fault == "noread":
            stall(conn, holder)
            return
        body = read_body(reader, headers)
        if body is None:
            return
        if chaos_id:
            want = chaos_common.body_for(chaos_id, int(headers.get("x-chaos-len", "-1")))
            recorder.record("OK" if body == want else "CORRUPT", chaos_id)
        payload = b'{"accepted":1}\n' * 8
        head_bytes = (
            b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n"
        )
        if fault in ("cut", "stall"):
            conn.sendall(head_bytes + payload[: len(payload) // 3])
            if fault == "stall":
                stall(conn, holder)
            return
        conn.sendall(head_bytes + payload)
        if fault == "idleclose":
            return


def handle(conn, recorder, seed, faults_on, holder):
    rng = random.Random(seed)
    try:
        reader = Reader(conn)
        while len(reader.buf) < len(H2_PREFACE) and H2_PREFACE.startswith(reader.buf):
            if not reader._fill():
                return
        if reader.buf.startswith(H2_PREFACE):
            serve_h2(conn, reader.buf, recorder, rng, faults_on)
        else:
            serve(conn, reader, recorder, rng, faults_on, holder)
    except (OSError, ValueError):
        pass
    finally:
        conn.close()


def main():
    port = int(sys.argv[1])
    recorder = Recorder(sys.argv[2])
    faults_on = "--faults" not in sys.argv or sys.argv[sys.argv.index("--faults") + 1] != "0"
    def option(name, default):
        return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default

    seed = int(option("--seed", "1"))
    reset_first = int(option("--reset-first", "0"))
    holder = option("--holder", "")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(512)
    rng = random.Random(seed)
    accepted = 0
    while True:
        conn, _ = listener.accept()
        accepted += 1
        # Reset here, not in a thread, so the RST is on its way before the proxy has
        # written anything: its first write after connect then fails.
        if accepted <= reset_first or (faults_on and rng.random() < FAULTS["reset"]):
            chaos_common.reset_close(conn)
            continue
        threading.Thread(
            target=handle, args=(conn, recorder, rng.random(), faults_on, holder), daemon=True
        ).start()


if __name__ == "__main__":
    main()
