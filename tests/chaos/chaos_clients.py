"""The chaos test's clients: keep-alive TLS clients that post bodies of 1 KiB to 64 KiB
(some chunked), each with a unique X-Chaos-Id, and abort some requests on purpose; and
bursts of idle connections. Every request ends in one Outcome; nothing blocks past the
answer bound (each socket operation gets what is left of the request's deadline)."""
import random
import socket
import ssl
import threading
import time
import uuid

import chaos_common

PATH = "/intake/v2/events"


class Outcome:
    """What one request came to. kind: "response" (a whole response: status, body),
    "partial" (a response head, then the connection ended), "closed" (the connection
    ended before any response byte), "timeout" (no answer within the bound),
    "aborted_request" / "aborted_response" (the client gave up on purpose),
    "not_processed" (HTTP/2: refused, or above a GOAWAY's last stream id: the proxy
    promised it never passed it on)."""

    def __init__(self, chaos_id, kind, status=0, seconds=0.0, detail=""):
        self.chaos_id = chaos_id
        self.kind = kind
        self.status = status
        self.seconds = seconds
        self.started = 0.0  # time.monotonic() when the request began
        self.detail = detail
        self.http2 = False  # made by an HTTP/2 client (chaos_h2.py)


class Timeout(Exception):
    pass


class Conn:
    """One TLS connection with a buffered reader and a per-request deadline."""

    def __init__(self, ctx, port, deadline):
        self.deadline = deadline
        raw = socket.create_connection(("127.0.0.1", port), timeout=self._left())
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.buf = b""

    def _left(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Timeout()
        return left

    def send(self, data):
        self.sock.settimeout(self._left())
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise Timeout()

    def _fill(self):
        self.sock.settimeout(self._left())
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise Timeout()
        if not data:
            raise EOFError()
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def until_close(self):
        try:
            while True:
                self._fill()
        except EOFError:
            return

    def abort(self):
        """Closes with a TCP reset (no close_notify, no FIN), as a killed client would."""
        chaos_common.reset_close(self.sock)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def read_response(conn):
    """Reads one response; returns (status, keep_alive). Raises EOFError(after_head=...)
    through the `partial` attribute when the body is cut."""
    status_line = conn.line()
    while True:
        parts = status_line.split(b" ", 2)
        status = int(parts[1])
        headers = {}
        while True:
            h = conn.line()
            if h == b"":
                break
            name, _, value = h.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        if status >= 200:
            break
        status_line = conn.line()  # 1xx: the real answer follows
    try:
        if b"chunked" in headers.get(b"transfer-encoding", b""):
            while True:
                size = int(conn.line().split(b";")[0], 16)
                if size == 0:
                    while conn.line() != b"":
                        pass
                    break
                conn.exact(size + 2)
        elif b"content-length" in headers:
            conn.exact(int(headers[b"content-length"]))
        else:
            conn.until_close()
            return status, False
    except EOFError:
        e = EOFError()
        e.partial = status
        raise e
    keep_alive = b"close" not in headers.get(b"connection", b"")
    return status, keep_alive


def request_head(chaos_id, length, chunked):
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % length
    return (
        b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/x-ndjson\r\nX-Chaos-Id: " + chaos_id.encode() +
        b"\r\nX-Chaos-Len: %d\r\n" % length + framing + b"\r\n\r\n"
    )


def chunks(body, rng):
    out = []
    i = 0
    while i < len(body):
        n = rng.randint(1, 16384)
        out.append(b"%x\r\n" % len(body[i:i + n]) + body[i:i + n] + b"\r\n")
        i += n
    out.append(b"0\r\n\r\n")
    return out


class Client(threading.Thread):
    """Posts requests over keep-alive TLS connections until stop is set."""

    def __init__(self, name, ctx, port, bound, stop, aborts, seed, sink):
        super().__init__(name=name, daemon=True)
        self.ctx, self.port, self.bound, self.stop = ctx, port, bound, stop
        self.aborts = aborts  # threading.Event: clients abort some requests while set
        self.rng = random.Random(seed)
        self.sink = sink  # list.append of Outcome (thread-safe in CPython)
        self.conn = None

    def run(self):
        while not self.stop.is_set():
            self.sink(self.one())

    def one(self):
        rng = self.rng
        chaos_id = uuid.UUID(int=rng.getrandbits(128)).hex
        length = rng.randint(1024, 65536)
        chunked = rng.random() < 0.3
        action = "normal"
        if self.aborts.is_set():
            r = rng.random()
            action = "abort_request" if r < 0.04 else "abort_response" if r < 0.08 else "normal"
        start = time.monotonic()
        deadline = start + self.bound
        outcome = self._exchange(chaos_id, length, chunked, action, deadline)
        outcome.started = start
        outcome.seconds = time.monotonic() - start
        if outcome.kind != "response":
            self._drop()
        return outcome

    def _drop(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _exchange(self, chaos_id, length, chunked, action, deadline):
        body = chaos_common.body_for(chaos_id, length)
        pieces = chunks(body, self.rng) if chunked else [body]
        sent_all = False
        try:
            if self.conn is None:
                try:
                    self.conn = Conn(self.ctx, self.port, deadline)
                except (OSError, ssl.SSLError) as e:
                    return Outcome(chaos_id, "connect_failed", detail=repr(e))
            self.conn.deadline = deadline
            data = request_head(chaos_id, length, chunked) + b"".join(pieces)
            if action == "abort_request":
                self.conn.send(data[: self.rng.randint(1, len(data) - 1)])
                self.conn.abort()
                self.conn = None
                return Outcome(chaos_id, "aborted_request")
            try:
                self.conn.send(data)
                sent_all = True
            except (OSError, ssl.SSLError):
                pass  # the proxy may have answered early (504, 413...) and closed: read it
            if action == "abort_response":
                self.conn.line()  # the status line arrived; go away mid-response
                self.conn.abort()
                self.conn = None
                return Outcome(chaos_id, "aborted_response")
            status, keep_alive = read_response(self.conn)
            if not keep_alive:
                self._drop()
            return Outcome(chaos_id, "response", status, detail="" if sent_all else "early")
        except Timeout:
            return Outcome(chaos_id, "timeout", detail="sent" if sent_all else "sending")
        except EOFError as e:
            status = getattr(e, "partial", 0)
            return Outcome(chaos_id, "partial" if status else "closed", status)
        except (OSError, ssl.SSLError, ValueError, IndexError) as e:
            return Outcome(chaos_id, "closed", detail=type(e).__name__)


class IdleBursts(threading.Thread):
    """Every second or so opens 10 to 40 connections, some with a finished TLS handshake
    and some that never start one, holds them a moment, and lets them all go."""

    def __init__(self, ctx, port, stop, seed, problems):
        super().__init__(name="idle-bursts", daemon=True)
        self.ctx, self.port, self.stop = ctx, port, stop
        self.rng = random.Random(seed)
        self.problems = problems
        self.bursts = 0
        self.certificates = set()  # DER of every server certificate a handshake showed

    def run(self):
        while not self.stop.wait(self.rng.uniform(0.5, 2.0)):
            held = []
            for _ in range(self.rng.randint(10, 40)):
                try:
                    raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                    if self.rng.random() < 0.6:
                        raw = self.ctx.wrap_socket(raw, server_hostname="localhost")
                        self.certificates.add(raw.getpeercert(binary_form=True))
                    held.append(raw)
                except (OSError, ssl.SSLError) as e:
                    self.problems.append("idle connection failed: " + repr(e))
            self.stop.wait(self.rng.uniform(0.2, 2.0))
            for s in held:
                s.close()
            self.bursts += 1
