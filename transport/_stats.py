"""Counters a bridge keeps about its traffic, for whoever exports metrics.

The bridge owns them and bumps plain integers on its hot path (a few tens of
nanoseconds per message); an exporter (``actors``' Prometheus collector) reads
them when it is scraped. Each counter has one writer at a time: the I/O thread
for what comes in, whoever holds the socket lock for what goes out, a lock for
refusals; a reader may see one counter a message ahead of another.
"""

from __future__ import annotations

import threading

__all__ = ["BridgeStats"]


class BridgeStats:
    """What a `Bridge` received, sent and refused since it was made.

    Attributes:
        messages_in: requests received (whole messages, valid or not).
        bytes_in: their bodies' bytes (routing frames not counted).
        messages_out: replies and refusals sent.
        bytes_out: their bodies' bytes.
    """

    __slots__ = ("_lock", "_refused", "bytes_in", "bytes_out", "messages_in", "messages_out")

    def __init__(self) -> None:
        self.messages_in = 0
        self.bytes_in = 0
        self.messages_out = 0
        self.bytes_out = 0
        self._refused: dict[str, int] = {}
        self._lock = threading.Lock()

    def refuse(self, reason: str) -> None:
        """Count one request refused or dropped for `reason` (a short fixed word)."""
        with self._lock:
            self._refused[reason] = self._refused.get(reason, 0) + 1

    def refused(self) -> dict[str, int]:
        """Return the refusals so far, by reason."""
        with self._lock:
            return dict(self._refused)
