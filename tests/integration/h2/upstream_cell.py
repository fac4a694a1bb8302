#!/usr/bin/python3
"""A scripted h2c upstream for the upstream-fault matrix (upstream_fault_matrix_h2c_test.cc).

It serves gRPC calls over h2c with prior knowledge on 127.0.0.1 (a kernel-chosen port,
written as `port=N` to READY) and misbehaves on cue: the first call whose `x-cell` field
names a cell (STATE-FAULT, STATE one of FAULT_STATES) meets that cell's fault; later
calls of the cell, calls named CELL-after, and every other call are answered
`grpc-status: 0`. A connection accepted while the file MODE names a connection
cell (no-settings, connect-close, connect-rst) meets that fault before any frame. The
faults after a call was answered (idle-*) hit the connection that answered it.

  upstream_cell.py READY RECORDS MODE

RECORDS gets one JSON line per call the upstream took: {"cell", "conn", "stream",
"processed"} (processed false for a call it refused or left above its GOAWAY), and
{"event": "accepted" | "closed", "conn", ...} for each connection ("ended": "peer" when the
proxy closed it, "fault" when the script did), and {"event": "stream", "cell", ...} for each
stream opened. A call whose cell is midbody-FAULT meets its fault once part of its body came,
before the body's end (Conn.midbody_fault). Runs until killed.
"""
import json
import os
import socket
import struct
import sys
import threading

import hpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h2peer import (ACK, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS,  # noqa: E402
                    PING, RST_STREAM, SETTINGS, frame, settings)

PREFACE_LEN = 24
NO_ERROR, REFUSED_STREAM = 0, 7
OK_MESSAGE = b"\0\0\0\0\0"  # one empty gRPC message
FAULT_STATES = ("waiting", "head", "data", "trailers", "idle")
# midbody-FAULT, while the call's body is still arriving (Conn.midbody_fault): rst-stream-N,
# close, rst, goaway-below, goaway-covered, goaway-covered-close, early, early-rst-stream-0.
EARLY_STATUS = "3"  # INVALID_ARGUMENT: a server that ends a call before reading all of it
lock = threading.Lock()
seen_cells = set()


def record(path, entry):
    with lock, open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")


def first_of(cell):
    """True for the first call of `cell` (the one that meets its fault)."""
    with lock:
        if cell in seen_cells:
            return False
        seen_cells.add(cell)
        return True


class Conn:
    def __init__(self, sock, index, records):
        self.sock, self.index, self.records = sock, index, records
        self.encoder, self.decoder = hpack.Encoder(), hpack.Decoder()
        self.buf = b""
        self.streams = {}  # id -> {"cell": str, "ended": bool}
        self.idle_fault = None
        self.goaway_last = None  # streams above it are left unprocessed (RFC 9113 §6.8)

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def headers(self, stream, fields, end_stream=False):
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        return frame(HEADERS, flags, stream, self.encoder.encode(fields))

    def answer(self, stream, status="0"):
        self.send(self.headers(stream, [(":status", "200"), ("content-type", "application/grpc")])
                  + frame(DATA, 0, stream, OK_MESSAGE)
                  + self.headers(stream, [("grpc-status", status)], end_stream=True))

    def read_frame(self):
        """One frame (kind, flags, stream, payload), or None when the peer closed."""
        while True:
            if len(self.buf) >= 9:
                length = struct.unpack(">I", b"\0" + self.buf[:3])[0]
                if len(self.buf) >= 9 + length:
                    kind, flags, stream = struct.unpack(">BBI", self.buf[3:9])
                    payload = self.buf[9:9 + length]
                    self.buf = self.buf[9 + length:]
                    return kind, flags, stream & 0x7FFFFFFF, payload
            if not self.recv_more():
                return None

    def recv_more(self):
        """Appends what arrives to the buffer; False when the peer closed."""
        try:
            chunk = self.sock.recv(65536)
        except OSError:
            return False
        self.buf += chunk
        return bool(chunk)

    def wait_close(self):
        while self.read_frame() is not None:
            pass

    def reset(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def fault(self, cell, stream):
        """The cell's fault once the call on `stream` arrived whole. True: the connection
        goes on; False: it ends here."""
        head = [(":status", "200"), ("content-type", "application/grpc")]
        state, _, what = cell.partition("-")
        if state == "idle":  # answered; the fault comes once nothing is open
            record(self.records, {"cell": cell, "conn": self.index, "stream": stream,
                                  "processed": True})
            self.answer(stream)
            self.idle_fault = what
            return True
        one_read = what.endswith("-oneread")  # the fault in the same write as the answer
        what = what[:-len("-oneread")] if one_read else what
        if what.startswith("rst-stream-"):
            code = int(what.rsplit("-", 1)[1])
            processed = code != REFUSED_STREAM
        else:
            processed = what != "goaway-below"
        record(self.records, {"cell": cell, "conn": self.index, "stream": stream,
                              "processed": processed})
        answered = b""
        if state == "head":
            answered = self.headers(stream, head)
        elif state == "data":
            answered = self.headers(stream, head) + frame(DATA, 0, stream, OK_MESSAGE[:3])
        elif state == "trailers":
            answered = self.headers(stream, head) + frame(DATA, 0, stream, OK_MESSAGE)
        if answered and not one_read:
            self.send(answered)
            answered = b""
        if what == "close":
            return False
        if what == "rst":
            self.reset()
            return False
        if what == "stall":  # this call is never answered; the connection serves others
            return True
        if what.startswith("rst-stream-"):
            self.send(answered + frame(RST_STREAM, 0, stream, struct.pack(">I", code)))
            return True
        if what == "goaway-below":  # the call is above last-stream-id: not processed
            self.send(frame(GOAWAY, 0, 0, struct.pack(">II", stream - 2 if stream > 2 else 0,
                                                      NO_ERROR)))
            self.wait_close()
            return False
        if what == "goaway-covered":  # answered, then the connection is let go
            self.send(frame(GOAWAY, 0, 0, struct.pack(">II", stream, NO_ERROR)))
            self.answer(stream)
            self.wait_close()
            return False
        if what == "goaway-covered-close":  # covered, never answered: maybe processed
            self.send(frame(GOAWAY, 0, 0, struct.pack(">II", stream, NO_ERROR)))
            return False
        if what == "lie-no-status":  # a response head without :status (RFC 9113 §8.3.2)
            self.send(self.headers(stream, [("content-type", "application/grpc")]))
            return True
        if what == "lie-data-after-end":  # DATA on a stream already ended
            self.answer(stream)
            self.send(frame(DATA, 0, stream, OK_MESSAGE))
            return True
        raise ValueError("unknown cell " + cell)

    def midbody_fault(self, cell, stream):
        """The fault of a midbody cell, part of the call's body received and not its end.
        True: the connection goes on; False: it ends here."""
        what = cell.split("-", 1)[1]
        s = self.streams[stream]
        s["done"] = True  # whatever comes later on this stream is not a call
        early = what.startswith("early")
        record(self.records, {"cell": cell, "conn": self.index, "stream": stream,
                              "processed": early})
        if what.startswith("rst-stream-"):
            self.send(frame(RST_STREAM, 0, stream, struct.pack(">I", int(what.rsplit("-", 1)[1]))))
            return True
        if what == "close":
            return False
        if what == "rst":
            self.reset()
            return False
        if what.startswith("goaway-"):  # below: the call not processed (RFC 9113 §6.8)
            self.goaway_last = stream if what.startswith("goaway-covered") else stream - 2
            self.send(frame(GOAWAY, 0, 0, struct.pack(">II", max(self.goaway_last, 0),
                                                      NO_ERROR)))
            s["done"] = what != "goaway-covered"  # covered: its end is answered
            return what != "goaway-covered-close"
        if early:  # the whole answer now; then, RFC 9113 §8.1, maybe "stop sending"
            self.answer(stream, EARLY_STATUS)
            if what == "early-rst-stream-0":
                self.send(frame(RST_STREAM, 0, stream, struct.pack(">I", NO_ERROR)))
            return True
        raise ValueError("unknown cell " + cell)

    def serve(self):
        """Frames until the peer closes ("peer") or a fault ends the connection ("fault")."""
        self.send(settings([(3, 100)]))
        if self.read_exact_preface() is False:
            return "peer"
        while True:
            if self.idle_fault and not any(not s["ended"] for s in self.streams.values()):
                fault, self.idle_fault = self.idle_fault, None
                if fault == "close":
                    return "fault"
                if fault == "rst":
                    self.reset()
                    return "fault"
                if fault == "goaway":
                    self.goaway_last = max(self.streams)
                    self.send(frame(GOAWAY, 0, 0, struct.pack(">II", self.goaway_last,
                                                              NO_ERROR)))
            got = self.read_frame()
            if got is None:
                return "peer"
            kind, flags, stream, payload = got
            if kind == SETTINGS and not flags & ACK:
                self.send(frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                self.send(frame(PING, ACK, 0, payload))
            elif kind == HEADERS:
                fields = dict(self.decoder.decode(payload))
                self.streams[stream] = {"cell": fields.get("x-cell", ""), "ended": False}
                record(self.records, {"event": "stream", "cell": fields.get("x-cell", ""),
                                      "conn": self.index, "stream": stream})
            s = self.streams.get(stream)
            if (kind == DATA and payload and not flags & END_STREAM and s and not s["ended"]
                    and s["cell"].startswith("midbody-") and not s["cell"].endswith("-after")
                    and first_of(s["cell"])):
                if not self.midbody_fault(s["cell"], stream):
                    return "fault"
                continue
            if kind in (HEADERS, DATA) and flags & END_STREAM and s and s.get("done"):
                s["ended"] = True  # a midbody cell's stream, already faulted
            elif kind in (HEADERS, DATA) and flags & END_STREAM and stream in self.streams:
                s = self.streams[stream]
                s["ended"] = True
                cell = s["cell"]
                if self.goaway_last is not None and stream > self.goaway_last:
                    record(self.records, {"cell": cell, "conn": self.index, "stream": stream,
                                          "processed": False})
                elif (cell.split("-")[0] in FAULT_STATES and not cell.endswith("-after")
                        and first_of(cell)):
                    if not self.fault(s["cell"], stream):
                        return "fault"
                else:
                    record(self.records, {"cell": s["cell"], "conn": self.index,
                                          "stream": stream, "processed": True})
                    self.answer(stream)

    def read_exact_preface(self):
        while len(self.buf) < PREFACE_LEN:
            if not self.recv_more():
                return False
        self.buf = self.buf[PREFACE_LEN:]
        return True


def run(sock, index, records, mode_path):
    try:
        mode = open(mode_path).read().strip()
    except OSError:
        mode = ""
    conn = Conn(sock, index, records)
    record(records, {"event": "accepted", "conn": index, "mode": mode})
    ended = "fault"
    if mode == "connect-rst":
        conn.reset()
    elif mode == "no-settings":  # never a SETTINGS frame: the proxy's connect_timeout ends it
        conn.wait_close()
        ended = "peer"
    elif mode != "connect-close":
        ended = conn.serve()
    record(records, {"event": "closed", "conn": index, "ended": ended})
    sock.close()


def main():
    ready, records, mode_path = sys.argv[1:4]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    tmp = ready + ".tmp"
    with open(tmp, "w") as f:
        f.write("port=%d\n" % listener.getsockname()[1])
    os.rename(tmp, ready)
    index = 0
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=run, args=(sock, index, records, mode_path), daemon=True).start()
        index += 1


if __name__ == "__main__":
    main()
