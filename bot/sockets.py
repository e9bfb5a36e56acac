"""Whether an idle pooled connection's peer has hung up."""

from __future__ import annotations

import select


def readable_now(fileno: int) -> bool:
    """Whether the socket ``fileno`` has something to read right now. An idle
    connection between requests has nothing to read from a live peer; one the
    peer closed has the end of the stream (or its last message) waiting."""
    poller = select.poll()
    poller.register(fileno, select.POLLIN)
    return bool(poller.poll(0))
