#!/usr/bin/python3
"""A raw HTTP/2 client for the proxy's integration tests (tests/integration/http2_*_test.cc).

It speaks h2c with prior knowledge to 127.0.0.1:PORT (or TLS with ALPN h2: --tls CAFILE),
writes frames by hand (hpack encodes the header blocks) so it can send what a correct
client never would, reads whatever comes back for a bounded time, and prints one JSON
object on stdout:

  {"goaways": [[last_stream_id, code], ...], "resets": {"1": 7, ...},
   "responses": {"3": {"status": "200", "headers": {...}, "body_bytes": 9,
                       "trailers": {...}, "ended": true}},
   "closed": true, "send_failed": false, "seconds": 1.2}

Run with Debian's /usr/bin/python3 (python3-h2 brings hpack).

  h2peer.py PORT ATTACK [OPTIONS]

Attacks (see main()): get, goaway, rapid-reset, continuation-flood, big-headers, hpack-bomb,
settings-flood, ping-flood, empty-data-flood, header, smuggle, cancel-upload, streams, stall, grpc,
grpc-pause, sequence. With --hold PATH, a checkpoint creates PATH.N and waits (reading, 10 s at
most) for the test to create PATH.N.go.
"""
import argparse
import json
import os
import select
import socket
import ssl
import struct
import sys
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0, 1, 3, 4, 6, 7, 8, 9)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
GRPC_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", kind, flags, stream) + payload


def settings(pairs):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def request_fields(port, method="GET", path="/", extra=()):
    return [(":method", method), (":scheme", "http"), (":authority", "127.0.0.1:%d" % port),
            (":path", path)] + list(extra)


class Peer:
    tls_ca = None  # --tls CAFILE: TLS with ALPN h2, verifying the server as localhost

    def __init__(self, port, rcvbuf=0, window=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", port))
        if Peer.tls_ca:
            ctx = ssl.create_default_context(cafile=Peer.tls_ca)
            ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
            if self.sock.selected_alpn_protocol() != "h2":
                raise SystemExit("ALPN chose %r, not h2" % self.sock.selected_alpn_protocol())
        self.port = port
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 30
        self.inbuf = b""
        self.closed = False
        self.send_failed = False
        self.goaways = []
        self.resets = {}
        self.responses = {}
        self.pings = 0
        self.start = time.monotonic()
        initial = [] if window is None else [(4, window)]  # SETTINGS_INITIAL_WINDOW_SIZE
        self.send(PREFACE + settings(initial))

    def send(self, data, deadline=10.0):
        """Sends everything unless the peer closes or stops reading for `deadline` s."""
        self.sock.settimeout(deadline)
        try:
            self.sock.sendall(data)
            return True
        except (OSError, socket.timeout):
            self.send_failed = True
            return False

    def headers(self, stream, fields, end_stream=True, encoded=None):
        block = self.encoder.encode(fields, huffman=False) if encoded is None else encoded
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        return frame(HEADERS, flags, stream, block)

    def _on_frame(self, kind, flags, stream, payload):
        if kind == SETTINGS and not flags & ACK:
            self.send(frame(SETTINGS, ACK, 0), 1.0)
        elif kind == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaways.append([last & 0x7FFFFFFF, code])
        elif kind == RST_STREAM:
            self.resets[str(stream)] = struct.unpack(">I", payload[:4])[0]
        elif kind == PING and not flags & ACK:
            self.pings += 1
        elif kind in (HEADERS, CONTINUATION):
            r = self.responses.setdefault(str(stream), {"body_bytes": 0, "ended": False,
                                                        "block": b""})
            if kind == HEADERS and flags & 0x20:  # PRIORITY
                payload = payload[5:]
            r["block"] += payload
            if flags & END_HEADERS:
                fields = dict(self.decoder.decode(r.pop("block")))
                r["block"] = b""
                if "status" in r:
                    r["trailers"] = fields
                else:
                    r["status"] = fields.pop(":status", "")
                    r["headers"] = fields
            if flags & END_STREAM:
                r["ended"] = True
        elif kind == DATA:
            r = self.responses.setdefault(str(stream), {"body_bytes": 0, "ended": False})
            r["body_bytes"] += len(payload)
            if payload:  # give the window back so bodies flow
                inc = struct.pack(">I", len(payload))
                self.send(frame(WINDOW_UPDATE, 0, 0, inc) + frame(WINDOW_UPDATE, 0, stream, inc),
                          1.0)
            if flags & END_STREAM:
                r["ended"] = True

    def pump(self, seconds, until=None, update_windows=True):
        """Reads frames for up to `seconds` or until until(self) holds or the peer closes."""
        deadline = time.monotonic() + seconds
        while not self.closed and (until is None or not until(self)):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            buffered = Peer.tls_ca and self.sock.pending() > 0  # select() cannot see these
            if not buffered and not select.select([self.sock], [], [], min(left, 0.2))[0]:
                continue
            try:
                chunk = self.sock.recv(1 << 16)
            except ssl.SSLWantReadError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                break
            self.inbuf += chunk
            while len(self.inbuf) >= 9:
                length = struct.unpack(">I", b"\0" + self.inbuf[:3])[0]
                if len(self.inbuf) < 9 + length:
                    break
                kind, flags, stream = struct.unpack(">BBI", self.inbuf[3:9])
                payload = self.inbuf[9:9 + length]
                self.inbuf = self.inbuf[9 + length:]
                if kind == DATA and not update_windows:
                    r = self.responses.setdefault(str(stream), {"body_bytes": 0, "ended": False})
                    r["body_bytes"] += len(payload)
                    continue
                self._on_frame(kind, flags, stream & 0x7FFFFFFF, payload)

    def report(self, **extra):
        for r in self.responses.values():
            r.pop("block", None)
        out = {"goaways": self.goaways, "resets": self.resets, "responses": self.responses,
               "closed": self.closed, "send_failed": self.send_failed,
               "seconds": round(time.monotonic() - self.start, 3)}
        out.update(extra)
        print(json.dumps(out, sort_keys=True))


def ended(stream):
    return lambda p: p.responses.get(str(stream), {}).get("ended") or str(stream) in p.resets


def checkpoint(p, hold, n):
    """Creates HOLD.n for the test, then reads until it creates HOLD.n.go (10 s at most)."""
    if not hold:
        return
    sys.stdout.flush()
    with open("%s.%d.tmp" % (hold, n), "w"):
        pass
    os.rename("%s.%d.tmp" % (hold, n), "%s.%d" % (hold, n))
    deadline = time.monotonic() + 10.0
    while not os.path.exists("%s.%d.go" % (hold, n)) and time.monotonic() < deadline:
        if p.closed:
            time.sleep(0.02)
        p.pump(0.05)


def grpc_fields(port, extra=()):
    return request_fields(port, "POST", GRPC_EXPORT, [("content-type", "application/grpc"),
                                                      ("te", "trailers")] + list(extra))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("port", type=int)
    ap.add_argument("attack")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--header", action="append", default=[], help="NAME=VALUE (as sent)")
    ap.add_argument("--path", default="/")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--linger", type=float, default=0.0, help="then wait this long for a close")
    ap.add_argument("--tls", metavar="CAFILE", help="TLS (ALPN h2) instead of h2c")
    ap.add_argument("--pause", type=float, default=2.5, help="grpc-pause: the body's pause")
    ap.add_argument("--hold", metavar="PATH", help="checkpoints for the test (see above)")
    ap.add_argument("--keep-open", action="store_true",
                    help="grpc-pause: no RST_STREAM NO_ERROR for a call answered mid-body")
    a = ap.parse_args()
    Peer.tls_ca = a.tls
    extra = [tuple(h.split("=", 1)) for h in a.header]
    port = a.port

    if a.attack == "get":  # one request per --count, on one connection
        p = Peer(port)
        for i in range(a.count):
            p.send(p.headers(1 + 2 * i, request_fields(port, path=a.path, extra=extra)))
        p.pump(a.seconds, until=lambda q: all(ended(1 + 2 * i)(q) for i in range(a.count)))
    elif a.attack == "goaway":  # --count GETs, then GOAWAY(NO_ERROR), then only reads
        p = Peer(port)
        for i in range(a.count):
            p.send(p.headers(1 + 2 * i, request_fields(port, path=a.path, extra=extra)))
        p.send(frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)))  # no pushed stream to keep
        # Not even a WINDOW_UPDATE: nothing of the client's may wake the proxy up.
        p.pump(a.seconds, until=lambda q: q.closed, update_windows=False)
    elif a.attack == "rapid-reset":  # CVE-2023-44487
        p = Peer(port)
        batch = b""
        for i in range(a.count):
            sid = 1 + 2 * i
            batch += p.headers(sid, request_fields(port, extra=extra))
            batch += frame(RST_STREAM, 0, sid, struct.pack(">I", 8))  # CANCEL
            if len(batch) > 16384:
                if not p.send(batch):
                    break
                batch = b""
                p.pump(0.001)
        p.send(batch)
        p.pump(a.seconds, until=lambda q: q.goaways)
    elif a.attack == "continuation-flood":  # CVE-2024-28182: HEADERS never ended
        p = Peer(port)
        block = p.encoder.encode(request_fields(port) +
                                 [("x-f%d" % i, "v" * 64) for i in range(a.count)], huffman=False)
        p.send(frame(HEADERS, END_STREAM, 1, block[:100]))
        for off in range(100, len(block), 100):
            if not p.send(frame(CONTINUATION, 0, 1, block[off:off + 100]), 2.0):
                break
        p.pump(a.seconds, until=lambda q: q.goaways or "1" in q.resets)
    elif a.attack == "big-headers":  # one header of --size bytes, in frames of 16 KiB
        p = Peer(port)
        block = p.encoder.encode(request_fields(port) + [("x-big", "b" * a.size)], huffman=False)
        chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        data = frame(HEADERS, END_STREAM | (END_HEADERS if len(chunks) == 1 else 0), 1, chunks[0])
        for i, c in enumerate(chunks[1:], 1):
            data += frame(CONTINUATION, END_HEADERS if i == len(chunks) - 1 else 0, 1, c)
        p.send(data)
        p.pump(a.seconds, until=lambda q: q.goaways or ended(1)(q))
    elif a.attack == "hpack-bomb":  # one 4 KiB field in the table, referenced --count times
        p = Peer(port)
        first = p.encoder.encode(request_fields(port) + [("x-bomb", "z" * 4000)], huffman=False)
        index = bytes([0x80 | 62])  # the newest dynamic-table entry (RFC 7541 §2.3.3)
        p.send(p.headers(1, None, encoded=first))
        p.pump(1.0, until=ended(1))
        block = p.encoder.encode(request_fields(port), huffman=False) + index * a.count
        p.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, block[:16000]))
        p.pump(a.seconds, until=lambda q: q.goaways or ended(3)(q))
    elif a.attack in ("settings-flood", "ping-flood"):  # never reading the ACKs
        p = Peer(port, rcvbuf=4096)
        one = settings([]) if a.attack == "settings-flood" else frame(PING, 0, 0, b"12345678")
        for _ in range(a.count // 1000):
            if not p.send(one * 1000, 2.0):
                break
        p.pump(a.seconds, until=lambda q: q.goaways and q.closed)
    elif a.attack == "empty-data-flood":
        p = Peer(port)
        p.send(p.headers(1, request_fields(port, "POST", "/intake/v2/events", extra),
                         end_stream=False))
        for _ in range(a.count // 1000):
            if not p.send(frame(DATA, 0, 1) * 1000, 2.0):
                break
        p.pump(a.seconds, until=lambda q: q.goaways and q.closed)
    elif a.attack == "header":  # stream 1 carries --header fields as given; stream 3 is clean
        p = Peer(port)
        fields = [f for f in request_fields(port, path=a.path) if f[0] not in dict(extra)]
        p.send(p.headers(1, fields + extra))
        p.pump(2.0, until=ended(1))
        p.send(p.headers(3, request_fields(port)))
        p.pump(a.seconds, until=ended(3))
    elif a.attack == "smuggle":  # DATA longer than content-length, carrying a second request
        p = Peer(port)
        hidden = b"hello" + ("GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n").encode()
        p.send(p.headers(1, request_fields(port, "POST", "/intake/v2/events",
                                           [("content-length", "5")] + extra), end_stream=False))
        p.send(frame(DATA, END_STREAM, 1, hidden))
        p.pump(2.0, until=ended(1))
        p.send(p.headers(3, request_fields(port)))
        p.pump(a.seconds, until=ended(3))
    elif a.attack == "cancel-upload":  # part of a declared body, RST_STREAM, then a GET
        p = Peer(port)
        p.send(p.headers(1, request_fields(port, "POST", "/intake/v2/events",
                                           [("content-length", "1000000")] + extra),
                         end_stream=False))
        p.send(frame(DATA, 0, 1, b"x" * 1000))
        p.pump(0.5)
        p.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))  # CANCEL
        p.pump(0.5)
        p.send(p.headers(3, request_fields(port)))
        p.pump(a.seconds, until=ended(3))
    elif a.attack == "streams":  # --count POSTs left open (no END_STREAM)
        p = Peer(port)
        for i in range(a.count):
            p.send(p.headers(1 + 2 * i, request_fields(port, "POST", "/intake/v2/events", extra),
                             end_stream=False))
        p.pump(a.seconds, until=lambda q: all(ended(1 + 2 * i)(q) for i in range(a.count)))
    elif a.attack == "stall":  # stream window 0, never opened: the proxy may send no DATA
        p = Peer(port, window=0)
        grpc = any(k == "content-type" for k, _ in extra)
        p.send(p.headers(1, request_fields(port, "POST" if grpc else "GET", a.path, extra),
                         end_stream=not grpc))
        if grpc:  # one empty gRPC message
            p.send(frame(DATA, END_STREAM, 1, b"\0\0\0\0\0"))
        p.pump(a.seconds, until=lambda q: "1" in q.resets or q.closed or q.goaways,
               update_windows=False)
    elif a.attack == "grpc":  # --count gRPC calls on one connection; --header on the first
        p = Peer(port)
        for i in range(a.count):
            sid = 1 + 2 * i
            p.send(p.headers(sid, request_fields(port, "POST", GRPC_EXPORT, [
                ("content-type", "application/grpc"), ("te", "trailers")] + (extra if i == 0
                                                                             else [])),
                             end_stream=False) + frame(DATA, END_STREAM, sid, b"\0\0\0\0\0"))
        p.pump(a.seconds, until=lambda q: all(ended(1 + 2 * i)(q) for i in range(a.count)))
        p.pump(a.linger, until=lambda q: q.closed)
    elif a.attack == "grpc-pause":  # HEADERS and half a message, a pause, the rest; a call after
        p = Peer(port)
        message = b"\0" + struct.pack(">I", 1000) + b"m" * 1000
        p.send(p.headers(1, grpc_fields(port, extra), end_stream=False) +
               frame(DATA, 0, 1, message[:500]))
        p.pump(a.pause, until=ended(1))
        # The call ended while its body was paused (by the proxy: nothing the client did).
        paused_end = bool(ended(1)(p))
        end_seconds = round(time.monotonic() - p.start, 3)
        if not paused_end and not p.closed:
            p.send(frame(DATA, END_STREAM, 1, message[500:]))
            p.pump(a.seconds, until=ended(1))
        elif "1" not in p.resets and not p.closed and not a.keep_open:
            # A gRPC client whose call ended while it was still sending resets its side
            # (grpc-go: RST_STREAM NO_ERROR), as RFC 9113 §8.1 lets a server ask for.
            p.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 0)))
        if not p.closed:  # the connection serves the next call (x-cell CELL-same-after)
            cell = dict(extra).get("x-cell", "") + "-same-after"
            p.send(p.headers(3, grpc_fields(port, [("x-cell", cell)]), end_stream=False) +
                   frame(DATA, END_STREAM, 3, b"\0\0\0\0\0"))
            p.pump(a.seconds, until=ended(3))
        p.report(paused_end=paused_end, end_seconds=end_seconds)
        checkpoint(p, a.hold, 1)
        return 0
    elif a.attack == "sequence":  # --count POSTs of {}, one after the other, on one connection
        p = Peer(port)
        for i in range(a.count):
            if i > 0:
                checkpoint(p, a.hold, i)
            if p.closed:
                break
            sid = 1 + 2 * i
            p.send(p.headers(sid, request_fields(port, "POST", a.path, extra), end_stream=False) +
                   frame(DATA, END_STREAM, sid, b"{}\n"))
            p.pump(a.seconds, until=ended(sid))
    else:
        print("unknown attack " + a.attack, file=sys.stderr)
        return 2
    p.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
