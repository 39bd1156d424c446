"""The raw pyzmq floors, taken from `bench.remote` (its server and its timing loops).

Calls are REQ/REP round trips of an ``echo`` request (small: ``[1, "x"]``);
pipelined is DEALER/ROUTER with 64 requests in flight; casts are PUSH/PULL,
confirmed by the server's count. msgpack on both ends throughout.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import msgpack  # type: ignore[import-untyped]
import zmq

from bench import remote
from bench._peers.common import Client, stop

if TYPE_CHECKING:
    from collections.abc import Iterator


class FloorClient(Client):
    """Sockets to `bench.remote`'s raw server."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], ports: list[str]) -> None:
        self.req, self.dealer, self.push, self.back = (
            ctx.socket(t) for t in (zmq.REQ, zmq.DEALER, zmq.PUSH, zmq.PULL)
        )
        for sock, port in zip(self.sockets, ports, strict=True):
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(f"tcp://127.0.0.1:{port}")

    @property
    def sockets(self) -> tuple[zmq.Socket[bytes], ...]:
        return (self.req, self.dealer, self.push, self.back)

    def _echo(self, payload: Any) -> Any:
        self.req.send(msgpack.packb([1, 1, 0, "sink", "echo", [payload], {}, None, {}]))
        return msgpack.unpackb(self.req.recv())

    def check(self) -> None:
        assert self._echo(self.large)[5] == [self.large]  # the raw server echoes the request

    def seq(self, large: bool, n: int) -> list[float]:
        return remote.raw_reqrep(self.req, self.large if large else remote.SMALL, n)

    def pipelined(self, large: bool, n: int) -> float:
        return remote.raw_pipelined(self.dealer, self.large if large else remote.SMALL, n)

    def casts(self, large: bool, n: int) -> float:
        return remote.raw_oneway(self.push, self.back, self.large if large else remote.SMALL, n)


@contextlib.contextmanager
def open_client(kind: str, options: dict[str, Any]) -> Iterator[Client]:
    """Start `bench.remote`'s raw server (``--serve raw``) and connect its four sockets."""
    proc, line = remote.spawn("raw")
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    client = None
    try:
        client = FloorClient(ctx, line.split())
        yield client
    finally:
        if client is not None:
            for sock in client.sockets:
                sock.close(linger=0)
        ctx.term()
        stop(proc)
