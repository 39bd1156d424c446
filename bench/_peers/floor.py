"""The raw pyzmq floors of `bench._floors` (its server and its loops), as a peer.

Calls are REQ/REP round trips of an ``echo`` request (small: ``[1, "x"]``);
pipelined is DEALER/ROUTER with 64 requests in flight; casts are PUSH/PULL,
confirmed by the server's count. msgpack on both ends throughout.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from bench import _floors
from bench import _harness as h
from bench._peers.common import Client

if TYPE_CHECKING:
    from collections.abc import Iterator


class FloorClient(Client):
    """Sockets to `bench._floors`' raw server."""

    def __init__(self, floors: _floors.Floors) -> None:
        self.floors = floors

    def check(self) -> None:
        assert self.floors.call(self.large)[5] == [self.large]  # the raw server echoes requests

    def seq(self, large: bool, n: int) -> list[float]:
        return self.floors.seq(self.large if large else _floors.SMALL, n)

    def pipelined(self, large: bool, n: int) -> float:
        return self.floors.pipelined(self.large if large else _floors.SMALL, n)

    def casts(self, large: bool, n: int) -> float:
        return self.floors.oneway(self.large if large else _floors.SMALL, n)


@contextlib.contextmanager
def open_client(kind: str, options: dict[str, Any]) -> Iterator[Client]:
    """Start the raw server (``python -m bench.remote --serve raw``) and connect to it."""
    with h.spawn("bench.remote", "--serve", "raw") as server:
        floors = _floors.Floors(server.line)
        try:
            yield FloorClient(floors)
        finally:
            floors.close()
