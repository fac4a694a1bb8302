#!/usr/bin/python3
"""Cases of RFC 9113 §3 to §5 for conformance.py: the preface, frame format and size, header
compression, stream states and identifiers, concurrency, dependencies, connection errors and
extensions.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conformance_peer import (COMPRESSION_ERROR, FRAME_SIZE_ERROR,  # noqa: E402
                              PRIORITY_FLAG, PRIORITY_FRAME, PROTOCOL_ERROR, REFUSED_STREAM,
                              STREAM_CLOSED, ConformancePeer, case, conn_error, connection_error,
                              get, get_slow, ignored, post_open, sends, served, split_block,
                              stream_error, strm_error)
from h2peer import (ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, HEADERS,  # noqa: E402
                    PING, PREFACE, RST_STREAM, SETTINGS, WINDOW_UPDATE, frame, settings)


def u32(n):
    return struct.pack(">I", n)


# 3.4 (RFC 7540 §3.5): the connection preface.
@case("3.4", "invalid-preface")
def _(port):
    p = ConformancePeer(port, opening=b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + settings([]))
    return p, connection_error(p, [PROTOCOL_ERROR])


@case("3.4", "preface-without-settings")
def _(port):
    p = ConformancePeer(port, opening=PREFACE + frame(PING, 0, 0, b"\0" * 8))
    return p, connection_error(p, [PROTOCOL_ERROR])


@case("3.4", "server-settings-first")
def _(port):
    p = ConformancePeer(port)
    p.wait(lambda q: q.first_frame is not None)
    return p, (p.first_frame == [SETTINGS, 0], "the server's first frame is SETTINGS (no ACK)")


# 4.1: frame format.
sends("4.1", "unknown-frame-type", lambda p: frame(0x16, 0, 0, b"unknown"), ignored)


@case("4.1", "unknown-flags")
def _(port):
    p = ConformancePeer(port)
    p.send(frame(PING, 0xFE & ~ACK, 0, b"flags!!!"))
    p.wait(lambda q: b"flags!!!".hex() in q.ping_acks or q.goaways or q.closed)
    return p, (b"flags!!!".hex() in p.ping_acks and not p.goaways,
               "a PING with unknown flags is answered as any PING")


sends("4.1", "reserved-bit",
      lambda p: frame(HEADERS, END_HEADERS | END_STREAM, 1 | 0x80000000, p.block(p.fields())),
      lambda p: served(p, 1))


# 4.2: frame size.
sends("4.2", "data-at-max-frame-size", lambda p: frame(DATA, END_STREAM, 1, b"x" * 16384),
      lambda p: served(p, 1), setup=lambda p: post_open(p, 1, [("content-length", "16384")]))
sends("4.2", "data-over-max-frame-size", lambda p: frame(DATA, END_STREAM, 1, b"x" * 16385),
      strm_error(1, FRAME_SIZE_ERROR), setup=lambda p: post_open(p, 1))
sends("4.2", "headers-over-max-frame-size",
      lambda p: frame(HEADERS, END_HEADERS | END_STREAM, 1, p.block(p.fields(extra=[
          ("x-pad%d" % i, "p" * 100) for i in range(170)]))[:16385]),
      conn_error(FRAME_SIZE_ERROR))


# 4.3: header compression, and a field block is one unbroken run of frames.
sends("4.3", "invalid-field-block",  # a new name's length claims more octets than are left
      lambda p: frame(HEADERS, END_HEADERS | END_STREAM, 1,
                      p.block(p.fields()) + b"\x00\x7f\x00x"),
      conn_error(COMPRESSION_ERROR))
sends("4.3", "priority-inside-field-block",
      lambda p: split_block(p, frame(PRIORITY_FRAME, 0, 1, struct.pack(">IB", 0, 15))),
      conn_error(PROTOCOL_ERROR))
sends("4.3", "headers-other-stream-inside-field-block",
      lambda p: split_block(p, frame(HEADERS, END_STREAM | END_HEADERS, 3, b"\x82\x86\x84")),
      conn_error(PROTOCOL_ERROR))


# 5.1: stream states. Idle: only HEADERS and PRIORITY (§5.1; §6.1 also lets a DATA outside
# open streams be STREAM_CLOSED).
sends("5.1", "idle-data", lambda p: frame(DATA, END_STREAM, 1, b"test"),
      conn_error(PROTOCOL_ERROR, STREAM_CLOSED))
sends("5.1", "idle-rst-stream", lambda p: frame(RST_STREAM, 0, 1, u32(8)),
      conn_error(PROTOCOL_ERROR))
sends("5.1", "idle-window-update", lambda p: frame(WINDOW_UPDATE, 0, 1, u32(100)),
      conn_error(PROTOCOL_ERROR))
sends("5.1", "idle-continuation",
      lambda p: frame(CONTINUATION, END_HEADERS, 1, p.block(p.fields())),
      conn_error(PROTOCOL_ERROR))
sends("5.1", "idle-priority-allowed",
      lambda p: frame(PRIORITY_FRAME, 0, 3, struct.pack(">IB", 0, 15)), ignored)
sends("5.1", "half-closed-remote-window-update-allowed",
      lambda p: frame(WINDOW_UPDATE, 0, 1, u32(100)), ignored, setup=lambda p: get_slow(p, 1))


def after_reset(p):  # stream 1 opened, then reset by the client
    post_open(p, 1)
    p.send(frame(RST_STREAM, 0, 1, u32(8)))


def after_end_stream(p):  # stream 1 answered whole: closed by END_STREAM both ways
    get(p, 1)
    p.wait(lambda q: q.responses.get("1", {}).get("ended") or q.closed)
    p.answered = p.responses.pop("1", {})  # what follows is the reply to the frame after it


# Stream 1 half-closed (remote) or closed, then DATA, HEADERS or CONTINUATION on it: a
# stream (or connection) error STREAM_CLOSED (§5.1), or for a CONTINUATION that follows no
# HEADERS, a connection error PROTOCOL_ERROR (§6.10).
STATES = [("half-closed-remote", lambda p: get_slow(p, 1)), ("closed-after-rst", after_reset),
          ("closed-after-end-stream", after_end_stream)]
FRAMES = [("data", lambda p: frame(DATA, END_STREAM, 1, b"test"), strm_error(1, STREAM_CLOSED)),
          ("headers", lambda p: frame(HEADERS, END_HEADERS | END_STREAM, 1,
                                      p.block([("x-trailer", "1")])),
           strm_error(1, STREAM_CLOSED)),
          ("continuation", lambda p: frame(CONTINUATION, END_HEADERS, 1, p.block([("x-a", "1")])),
           conn_error(PROTOCOL_ERROR))]
for state, setup in STATES:
    for kind, frames_of, verdict in FRAMES:
        sends("5.1", state + "-" + kind, frames_of, verdict, setup=setup)


# 5.1.1: stream identifiers.
sends("5.1.1", "even-stream-id",
      lambda p: frame(HEADERS, END_HEADERS | END_STREAM, 2, p.block(p.fields())),
      conn_error(PROTOCOL_ERROR))
sends("5.1.1", "decreasing-stream-id",
      lambda p: frame(HEADERS, END_HEADERS | END_STREAM, 3, p.block(p.fields())),
      conn_error(PROTOCOL_ERROR), setup=lambda p: get(p, 5))


# 5.1.2: stream concurrency.
@case("5.1.2", "over-max-concurrent-streams")
def _(port):
    p = ConformancePeer(port)
    p.wait(lambda q: 3 in q.server_settings or q.settings_acks)  # MAX_CONCURRENT_STREAMS
    limit = p.server_settings.get(3)
    if limit is None or limit > 200:
        return p, (False, "a SETTINGS_MAX_CONCURRENT_STREAMS of at most 200 to exceed")
    for i in range(limit + 1):
        post_open(p, 1 + 2 * i)
    last = 1 + 2 * limit
    return p, stream_error(p, last, [PROTOCOL_ERROR, REFUSED_STREAM])


# 5.3.1: a stream cannot depend on itself.
sends("5.3.1", "headers-self-dependency",
      lambda p: frame(HEADERS, END_HEADERS | END_STREAM | PRIORITY_FLAG, 1,
                      struct.pack(">IB", 1, 15) + p.block(p.fields())),
      strm_error(1, PROTOCOL_ERROR))
sends("5.3.1", "priority-self-dependency",
      lambda p: frame(PRIORITY_FRAME, 0, 1, struct.pack(">IB", 1, 15)),
      strm_error(1, PROTOCOL_ERROR))


# 5.4.1: a connection error ends in GOAWAY naming the last stream processed, then a close.
@case("5.4.1", "goaway-then-close")
def _(port):
    p = ConformancePeer(port)
    get(p, 1)
    p.wait(lambda q: q.responses.get("1", {}).get("ended") or q.closed)
    p.send(frame(PING, 0, 0, b"\0" * 6))
    p.wait(lambda q: q.closed)
    ok = p.closed and len(p.goaways) == 1 and p.goaways[0] == [1, FRAME_SIZE_ERROR]
    return p, (ok, "GOAWAY FRAME_SIZE_ERROR with last stream 1, then the connection closed")


# 5.5: extensions: unknown frame types are ignored, except inside a field block.
sends("5.5", "unknown-extension-frame",
      lambda p: frame(0xFF, 0xFF, 0, b"extension") + frame(0xFE, 0, 1, b"on an idle stream"),
      ignored)
sends("5.5", "unknown-extension-inside-field-block",
      lambda p: split_block(p, frame(0xFF, 0, 1, b"x")), conn_error(PROTOCOL_ERROR))
