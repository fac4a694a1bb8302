#!/usr/bin/python3
"""An h2spec-style HTTP/2 conformance suite for the proxy (http2_conformance_test.cc).

Each case opens a fresh connection to 127.0.0.1:PORT (h2c with prior knowledge, or TLS with
ALPN h2: --tls CAFILE), sends what RFC 9113 or RFC 7541 says a server must refuse, ignore or
answer in a given way, and prints one JSON line:

  {"case": "6.5-ack-with-payload", "section": "6.5", "expected": "...",
   "observed": {"goaways": [[0, "FRAME_SIZE_ERROR"]], "closed": false, ...}, "pass": true}

The cases are written from the RFCs, not taken from h2spec. As h2spec does, a connection
error passes on a GOAWAY with the required code or on a close; a stream error passes on a
RST_STREAM or GOAWAY with the required code, or a close; where the RFC allows either error
(or a response for a malformed request, RFC 9113 §8.1.1), either passes. Frames are built
with h2peer.py's helpers and read by its Peer (conformance_peer.py); the cases of §3 to §5
are in conformance_streams.py, those of §6 in conformance_frames.py, §8 and HPACK here.

  conformance.py PORT [--tls CAFILE] [--case NAME]... [--timeout SECONDS] [--list]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance_streams  # noqa: E402 (first: its cases run first)
import conformance_frames  # noqa: E402
from conformance_peer import (CASES, COMPRESSION_ERROR, PROTOCOL_ERROR,  # noqa: E402
                              ConformancePeer, conn_error, malformed, post_open, run, sends,
                              served, strm_error)
from h2peer import DATA, END_HEADERS, END_STREAM, HEADERS, Peer, frame  # noqa: E402


# 8.1: HTTP message exchanges. A POST's head is open on stream 1, then:
def open_post(p):
    post_open(p, 1)


def trailers(flags, fields, body=b"{}\n"):  # a DATA frame (unless body is empty), then HEADERS
    data = frame(DATA, 0, 1, body) if body else b""
    return lambda p: data + frame(HEADERS, flags, 1, p.block(fields))


sends("8.1", "second-headers-without-end-stream", trailers(END_HEADERS, [("x-t", "1")], b""),
      strm_error(1, PROTOCOL_ERROR), setup=open_post)
sends("8.1", "trailers-without-end-stream", trailers(END_HEADERS, [("x-t", "1")]),
      strm_error(1, PROTOCOL_ERROR), setup=open_post)
sends("8.1", "pseudo-header-in-trailers",
      trailers(END_HEADERS | END_STREAM, [(":method", "POST")]), strm_error(1, PROTOCOL_ERROR),
      setup=open_post)
sends("8.1", "trailers-accepted", trailers(END_HEADERS | END_STREAM, [("x-trailer", "1")]),
      lambda p: served(p, 1), setup=open_post)


# 8.1.2 (RFC 9113 §8.2, §8.3): field validity; each is a malformed request (§8.1.1).
def head_case(name, fields_of):
    sends("8.1.2", name,
          lambda p: frame(HEADERS, END_HEADERS | END_STREAM, 1, p.block(fields_of(p))),
          lambda p: malformed(p, 1))


def without(name):
    return lambda p: [f for f in p.fields() if f[0] != name]


head_case("uppercase-field-name", lambda p: p.fields(extra=[("X-Upper", "1")]))
head_case("pseudo-header-after-regular", lambda p: [f for f in p.fields() if f[0] != ":path"] +
          [("x-a", "1"), (":path", "/")])
head_case("unknown-pseudo-header", lambda p: p.fields(extra=[(":foo", "bar")]))
head_case("response-pseudo-header", lambda p: p.fields(extra=[(":status", "200")]))
head_case("duplicate-path", lambda p: p.fields() + [(":path", "/")])
head_case("duplicate-method", lambda p: [(":method", "GET")] + p.fields())
head_case("missing-method", without(":method"))
head_case("missing-scheme", without(":scheme"))
head_case("missing-path", without(":path"))
head_case("empty-path", lambda p: without(":path")(p) + [(":path", "")])
head_case("connection", lambda p: p.fields(extra=[("connection", "keep-alive")]))
head_case("keep-alive", lambda p: p.fields(extra=[("keep-alive", "timeout=5")]))
head_case("proxy-connection", lambda p: p.fields(extra=[("proxy-connection", "keep-alive")]))
head_case("transfer-encoding", lambda p: p.fields(extra=[("transfer-encoding", "chunked")]))
head_case("upgrade", lambda p: p.fields(extra=[("upgrade", "h2c")]))
head_case("te-not-trailers", lambda p: p.fields(extra=[("te", "trailers, deflate")]))
head_case("nul-in-value", lambda p: p.fields(extra=[("x-a", "a\0b")]))


sends("8.1.2", "te-trailers-accepted",
      lambda p: frame(HEADERS, END_HEADERS | END_STREAM, 1,
                      p.block(p.fields(extra=[("te", "trailers")]))),
      lambda p: served(p, 1))


# 8.1.2.6 (RFC 9113 §8.1.1): content-length against the DATA frames' payload.
sends("8.1.2.6", "content-length-less-than-data", lambda p: frame(DATA, END_STREAM, 1, b"test"),
      strm_error(1, PROTOCOL_ERROR), setup=lambda p: post_open(p, 1, [("content-length", "1")]))
sends("8.1.2.6", "content-length-more-than-data",
      lambda p: frame(DATA, 0, 1, b"test") + frame(DATA, END_STREAM, 1, b"test"),
      strm_error(1, PROTOCOL_ERROR), setup=lambda p: post_open(p, 1, [("content-length", "10")]))


# RFC 7541 (HPACK): decoding errors are COMPRESSION_ERROR connection errors (RFC 9113 §4.3).
def hpack_case(name, block_of):
    sends("hpack", name, lambda p: frame(HEADERS, END_HEADERS | END_STREAM, 1, block_of(p)),
          conn_error(COMPRESSION_ERROR))


# A size update to 4097, over SETTINGS_HEADER_TABLE_SIZE's default of 4096 (§6.3, §4.2).
hpack_case("table-size-update-over-setting", lambda p: b"\x3f\xe2\x1f" + p.block(p.fields()))
# A size update after the first field (§4.2: only at the start of a block).
hpack_case("table-size-update-after-field", lambda p: p.block(p.fields()) + b"\x20")
hpack_case("index-zero", lambda p: p.block(p.fields()) + b"\x80")  # §6.1
hpack_case("index-past-tables", lambda p: p.block(p.fields()) + b"\xff\x00")  # 127, §2.3.3
# A literal whose Huffman value ends in padding of zeros, not EOS's ones (§5.2).
hpack_case("huffman-bad-padding", lambda p: p.block(p.fields()) + b"\x00\x03x-a\x81\x00")
# A string length over 2^32 (§5.1): an integer the decoder cannot hold.
hpack_case("integer-overflow", lambda p: p.block(p.fields()) + b"\x00\x7f" + b"\xff" * 10 + b"\x01")


# The modules whose cases registered on import (§3 to §5, then §6), before this file's own.
CASE_MODULES = (conformance_streams, conformance_frames)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("port", type=int)
    ap.add_argument("--tls", metavar="CAFILE", help="TLS (ALPN h2) instead of h2c")
    ap.add_argument("--case", action="append", default=[], help="only these cases")
    ap.add_argument("--timeout", type=float, default=ConformancePeer.timeout)
    ap.add_argument("--list", action="store_true", help="print the case names and stop")
    a = ap.parse_args()
    Peer.tls_ca = a.tls
    ConformancePeer.timeout = a.timeout
    for name, section, fn in CASES:
        if a.list:
            print(name)
        elif not a.case or name in a.case:
            print(json.dumps(run(name, section, fn, a.port), sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
