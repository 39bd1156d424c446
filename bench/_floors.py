"""The raw pyzmq floors every remote benchmark stands beside: servers and loops, msgpack both ends.

- REQ/REP: a sequential round trip (a REP socket served by one thread's blocking loop);
- DEALER/ROUTER: pipelined requests, a window in flight, echoed by a ROUTER;
- PUSH/PULL: one-way messages, counted by the server and confirmed on a PUSH back.

The server (``serve``) runs one blocked thread per socket: a poller over all of
them would add its own cost to every floor, and blocked threads cost nothing.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import msgpack  # type: ignore[import-untyped]
import zmq

from bench import _harness as h

PATTERNS = ("reqrep", "router", "pull")
"""What `serve` can serve; ``pull`` also binds the PUSH that confirms a count."""
SMALL: Any = [1, "x"]
"""The small payload."""
LARGE = b"\xab" * 65536
"""The 64 KiB payload."""
WINDOW = 64
"""Calls in flight in the pipelined loops."""


def request(payload: Any, *more: Any, seq: int = 0, method: str = "echo", kind: int = 1) -> bytes:
    """A request frame shaped like the bridge's (kind 1: a call; 2: a cast)."""
    body: bytes = msgpack.packb([1, kind, seq, "sink", method, [payload, *more], {}, None, {}])
    return body


def serve(patterns: tuple[str, ...] = PATTERNS) -> None:
    """Serve `patterns`, each on its own socket and thread; print their endpoints, one line."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    endpoints: list[str] = []

    def bound(kind: int) -> zmq.Socket[bytes]:
        sock: zmq.Socket[bytes] = ctx.socket(kind)
        endpoints.append(f"tcp://127.0.0.1:{sock.bind_to_random_port('tcp://127.0.0.1')}")
        return sock

    loops = []
    if "reqrep" in patterns:
        rep = bound(zmq.REP)

        def reqrep() -> None:
            while True:
                rep.send(msgpack.packb(msgpack.unpackb(rep.recv())))

        loops.append(reqrep)
    if "router" in patterns:
        router = bound(zmq.ROUTER)

        def dealer_router() -> None:
            while True:
                ident, body = router.recv_multipart()
                router.send_multipart([ident, msgpack.packb(msgpack.unpackb(body))])

        loops.append(dealer_router)
    if "pull" in patterns:
        pull, back = bound(zmq.PULL), bound(zmq.PUSH)

        def one_way() -> None:
            count = 0
            while True:
                body = pull.recv()
                if body == b"END":
                    back.send(msgpack.packb(count))
                    count = 0
                else:
                    msgpack.unpackb(body)
                    count += 1

        loops.append(one_way)
    for loop in loops:
        threading.Thread(target=loop, daemon=True).start()
    h.serve_until_stdin_closes(" ".join(endpoints))
    os._exit(0)  # the loops block in recv(); nothing to clean up


class Floors:
    """This process's sockets to a `serve` (its line: endpoints in `PATTERNS` order), and loops."""

    def __init__(self, line: str, *, timeout: float | None = None) -> None:
        """Connect to `line`'s endpoints; with `timeout` (seconds) a reply that late raises."""
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self.req, self.dealer, self.push, self.back = (
            ctx.socket(t) for t in (zmq.REQ, zmq.DEALER, zmq.PUSH, zmq.PULL)
        )
        for sock, endpoint in zip(self.sockets, line.split(), strict=False):
            sock.setsockopt(zmq.LINGER, 0)
            if timeout is not None:  # recv() raises, never hangs (the floors' loops do without)
                sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
            sock.connect(endpoint)

    @property
    def sockets(self) -> tuple[zmq.Socket[bytes], ...]:
        """REQ, DEALER, PUSH and the PULL that reads the confirmations."""
        return (self.req, self.dealer, self.push, self.back)

    def call(self, payload: Any) -> Any:
        """One REQ/REP round trip; the echoed request."""
        self.req.send(request(payload))
        return msgpack.unpackb(self.req.recv())

    def seq(self, payload: Any, n: int) -> list[float]:
        """`n` sequential REQ/REP round trips; seconds each."""
        return h.timed_calls(lambda: self.call(payload), n)

    def pipelined(self, payload: Any, n: int, window: int = WINDOW) -> float:
        """`n` DEALER/ROUTER round trips, `window` in flight; per second."""
        return h.pipelined(
            lambda: self.dealer.send(request(payload)),
            lambda _: msgpack.unpackb(self.dealer.recv()),
            n, window,
        )  # fmt: skip

    def oneway(self, payload: Any, n: int) -> float:
        """`n` PUSH/PULL messages, until the server confirms it read them all; per second."""
        return h.rate_of(n, lambda: self._oneway(payload, n))

    def _oneway(self, payload: Any, n: int) -> None:
        for i in range(n):
            self.push.send(request(payload, i, method="sink", kind=2))
        self.push.send(b"END")
        count = msgpack.unpackb(self.back.recv())
        assert count == n, (count, n)

    def close(self, linger: int = 0) -> None:
        """Close the sockets (at once, by default)."""
        for sock in self.sockets:
            sock.close(linger=linger)
