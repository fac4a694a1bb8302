#!/usr/bin/python3
"""One cell of the HTTP/2 client-fault matrix (tests/integration/client_fault_matrix_http2_test.cc).

Over TLS with ALPN h2 (h2peer.py's Peer), it brings stream 1 of a connection into STATE,
then does FAULT, reads what comes back for a bounded time and prints h2peer's JSON report.

  fault_cell.py PORT CAFILE RECORDS STATE FAULT CELL

STATE: preface (half the connection preface sent), headers (a HEADERS frame without
END_HEADERS), data (content-length 100, 50 bytes sent), waiting (the request whole, the
upstream answering after 1.5 s), streaming (a 32 MiB response under way), idle (stream 1
answered, nothing open).
FAULT: fin (shut down writing), rst (TCP reset), rst-stream (RST_STREAM CANCEL), stall
(send nothing more; while streaming, read on but never open the windows), lie (the
state's protocol lie, see LIES below).
CELL names the request (x-cell), so the test finds it in the upstream's records; RECORDS
is that record file, which the waiting state reads to know the upstream has the request.
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h2peer import (ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, HEADERS,  # noqa: E402
                    RST_STREAM, SETTINGS, WINDOW_UPDATE, Peer, ended, frame, request_fields)

STREAMED = 32 << 20


class FaultPeer(Peer):
    """A Peer that notes the proxy's SETTINGS, and with `half` sends only the first half of
    the connection preface and nothing after it."""
    half = False
    settings_seen = False
    sent_once = False

    def send(self, data, deadline=10.0):
        if self.half and self.sent_once:
            return True
        self.sent_once = True
        return Peer.send(self, data[:12] if self.half else data, deadline)

    def _on_frame(self, kind, flags, stream, payload):
        if kind == SETTINGS and not flags & ACK:
            self.settings_seen = True
        Peer._on_frame(self, kind, flags, stream, payload)


def recorded(path, cell):
    """True once the upstream's record file holds the request named `cell`."""
    try:
        with open(path) as f:
            return any('"%s"' % cell in line for line in f)
    except OSError:
        return False


# What each state's lie sends.
LIES = {
    # The rest of the preface, wrong: not the magic an HTTP/2 client sends.
    "preface": b"\r\n\r\nXX\r\n\r\n" + frame(SETTINGS, 0, 0),
    # A CONTINUATION for another stream while stream 1's block is open (RFC 9113 §6.10).
    "headers": frame(CONTINUATION, END_HEADERS, 3, b"\x82"),
    # END_STREAM after 60 of the 100 bytes content-length announced (RFC 9113 §8.1.1).
    "data": frame(DATA, END_STREAM, 1, b"d" * 10),
    # DATA on a stream the client already ended (RFC 9113 §5.1, half-closed (remote)).
    "waiting": frame(DATA, 0, 1, b"d" * 10),
    # Window increments past 2^31-1 (RFC 9113 §6.9.1: FLOW_CONTROL_ERROR).
    "streaming": frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 0x7FFFFFFF)) * 2,
    # DATA on stream 0 (RFC 9113 §6.1: connection error PROTOCOL_ERROR).
    "idle": frame(DATA, 0, 0, b"d" * 10),
}


def main():
    port, ca, records, state, fault, cell = sys.argv[1:7]
    port = int(port)
    Peer.tls_ca = ca
    FaultPeer.half = state == "preface"
    p = FaultPeer(port)
    if state != "preface":
        # Acknowledge the proxy's SETTINGS first: inside an open header block the ACK would
        # itself be a protocol error.
        p.pump(5.0, until=lambda q: q.settings_seen)
    post = request_fields(port, "POST", "/intake/v2/events",
                          [("x-cell", cell), ("content-type", "application/x-ndjson"),
                           ("content-length", "100")])
    if state == "headers":
        block = p.encoder.encode(post, huffman=False)
        p.send(frame(HEADERS, 0, 1, block[:len(block) // 2]))
    elif state == "data":
        p.send(p.headers(1, post, end_stream=False) + frame(DATA, 0, 1, b"d" * 50))
    elif state == "waiting":
        p.send(p.headers(1, post + [("x-demo-delay", "1500ms")], end_stream=False) +
               frame(DATA, END_STREAM, 1, b"d" * 100))
        deadline = time.monotonic() + 5.0
        while not recorded(records, cell):
            if time.monotonic() > deadline:
                print("the upstream never recorded " + cell, file=sys.stderr)
                return 3
            p.pump(0.02)
    elif state == "streaming":
        p.send(p.headers(1, request_fields(port, "GET", "/large", [
            ("x-cell", cell), ("x-demo-behavior", "large-response"),
            ("x-demo-size", str(STREAMED))])))
        p.pump(5.0, until=lambda q: q.responses.get("1", {}).get("body_bytes", 0) > 0)
    elif state == "idle":
        p.send(p.headers(1, post, end_stream=False) + frame(DATA, END_STREAM, 1, b"d" * 100))
        p.pump(5.0, until=ended(1))
    reached = dict(p.responses.get("1", {}))
    reached.pop("block", None)

    if fault == "fin":
        socket.socket.shutdown(p.sock, socket.SHUT_WR)  # the TCP FIN alone, no close_notify
    elif fault == "rst":
        p.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        p.sock.close()
        p.report(reached=reached)
        return 0
    elif fault == "rst-stream":
        Peer.send(p, frame(RST_STREAM, 0, 5 if state == "idle" else 1, struct.pack(">I", 8)))
    elif fault == "lie":
        Peer.send(p, LIES[state])
    # Read until the proxy ends stream 1 (a stream still open) or closes the connection;
    # every deadline of the proxy is short. A stalled stream reads on without windows.
    open_stream = state in ("data", "waiting", "streaming")
    p.pump(8.0, until=lambda q: q.closed or (open_stream and ended(1)(q)),
           update_windows=not (fault == "stall" and state == "streaming"))
    p.report(reached=reached)
    return 0


if __name__ == "__main__":
    sys.exit(main())
