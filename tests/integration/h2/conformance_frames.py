#!/usr/bin/python3
"""Cases of RFC 9113 §6 for conformance.py: each frame type's rules, flow control and
CONTINUATION.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conformance_peer import (FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, PADDED,  # noqa: E402
                              PRIORITY_FRAME, PROTOCOL_ERROR, ConformancePeer, case, conn_error,
                              connection_error, get, get_slow, ignored, post_open, sends,
                              served, split_block, strm_error)
from h2peer import (ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY,  # noqa: E402
                    HEADERS, PING, RST_STREAM, SETTINGS, WINDOW_UPDATE, frame, settings)


def u32(n):
    return struct.pack(">I", n)


def open_post(p):  # setup: stream 1 open, its body to come
    post_open(p, 1)


def padded_past_block(p):  # a pad length one more than the octets after it
    block = p.block(p.fields())
    return frame(HEADERS, END_HEADERS | END_STREAM | PADDED, 1, bytes([len(block) + 1]) + block)


# 6.1 DATA, 6.2 HEADERS, 6.3 PRIORITY, 6.4 RST_STREAM.
sends("6.1", "data-stream-0", lambda p: frame(DATA, 0, 0, b"test"), conn_error(PROTOCOL_ERROR))
sends("6.1", "data-padding-too-large",  # a pad length of 5 in a payload of 5 octets
      lambda p: frame(DATA, PADDED | END_STREAM, 1, bytes([5]) + b"test"),
      conn_error(PROTOCOL_ERROR), setup=open_post)
sends("6.2", "headers-stream-0",
      lambda p: frame(HEADERS, END_HEADERS | END_STREAM, 0, p.block(p.fields())),
      conn_error(PROTOCOL_ERROR))
sends("6.2", "headers-padding-too-large", padded_past_block, conn_error(PROTOCOL_ERROR))
sends("6.3", "priority-stream-0", lambda p: frame(PRIORITY_FRAME, 0, 0, struct.pack(">IB", 1, 15)),
      conn_error(PROTOCOL_ERROR))
sends("6.3", "priority-wrong-length", lambda p: frame(PRIORITY_FRAME, 0, 1, u32(0)),
      strm_error(1, FRAME_SIZE_ERROR), setup=open_post)
sends("6.4", "rst-stream-stream-0", lambda p: frame(RST_STREAM, 0, 0, u32(8)),
      conn_error(PROTOCOL_ERROR))
sends("6.4", "rst-stream-idle", lambda p: frame(RST_STREAM, 0, 3, u32(8)),
      conn_error(PROTOCOL_ERROR))
sends("6.4", "rst-stream-wrong-length", lambda p: frame(RST_STREAM, 0, 1, b"\0\0\0"),
      conn_error(FRAME_SIZE_ERROR), setup=open_post)


# 6.5 SETTINGS (1: HEADER_TABLE_SIZE, 2: ENABLE_PUSH, 3: MAX_CONCURRENT_STREAMS,
# 4: INITIAL_WINDOW_SIZE, 5: MAX_FRAME_SIZE).
@case("6.5", "ack-sent")
def _(port):
    p = ConformancePeer(port)
    p.send(settings([(3, 50)]))
    p.wait(lambda q: q.settings_acks >= 2 or q.goaways or q.closed)
    return p, (p.settings_acks >= 2 and not p.goaways,
               "a SETTINGS ACK for the preface's SETTINGS and one for the next")


sends("6.5", "ack-with-payload", lambda p: frame(SETTINGS, ACK, 0, struct.pack(">HI", 3, 100)),
      conn_error(FRAME_SIZE_ERROR))
sends("6.5", "non-zero-stream", lambda p: frame(SETTINGS, 0, 1, struct.pack(">HI", 3, 100)),
      conn_error(PROTOCOL_ERROR))
sends("6.5", "length-not-multiple-of-6",
      lambda p: frame(SETTINGS, 0, 0, struct.pack(">HI", 3, 100)[:5]),
      conn_error(FRAME_SIZE_ERROR))
sends("6.5", "enable-push-not-0-or-1", lambda p: settings([(2, 2)]), conn_error(PROTOCOL_ERROR))
sends("6.5", "initial-window-size-over-max", lambda p: settings([(4, 1 << 31)]),
      conn_error(FLOW_CONTROL_ERROR))
sends("6.5", "max-frame-size-too-small", lambda p: settings([(5, 16383)]),
      conn_error(PROTOCOL_ERROR))
sends("6.5", "max-frame-size-too-large", lambda p: settings([(5, 1 << 24)]),
      conn_error(PROTOCOL_ERROR))


@case("6.5", "unknown-setting-ignored")
def _(port):
    p = ConformancePeer(port)
    p.send(settings([(0xFF, 1), (0x4242, 0xFFFFFFFF)]))
    p.wait(lambda q: q.settings_acks >= 2 or q.goaways or q.closed)
    ok, expected = ignored(p)
    return p, (ok and p.settings_acks >= 2, "acknowledged and " + expected)


# 6.7 PING, 6.8 GOAWAY.
@case("6.7", "ack-same-payload")
def _(port):
    p = ConformancePeer(port)
    p.send(frame(PING, 0, 0, b"h2\x00ping\xff"))
    p.wait(lambda q: q.ping_acks or q.goaways or q.closed)
    return p, (p.ping_acks == [b"h2\x00ping\xff".hex()], "a PING ACK with the same payload")


@case("6.7", "ack-not-answered")
def _(port):
    p = ConformancePeer(port)
    p.send(frame(PING, ACK, 0, b"unasked!"))
    ok, expected = ignored(p)
    return p, (ok and b"unasked!".hex() not in p.ping_acks,
               "a PING ACK is not answered; " + expected)


sends("6.7", "non-zero-stream", lambda p: frame(PING, 0, 1, b"\0" * 8),
      conn_error(PROTOCOL_ERROR))
sends("6.7", "wrong-length", lambda p: frame(PING, 0, 0, b"\0" * 6), conn_error(FRAME_SIZE_ERROR))
sends("6.8", "non-zero-stream", lambda p: frame(GOAWAY, 0, 1, struct.pack(">II", 0, 0)),
      conn_error(PROTOCOL_ERROR))


# 6.9 WINDOW_UPDATE.
sends("6.9", "zero-increment-connection", lambda p: frame(WINDOW_UPDATE, 0, 0, u32(0)),
      conn_error(PROTOCOL_ERROR))
sends("6.9", "zero-increment-stream", lambda p: frame(WINDOW_UPDATE, 0, 1, u32(0)),
      strm_error(1, PROTOCOL_ERROR), setup=open_post)
sends("6.9", "wrong-length", lambda p: frame(WINDOW_UPDATE, 0, 0, u32(1)[:3]),
      conn_error(FRAME_SIZE_ERROR))
sends("6.9.1", "overflow-connection", lambda p: frame(WINDOW_UPDATE, 0, 0, u32(0x7FFFFFFF)),
      conn_error(FLOW_CONTROL_ERROR))
sends("6.9.1", "overflow-stream", lambda p: frame(WINDOW_UPDATE, 0, 1, u32(0x7FFFFFFF)),
      strm_error(1, FLOW_CONTROL_ERROR), setup=open_post)


def body_of(p, octets, expected):
    """The verdict that stream 1's 200 brings exactly `octets` octets of body: read (opening
    no window) until DATA comes, then 0.3 s more for any DATA the windows did not allow."""
    p.wait(lambda q: q.responses.get("1", {}).get("body_bytes") or q.closed, update_windows=False)
    p.pump(0.3, update_windows=False)
    r = p.responses.get("1", {})
    return r.get("status") == "200" and r.get("body_bytes") == octets, expected


@case("6.9.1", "window-of-one-octet")
def _(port):
    p = ConformancePeer(port, window=1)
    get(p, 1)
    return p, body_of(p, 1, "with a stream window of 1, exactly 1 octet of DATA")


@case("6.9.2", "initial-window-change-applies-to-open-streams")
def _(port):
    p = ConformancePeer(port, window=0)
    get(p, 1)
    p.wait(lambda q: "status" in q.responses.get("1", {}) or q.closed, update_windows=False)
    p.send(settings([(4, 3)]))
    return p, body_of(p, 3, "window 0, then SETTINGS_INITIAL_WINDOW_SIZE 3: exactly 3 octets")


@case("6.9.2", "negative-window")
def _(port):
    p = ConformancePeer(port, window=5)
    get(p, 1)
    body = lambda q: q.responses.get("1", {}).get("body_bytes", 0)  # noqa: E731
    p.wait(lambda q: body(q) >= 5 or q.closed, update_windows=False)
    first = body(p)
    p.send(settings([(4, 2)]))  # the stream's window: 0 - 3 = -3
    p.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 3)))  # back to 0: nothing may come
    p.pump(0.3, update_windows=False)
    at_zero = body(p)
    p.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1)))  # 1: one octet
    p.wait(lambda q: body(q) > at_zero or q.closed, update_windows=False)
    p.pump(0.3, update_windows=False)
    ok = first == 5 and at_zero == 5 and body(p) == 6 and not p.goaways
    return p, (ok, "5 octets; none at window -3+3; one more at window 1 (saw %d, %d, %d)" %
               (first, at_zero, body(p)))


@case("6.9.2", "initial-window-size-change-overflows-stream")
def _(port):
    p = ConformancePeer(port)
    get_slow(p, 1)
    p.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 0x7FFFFFFF - 65535)))
    p.send(settings([(4, 65536)]))  # the open stream's window would pass 2^31-1
    return p, connection_error(p, [FLOW_CONTROL_ERROR])


# 6.10 CONTINUATION.
@case("6.10", "continuations-accepted")
def _(port):
    p = ConformancePeer(port)
    block = p.block(p.fields(extra=[("x-long", "l" * 300)]))
    p.send(frame(HEADERS, END_STREAM, 1, block[:100]) + frame(CONTINUATION, 0, 1, block[100:200]) +
           frame(CONTINUATION, END_HEADERS, 1, block[200:]))
    return p, served(p, 1)


sends("6.10", "continuation-other-stream", lambda p: split_block(p, b"", rest_on=3),
      conn_error(PROTOCOL_ERROR))
sends("6.10", "continuation-stream-0", lambda p: split_block(p, b"", rest_on=0),
      conn_error(PROTOCOL_ERROR))
sends("6.10", "continuation-after-end-headers",
      lambda p: frame(CONTINUATION, END_HEADERS, 1, p.block([("x-a", "1")])),
      conn_error(PROTOCOL_ERROR), setup=open_post)
sends("6.10", "continuation-after-ended-continuation",
      lambda p: split_block(p, b"", flags=0) +
      frame(CONTINUATION, END_HEADERS, 1, p.block([("x-a", "1")])),
      conn_error(PROTOCOL_ERROR))
sends("6.10", "data-inside-field-block",
      lambda p: split_block(p, frame(DATA, 0, 1, b"test"), p.fields("/intake/v2/events", "POST"),
                            flags=0),
      conn_error(PROTOCOL_ERROR))
sends("6.10", "continuation-after-data",
      lambda p: frame(DATA, 0, 1, b"test") + frame(CONTINUATION, END_HEADERS, 1,
                                                  p.block([("x", "1")])),
      conn_error(PROTOCOL_ERROR), setup=open_post)
