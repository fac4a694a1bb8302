"""Shared by the chaos driver and its upstream: the body a request id stands for."""


def body_for(chaos_id, length):
    """`length` bytes derived from `chaos_id` alone, so the upstream can tell a whole,
    intact body from a truncated, padded or mixed-up one without being told the bytes."""
    if length < 0:
        return None
    unit = (chaos_id + ";").encode()
    return (unit * (length // len(unit) + 1))[:length]
