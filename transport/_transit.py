"""Deadlines in the bridge: how late a request arrives, without synchronised clocks."""

from __future__ import annotations

__all__ = ["TransitClock"]


class TransitClock:
    """How late a request arrives, per peer, compared with the fastest it recently sent.

    A request may carry the sender's monotonic clock when it was sent (`sent`,
    milliseconds). The two hosts' clocks are unrelated, but for one peer
    ``receipt - sent`` is a constant (the clocks' offset) plus the time in
    transit; its smallest recent value is the offset plus the fastest transit.
    A request's lateness is how much its own value exceeds that minimum: the
    time it spent queued on the way (in the sender's send queue, in socket
    buffers, behind a partition), which the caller's timeout has already spent.

    The minimum is kept over the last `window / 2` to `window` seconds, so the
    clocks' rate drift (at most a few parts in 10**4) costs milliseconds, not
    seconds. A peer's first request, or its first after `window` seconds
    without one, has nothing to compare with: its lateness reads zero (the
    estimate errs on the side of running a request).
    At most `max_peers` peers are tracked; past that the table starts afresh.
    Only one thread uses it (the bridge's I/O thread, or an own socket's actor).

    Attributes:
        floors: per peer, the smallest offset it keeps (of both buckets): a
            request whose ``receipt - sent`` exceeds it by less than its
            time-to-live has not spent it in transit (its lateness is at most
            that excess), so the exact `lateness`, which also records the
            request, may wait until the request has run.
    """

    def __init__(self, *, window: float = 60.0, max_peers: int = 4096) -> None:
        self._half = window / 2
        self._window = window
        self._max_peers = max_peers
        # peer -> [current minimum, its bucket's start, previous minimum, its start]
        self._peers: dict[tuple[bytes, ...], list[float]] = {}
        self.floors: dict[tuple[bytes, ...], float] = {}

    def lateness(self, peer: tuple[bytes, ...], sent_ms: int, now: float) -> float:
        """Seconds this request spent in transit beyond the peer's fastest; 0 or more.

        `peer` is the request's whole routing prefix: behind a ZeroMQ proxy the
        first frame names the proxy, shared by clients whose clocks differ.
        """
        offset = now * 1000.0 - sent_ms
        state = self._peers.get(peer)
        if state is None:
            if len(self._peers) >= self._max_peers:
                self._peers.clear()
                self.floors.clear()
            self._peers[peer] = [offset, now, offset, now]
            self.floors[peer] = offset
            return 0.0
        if now - state[1] >= self._half:  # a new bucket; the previous one is kept
            state[2], state[3] = state[0], state[1]
            state[0], state[1] = offset, now
        elif offset < state[0]:
            state[0] = offset
        base = state[0]
        self.floors[peer] = base if base < state[2] else state[2]
        if state[2] < base and now - state[3] < self._window:  # no older than a window
            base = state[2]
        return (offset - base) / 1000.0 if offset > base else 0.0

    def __len__(self) -> int:
        return len(self._peers)
