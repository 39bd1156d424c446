"""zerorpc (gevent + ZeroMQ + msgpack): a `zerorpc.Server` and a `zerorpc.Puller`.

Calls go to the Server (ROUTER); the counting cast is zerorpc's one-way
pattern, a `zerorpc.Pusher` -> `zerorpc.Puller` (PUSH/PULL) on the same object.
Pipelined: N calls with ``async=True`` (each an `AsyncResult`), then ``.get()``
on them all. Casts: N ``pusher.tally(payload)``, then poll ``counted()``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import gevent  # type: ignore[import-untyped,import-not-found,unused-ignore]
import zerorpc  # type: ignore[import-untyped,import-not-found,unused-ignore]

from bench import _harness as h
from bench._peers.common import (
    Client,
    Service,
    free_port,
    spawn_server,
    timed_casts,
    until_stdin_closes,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

ASYNC = {"async": True}
"""zerorpc 0.6's keyword for a non-blocking call (a reserved word, hence the dict)."""


def serve(argv: Sequence[str]) -> None:
    """Serve calls and casts on two loopback ports; print them."""
    service = Service()
    server = zerorpc.Server(service)
    puller = zerorpc.Puller(service)
    ports = free_port(), free_port()
    server.bind(f"tcp://127.0.0.1:{ports[0]}")
    puller.bind(f"tcp://127.0.0.1:{ports[1]}")
    until_stdin_closes()  # a watcher thread ends the process; the hub keeps the main thread
    print(*ports, flush=True)
    gevent.joinall([gevent.spawn(server.run), gevent.spawn(puller.run)])


def _get(result: Any) -> Any:
    return result.get()


class ZerorpcClient(Client):
    """A `zerorpc.Client` for calls and a `zerorpc.Pusher` for casts."""

    def __init__(self, ports: list[str]) -> None:
        self.client = zerorpc.Client(timeout=60)
        self.client.connect(f"tcp://127.0.0.1:{ports[0]}")
        self.pusher = zerorpc.Pusher()
        self.pusher.connect(f"tcp://127.0.0.1:{ports[1]}")

    def add(self, a: int, b: int) -> Any:
        return self.client.add(a, b)

    def echo(self, payload: Any) -> Any:
        return self.client.echo(payload)

    def counted(self) -> int:
        count: int = self.client.counted()
        return count

    def pipelined(self, large: bool, n: int) -> float:
        if large:
            return h.in_rounds(lambda: self.client.echo(self.large, **ASYNC), _get, n, n)
        return h.in_rounds(lambda: self.client.add(1, 2, **ASYNC), _get, n, n)

    def casts(self, large: bool, n: int) -> float:
        return timed_casts(self, self.pusher.tally, large, n)

    def close(self) -> None:
        self.client.close()
        self.pusher.close()


@contextlib.contextmanager
def open_client(kind: str, options: dict[str, Any]) -> Iterator[Client]:
    """Start the zerorpc server in a child process and connect to it."""
    server = spawn_server("zerorpc")
    ports = server.line
    client = None
    try:
        client = ZerorpcClient(ports.split())
        yield client
    finally:
        if client is not None:
            client.close()
        server.stop()
