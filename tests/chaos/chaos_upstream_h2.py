"""The chaos upstream's h2c side (a connection that starts with the HTTP/2 preface: the
proxy's gRPC calls), with the same records as the HTTP/1.1 side: "OK <id>" once a
stream's body arrived whole and intact, before any byte of its response; "CORRUPT <id>";
"FAULT-<name> <id>" first for a fault chosen for it.

Faults per stream (--faults 0 turns them off):
  refuse     RST_STREAM REFUSED_STREAM on its HEADERS, before reading anything: not
             processed (RFC 9113 8.7), so the proxy may send it again
  cut        the response head and part of the body, then RST_STREAM INTERNAL_ERROR
  stall      no response at all (the proxy's upstream deadlines end it)
  error      a trailers-only answer with grpc-status 13
  close      the whole connection reset once its body arrived (and was recorded)
  goaway     answered, then GOAWAY NO_ERROR naming it last: later streams are not
             processed, and the connection closes once the streams it covers end
"""
import struct

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

import chaos_common

FAULTS = {"refuse": 0.02, "cut": 0.03, "stall": 0.01, "error": 0.03, "close": 0.01,
          "goaway": 0.01}
PAYLOAD = b"\x00\x00\x00\x00\x0a" + b"\x0a\x08accepted"  # one gRPC message, 10 bytes


def _pick(rng, faults_on):
    if faults_on:
        for name, p in FAULTS.items():
            if rng.random() < p:
                return name
    return "ok"


def serve_h2(conn, data, recorder, rng, faults_on):
    """Serves one h2c connection whose first bytes are `data`; returns when it ends."""
    h2c = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None))
    h2c.initiate_connection()
    streams = {}  # stream id -> [chaos id, expected length, body, fault]
    last_processed = None  # set once a GOAWAY went out: streams above it are ignored
    while True:
        try:
            events = h2c.receive_data(data)
        except h2.exceptions.ProtocolError:
            return  # h2 queued a GOAWAY; the close tells the proxy the rest
        for ev in events:
            sid = getattr(ev, "stream_id", None)
            if isinstance(ev, h2.events.RequestReceived):
                if last_processed is not None and sid > last_processed:
                    continue  # after our GOAWAY: not processed, never answered
                headers = dict(ev.headers)
                chaos_id = headers.get(b"x-chaos-id", b"").decode()
                fault = _pick(rng, faults_on)
                if fault != "ok" and chaos_id:
                    recorder.record("FAULT-" + fault, chaos_id)
                if fault == "refuse":
                    _stream_op(h2c.reset_stream, sid, h2.errors.ErrorCodes.REFUSED_STREAM)
                    continue
                length = int(headers.get(b"x-chaos-len", b"-1"))
                streams[sid] = [chaos_id, length, bytearray(), fault]
            elif isinstance(ev, h2.events.DataReceived):
                h2c.acknowledge_received_data(ev.flow_controlled_length, sid)
                if sid in streams:
                    streams[sid][2] += ev.data
            elif isinstance(ev, h2.events.StreamEnded) and sid in streams:
                chaos_id, length, body, fault = streams[sid]
                if chaos_id:
                    want = chaos_common.body_for(chaos_id, length)
                    recorder.record("OK" if bytes(body) == want else "CORRUPT", chaos_id)
                if fault == "close":
                    chaos_common.reset_close(conn)
                    return
                if fault == "stall":
                    continue  # kept in `streams`, never answered
                del streams[sid]
                _answer(h2c, sid, fault)
                if fault == "goaway" and last_processed is None:
                    # Written by hand: h2 sends nothing more once it sent a GOAWAY, and
                    # the streams the GOAWAY covers still get their answers.
                    last_processed = h2c.highest_inbound_stream_id
                    conn.sendall(h2c.data_to_send() +
                                 struct.pack(">I", 8)[1:] + b"\x07\x00" + struct.pack(
                                     ">III", 0, last_processed, 0))
            elif isinstance(ev, h2.events.StreamReset):
                streams.pop(sid, None)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                conn.sendall(h2c.data_to_send())
                return
        out = h2c.data_to_send()
        if out:
            conn.sendall(out)
        if last_processed is not None and not any(s <= last_processed for s in streams):
            return  # every stream the GOAWAY covers has ended
        data = conn.recv(65536)
        if not data:
            return


def _stream_op(op, *args):
    """A send on a stream h2 may already have closed: it applies a whole read's frames
    (the proxy's RST_STREAM among them) before the loop sees their events."""
    try:
        op(*args)
        return True
    except h2.exceptions.ProtocolError:  # StreamClosedError, StreamIDTooLowError
        return False


def _answer(h2c, sid, fault):
    try:
        head = [(b":status", b"200"), (b"content-type", b"application/grpc")]
        if fault == "error":
            h2c.send_headers(sid, head + [(b"grpc-status", b"13"),
                                          (b"grpc-message", b"chaos")], end_stream=True)
            return
        h2c.send_headers(sid, head)
        if fault == "cut":
            h2c.send_data(sid, PAYLOAD[:3])
            h2c.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
            return
        h2c.send_data(sid, PAYLOAD)
        h2c.send_headers(sid, [(b"grpc-status", b"0")], end_stream=True)
    except (h2.exceptions.ProtocolError, h2.exceptions.FlowControlError):
        pass  # the proxy reset it meanwhile (see _stream_op)
