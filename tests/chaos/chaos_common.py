"""Shared by the chaos driver and its upstream: the body a request id stands for, and
closing a socket with a TCP reset."""
import socket
import struct


def body_for(chaos_id, length):
    """`length` bytes derived from `chaos_id` alone, so the upstream can tell a whole,
    intact body from a truncated, padded or mixed-up one without being told the bytes."""
    if length < 0:
        return None
    unit = (chaos_id + ";").encode()
    return (unit * (length // len(unit) + 1))[:length]


def reset_close(sock):
    """Closes `sock` with a TCP reset (SO_LINGER 0 makes close() send RST, not FIN; no TLS
    close_notify either), as a killed peer would."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
