"""Traffic counters a bridge keeps, for whoever exports metrics.

The bridge owns them and bumps plain integers on its hot path (a few tens of
nanoseconds per message); an exporter (``actors``' Prometheus collector) reads
them when it is scraped. Each counter has one writer at a time: the I/O thread
for what comes in, whoever holds the socket lock for what goes out; a reader
may see one counter a message ahead of another. Refusals are counted by
`Bridge.stats()`.
"""

from __future__ import annotations

__all__ = ["BridgeTraffic"]


class BridgeTraffic:
    """What a `Bridge` received and sent since it was made.

    Attributes:
        messages_in: requests received (whole messages, valid or not).
        bytes_in: their bodies' bytes (routing frames not counted).
        messages_out: replies and refusals sent (handed to ZeroMQ).
        bytes_out: their bodies' bytes.
    """

    __slots__ = ("bytes_in", "bytes_out", "messages_in", "messages_out")

    def __init__(self) -> None:
        self.messages_in = 0
        self.bytes_in = 0
        self.messages_out = 0
        self.bytes_out = 0
