"""The chaos test's HTTP/2 clients: TLS connections (ALPN h2) that keep up to STREAMS
requests in flight, each a POST of 1 KiB to 64 KiB with a unique X-Chaos-Id (some without
content-length, so the proxy sends them upstream chunked; half of them gRPC calls, which
the proxy sends to the upstream over h2c), and abort some on purpose:
RST_STREAM mid-body or after the response head, or a TCP reset of the whole connection
mid-body. Every request ends in one chaos_clients.Outcome, with the same meanings, so the
driver's checks apply unchanged (a gRPC call counts as 2xx only when its grpc-status is
0: the proxy answers its own failures with :status 200); nothing blocks past a request's
bound. Needs python3-h2
(Debian), which scripts/setup.sh installs."""
import random
import socket
import ssl
import threading
import time
import traceback
import uuid

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

import chaos_common
from chaos_clients import PATH, Outcome

STREAMS = 3  # requests in flight per connection
GRPC_PATH = b"/opentelemetry.proto.collector.trace.v1.TraceService/Export"
POLL = 0.05  # seconds a read waits before the loop looks at sends and deadlines again


class _SendTimeout(Exception):
    """A write did not finish before the earliest stream deadline."""


def _reset(conn, sid, code):
    """RST_STREAM, unless h2 already saw the stream end (it applies a whole read's frames
    before the loop sees their events) or the connection end (a GOAWAY in the same read)."""
    try:
        conn.reset_stream(sid, code)
    except h2.exceptions.ProtocolError:  # StreamClosedError, or the connection CLOSED
        pass


class _Stream:
    def __init__(self, chaos_id, length, action, cut, start, bound, with_length):
        self.chaos_id = chaos_id
        self.body = chaos_common.body_for(chaos_id, length)
        self.action = action  # normal, abort_request, abort_response, abort_connection
        self.cut = cut  # bytes sent before an abort mid-body
        self.start = start
        self.deadline = start + bound
        self.with_length = with_length
        self.sent = 0
        self.ended = False  # END_STREAM sent
        self.status = 0
        self.grpc = False  # a gRPC call: content-type application/grpc
        self.grpc_status = None


class H2Client(threading.Thread):
    """Runs HTTP/2 connections, STREAMS requests at a time, until stop is set."""

    def __init__(self, name, ctx, port, bound, stop, aborts, seed, sink, problems):
        super().__init__(name=name, daemon=True)
        self.ctx, self.port, self.bound, self.stop = ctx, port, bound, stop
        self.aborts = aborts
        self.rng = random.Random(seed)
        self.sink = sink
        self.problems = problems
        self.sock = None

    def run(self):
        # _connection() ends every stream in an Outcome whatever happens; should that ever
        # fail, the run must not pass with a client thread silently gone.
        try:
            while not self.stop.is_set():
                self._connection()
        except Exception:  # noqa: BLE001 - reported as a violation, never swallowed
            self.problems.append(f"{self.name} died: {traceback.format_exc()}")

    def _drop(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def _reset_socket(self):
        chaos_common.reset_close(self.sock)
        self.sock = None

    def _new_stream(self):
        rng = self.rng
        chaos_id = uuid.UUID(int=rng.getrandbits(128)).hex
        length = rng.randint(1024, 65536)
        action = "normal"
        if self.aborts.is_set():
            r = rng.random()
            action = ("abort_request" if r < 0.03 else "abort_response" if r < 0.06 else
                      "abort_connection" if r < 0.07 else "normal")
        st = _Stream(chaos_id, length, action, rng.randint(1, length - 1), time.monotonic(),
                     self.bound, rng.random() < 0.7)
        st.grpc = rng.random() < 0.5
        return st

    def _connection(self):
        """One connection's life: its streams all end in an Outcome before it returns."""
        first = self._new_stream()
        try:
            raw = socket.create_connection(("127.0.0.1", self.port), timeout=self.bound)
            self.sock = self.ctx.wrap_socket(raw, server_hostname="localhost")
        except (OSError, ssl.SSLError) as e:
            self._drop()
            o = Outcome(first.chaos_id, "connect_failed", detail=repr(e))
            o.http2 = True
            self.sink(o)
            return
        if self.sock.selected_alpn_protocol() != "h2":
            self.problems.append(f"ALPN gave {self.sock.selected_alpn_protocol()!r}, not h2")
            self.stop.wait(1)
            self._drop()
            return
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None))
        conn.initiate_connection()
        streams = {}
        pending = [first]
        goaway = False

        def finish(sid, kind, detail=""):
            st = streams.pop(sid)
            status = st.status
            if st.grpc and kind == "response":  # whole: its grpc-status decides
                status = 200 if st.grpc_status == 0 else 600 + (st.grpc_status or 99)
            o = Outcome(st.chaos_id, kind, status, detail=detail)
            o.started = st.start
            o.seconds = time.monotonic() - st.start
            o.http2 = True
            self.sink(o)

        def finish_all(kind_without_status, detail=""):
            for sid in list(streams):
                st = streams[sid]
                finish(sid, "partial" if st.status else kind_without_status, detail)

        try:
            while True:
                while not goaway and len(streams) < STREAMS and (
                        pending or not self.stop.is_set()):
                    st = pending.pop() if pending else self._new_stream()
                    sid = conn.get_next_available_stream_id()
                    headers = [(b":method", b"POST"), (b":scheme", b"https"),
                               (b":authority", b"localhost"),
                               (b":path", GRPC_PATH if st.grpc else PATH.encode()),
                               (b"content-type",
                                b"application/grpc" if st.grpc else b"application/x-ndjson"),
                               (b"x-chaos-id", st.chaos_id.encode()),
                               (b"x-chaos-len", b"%d" % len(st.body))]
                    if st.grpc:
                        headers.append((b"te", b"trailers"))
                    if st.with_length:
                        headers.append((b"content-length", b"%d" % len(st.body)))
                    conn.send_headers(sid, headers)
                    streams[sid] = st
                if not streams:
                    break
                for sid in list(streams):
                    if self._send_body(conn, sid, streams[sid], finish) == "reset_connection":
                        self._reset_socket()
                        finish_all("closed", "collateral of a client reset")
                        return
                self._flush(conn, streams)
                now = time.monotonic()
                late = [sid for sid, st in streams.items() if now > st.deadline]
                if late:
                    for sid in late:
                        finish(sid, "timeout", "sent" if streams[sid].ended else "sending")
                    self._drop()
                    finish_all("closed", "collateral of a timeout")
                    return
                self.sock.settimeout(POLL)
                try:
                    data = self.sock.recv(65536)
                except (socket.timeout, ssl.SSLWantReadError):
                    continue
                if not data:
                    finish_all("closed")
                    break
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError as e:
                    self.problems.append(f"HTTP/2 protocol error from the proxy: {e!r}")
                    finish_all("closed", type(e).__name__)
                    break
                for ev in events:
                    goaway = self._event(conn, ev, streams, finish) or goaway
                if goaway:
                    # h2 4.1 sends and accepts nothing once a GOAWAY arrived, so the
                    # streams it let through cannot finish here: not a verdict on them.
                    finish_all("closed", "open when the proxy sent GOAWAY")
                    break
                self._flush(conn, streams)
        except _SendTimeout:
            now = time.monotonic()
            for sid in [s for s, st in streams.items() if now > st.deadline]:
                finish(sid, "timeout", "sending")
            finish_all("closed", "collateral of a timeout")
        except (OSError, ssl.SSLError, EOFError, ValueError) as e:
            finish_all("closed", type(e).__name__)
        except Exception:  # noqa: BLE001 - an h2 error on our side: a violation, with outcomes
            self.problems.append(f"{self.name}: {traceback.format_exc()}")
            finish_all("closed", "client error")
        self._drop()

    def _send_body(self, conn, sid, st, finish):
        if st.ended:
            return None
        limit = st.cut if st.action in ("abort_request", "abort_connection") else len(st.body)
        try:
            while st.sent < limit:
                n = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size,
                        limit - st.sent)
                if n <= 0:
                    return None
                conn.send_data(sid, st.body[st.sent:st.sent + n])
                st.sent += n
            if st.action == "abort_connection":
                self._flush(conn, {sid: st})
                finish(sid, "aborted_request")
                return "reset_connection"
            if st.action == "abort_request":
                _reset(conn, sid, h2.errors.ErrorCodes.CANCEL)
                finish(sid, "aborted_request")
                return None
            conn.end_stream(sid)
            st.ended = True
        except h2.exceptions.ProtocolError:
            pass  # the proxy ended or reset it (or the connection): its event says how
        return None

    def _flush(self, conn, streams):
        data = conn.data_to_send()
        if not data:
            return
        left = min((st.deadline for st in streams.values()), default=time.monotonic() + 5)
        self.sock.settimeout(max(0.01, left - time.monotonic()))
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise _SendTimeout()

    def _event(self, conn, ev, streams, finish):
        """Applies one h2 event; True for a GOAWAY."""
        sid = getattr(ev, "stream_id", None)
        st = streams.get(sid)
        if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)) and (
                st is not None):
            fields = dict(ev.headers)
            if b"grpc-status" in fields:
                st.grpc_status = int(fields[b"grpc-status"])
            if isinstance(ev, h2.events.TrailersReceived):
                return False
            st.status = int(fields[b":status"])
            if st.action == "abort_response":
                _reset(conn, sid, h2.errors.ErrorCodes.CANCEL)
                finish(sid, "aborted_response")
        elif isinstance(ev, h2.events.DataReceived):
            conn.acknowledge_received_data(ev.flow_controlled_length, sid)
        elif isinstance(ev, h2.events.StreamEnded) and st is not None:
            finish(sid, "response", "" if st.ended else "early")
            if not st.ended:
                _reset(conn, sid, h2.errors.ErrorCodes.NO_ERROR)
        elif isinstance(ev, h2.events.StreamReset) and st is not None:
            if st.status:
                finish(sid, "partial", f"reset {ev.error_code!r}")
            elif ev.error_code == h2.errors.ErrorCodes.REFUSED_STREAM:
                finish(sid, "not_processed", "REFUSED_STREAM")  # RFC 9113 8.7: never sent on
            else:
                finish(sid, "closed", f"reset {ev.error_code!r}")
        elif isinstance(ev, h2.events.ConnectionTerminated):
            if ev.error_code != h2.errors.ErrorCodes.NO_ERROR:
                self.problems.append(f"the proxy sent GOAWAY {ev.error_code!r} to a correct "
                                     f"client (last stream {ev.last_stream_id})")
            for other in [s for s in streams if s > (ev.last_stream_id or 0)]:
                finish(other, "not_processed", "above the GOAWAY's last stream id")
            return True
        return False
