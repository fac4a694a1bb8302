#!/usr/bin/python3
"""What conformance.py's cases share: ConformancePeer (h2peer's Peer, keeping more of what the
server sends), the verdicts (connection error, stream error, malformed request, ignored,
served) and the registry of cases, filled by @case in the case modules.
"""
import os
import struct
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h2peer import (ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, HEADERS, PING,  # noqa: E402
                    SETTINGS, Peer, frame, request_fields)
PRIORITY_FRAME = 2
PADDED, PRIORITY_FLAG = 0x8, 0x20
# RFC 9113 §7 error codes.
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED = 0x0, 0x1, 0x3, 0x5
FRAME_SIZE_ERROR, REFUSED_STREAM, COMPRESSION_ERROR = 0x6, 0x7, 0x9
CODE_NAMES = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
              4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR",
              7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR",
              11: "ENHANCE_YOUR_CALM", 12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED"}
PROBE = b"conform!"  # the payload of the PING that shows a connection still works


class ConformancePeer(Peer):
    """A Peer that opens with `opening` (instead of the preface and an empty SETTINGS) and
    keeps what h2peer's report leaves out: the server's first frame and SETTINGS, SETTINGS
    ACKs, PING ACK payloads and the size of each DATA frame."""

    timeout = 2.0  # conformance.py --timeout: how long a case waits for what it expects

    def __init__(self, port, opening=None, window=None):
        self.opening = opening
        self.first_frame = None
        self.server_settings = {}
        self.settings_acks = 0
        self.ping_acks = []
        self.data_frames = {}
        Peer.__init__(self, port, window=window)

    def send(self, data, deadline=10.0):
        if self.opening is not None:
            data, self.opening = self.opening, None
        return Peer.send(self, data, deadline)

    def _on_frame(self, kind, flags, stream, payload):
        if self.first_frame is None:
            self.first_frame = [kind, flags]
        if kind == SETTINGS and flags & ACK:
            self.settings_acks += 1
        elif kind == SETTINGS:
            for off in range(0, len(payload) - 5, 6):
                key, value = struct.unpack(">HI", payload[off:off + 6])
                self.server_settings[key] = value
        elif kind == PING and flags & ACK:
            self.ping_acks.append(payload.hex())
        elif kind == DATA:
            self.data_frames.setdefault(str(stream), []).append(len(payload))
        Peer._on_frame(self, kind, flags, stream, payload)

    def fields(self, path="/", method="GET", extra=()):
        return request_fields(self.port, method, path, extra)

    def block(self, fields):
        return self.encoder.encode(fields, huffman=False)

    def probe(self):
        """Sends a PING that only a working connection answers."""
        self.send(frame(PING, 0, 0, PROBE))

    def wait(self, until, seconds=None, update_windows=True):
        """Reads until until(self) holds, for `timeout` seconds at most unless told."""
        self.pump(self.timeout if seconds is None else seconds, until=until,
                  update_windows=update_windows)

    def observed(self):
        out = {"goaways": [[g[0], CODE_NAMES.get(g[1], g[1])] for g in self.goaways],
               "resets": {s: CODE_NAMES.get(c, c) for s, c in self.resets.items()},
               "closed": self.closed, "statuses": {}, "ping_acks": len(self.ping_acks)}
        for sid, r in self.responses.items():
            if "status" in r:
                out["statuses"][sid] = r["status"]
        return out


def names(codes):
    return "/".join(CODE_NAMES[c] for c in codes)


def goaway_with(p, codes):
    return any(g[1] in codes for g in p.goaways)


def connection_error(p, codes):
    """RFC 9113 §5.4.1: a GOAWAY with one of `codes`, or (as h2spec accepts) a close."""
    p.wait(lambda q: q.goaways or q.closed)
    ok = goaway_with(p, codes) or (p.closed and not p.goaways)
    return ok, "connection error " + names(codes)


def stream_error(p, sid, codes, response_ok=False):
    """RFC 9113 §5.4.2 on stream `sid` (or a connection error with the same codes, or a close);
    with `response_ok`, a 400 answer too (a malformed request, §8.1.1)."""
    def settled(q):
        r = q.responses.get(str(sid), {})
        return q.goaways or q.closed or str(sid) in q.resets or r.get("ended") or (
            response_ok and "status" in r)
    p.wait(settled)
    ok = (p.resets.get(str(sid)) in codes or goaway_with(p, codes) or
          (p.closed and not p.goaways))
    expected = "stream error " + names(codes)
    if response_ok:
        ok = ok or p.responses.get(str(sid), {}).get("status") == "400"
        expected += " or a 400 response"
    return ok, expected


def malformed(p, sid):
    return stream_error(p, sid, [PROTOCOL_ERROR], response_ok=True)


def ignored(p):
    """The frames before were ignored: the probe PING is answered, nothing was refused."""
    p.probe()
    p.wait(lambda q: PROBE.hex() in q.ping_acks or q.goaways or q.closed)
    ok = PROBE.hex() in p.ping_acks and not p.goaways and not p.closed and not p.resets
    return ok, "ignored: the next PING is answered, no GOAWAY, RST_STREAM or close"


def served(p, sid):
    """A complete response on `sid`, and the connection still open."""
    p.wait(lambda q: q.responses.get(str(sid), {}).get("ended") or str(sid) in q.resets or
           q.goaways or q.closed)
    r = p.responses.get(str(sid), {})
    ok = bool(r.get("ended")) and r.get("status", "").startswith("2") and not p.goaways
    return ok, "a complete 2xx response on stream %d" % sid


CASES = []


def case(section, name):
    def register(fn):
        CASES.append((section + "-" + name, section, fn))
        return fn
    return register


def sends(section, name, frames_of, verdict, setup=None):
    """Registers a case: on a fresh connection, setup(p), then send frames_of(p); the case's
    result is verdict(p)."""
    @case(section, name)
    def _(port):
        p = ConformancePeer(port)
        if setup is not None:
            setup(p)
        p.send(frames_of(p))
        return p, verdict(p)


def conn_error(*codes):
    """The verdict: a connection error with one of `codes`."""
    return lambda p: connection_error(p, list(codes))


def strm_error(sid, *codes):
    """The verdict: a stream error on `sid` with one of `codes`."""
    return lambda p: stream_error(p, sid, list(codes))


def split_block(p, middle, fields=None, rest_on=1, flags=END_STREAM):
    """A request's field block on stream 1 cut in two: HEADERS with its first 5 octets (no
    END_HEADERS), then `middle`, then a CONTINUATION with the rest on stream `rest_on`."""
    block = p.block(p.fields() if fields is None else fields)
    return (frame(HEADERS, flags, 1, block[:5]) + middle +
            frame(CONTINUATION, END_HEADERS, rest_on, block[5:]))


# A request head left open (no END_STREAM) for a body that follows; x-demo-delay holds the
# upstream's answer back so the stream stays where the case needs it.
def post_open(p, sid, extra=()):
    p.send(frame(HEADERS, END_HEADERS, sid,
                 p.block(p.fields("/intake/v2/events", "POST", list(extra)))))


def get_slow(p, sid):  # half-closed (remote) for a second: the upstream answers late
    p.send(frame(HEADERS, END_HEADERS | END_STREAM, sid,
                 p.block(p.fields(extra=[("x-demo-delay", "1000")]))))


def get(p, sid, extra=()):
    p.send(frame(HEADERS, END_HEADERS | END_STREAM, sid, p.block(p.fields(extra=list(extra)))))


def run(name, section, fn, port):
    start = time.monotonic()
    try:
        p, (ok, expected) = fn(port)
        observed = p.observed()
        p.sock.close()
    except Exception:  # a broken case is a failure of this script, reported as such
        ok, expected, observed = False, "the case to run", {"error": traceback.format_exc()}
    return {"case": name, "section": section, "expected": expected, "observed": observed,
            "pass": bool(ok), "seconds": round(time.monotonic() - start, 3)}
