"""Our bridge serving an `actors.Manager` subclass; the client is `transport.connect`.

Pipelined: issue N calls (N futures in flight on one connection), then get them
all; in rounds of N = `ROUND` = 500.
Casts: ``proxy.tally.defer(payload)`` N times, then ``counted()`` (same
connection and mailbox, so the first read already sees them all).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import transport
from actors import Manager
from bench import _harness as h
from bench._peers.common import (
    Client,
    Service,
    spawn_server,
    timed_casts,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

ROUND = 500
"""Calls issued before getting them all (a round; the pipelined rows make n/ROUND rounds).

The bridge never drops a reply however many are unanswered (its ROUTER has no
send limit since SNDHWM became 0); the round size is a choice, kept so that
runs stay comparable.
"""


def serve(argv: Sequence[str]) -> None:
    """Serve the manager on a random loopback port; print the endpoint."""

    class BenchManager(Service, Manager):
        """The benchmark's service as a manager."""

    h.serve_exposed({"service": BenchManager.start(host="bench")})


class BridgeClient(Client):
    """A `transport` connection's proxy to the manager."""

    def __init__(self, proxy: transport.RemoteProxy[Any]) -> None:
        self.proxy = proxy

    def add(self, a: int, b: int) -> Any:
        return self.proxy.add(a, b).get()

    def echo(self, payload: Any) -> Any:
        return self.proxy.echo(payload).get()

    def counted(self) -> int:
        count: int = self.proxy.counted().get()
        return count

    def pipelined(self, large: bool, n: int) -> float:
        method = self.proxy.echo if large else self.proxy.add
        arg: tuple[Any, ...] = (self.large,) if large else (1, 2)
        return h.in_rounds(lambda: method(*arg), transport.RemoteFuture.get, n, ROUND)

    def casts(self, large: bool, n: int) -> float:
        return timed_casts(self, self.proxy.tally.defer, large, n)


@contextlib.contextmanager
def open_client(kind: str, options: dict[str, Any]) -> Iterator[Client]:
    """Start the bridge server in a child process and connect to it."""
    server = spawn_server("ours")
    endpoint = server.line
    try:
        with transport.connect(endpoint, timeout=60) as conn:
            yield BridgeClient(conn.proxy("service"))
    finally:
        server.stop()
