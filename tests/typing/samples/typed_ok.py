"""Typed proxies that mypy (strict, with transport.mypy_plugin) accepts."""

from __future__ import annotations

import transport
import transport.aio
from actors import Manager


class Volumes(Manager):
    capacity: int = 100

    def create(self, name: str, size: int = 1) -> dict[str, int]:
        return {name: size}

    @property
    def used(self) -> int:
        return 0


def local() -> None:
    proxy = Volumes.start().proxy()
    made: dict[str, int] = proxy.create("a", size=2).get(timeout=1)
    used: int = proxy.used.get()
    capacity: int = proxy.capacity.get()
    proxy.create.defer("b")
    print(made, used, capacity)


def remote(conn: transport.Connection) -> None:
    volumes = conn.proxy("volume", Volumes, "1.0")
    future: transport.RemoteFuture[dict[str, int]] = volumes.create("a")
    size: int = future.get()["a"] + volumes.used.get(timeout=1)
    volumes.create.defer("b", 3)
    untyped = conn.proxy("volume")  # no class given: untyped, anything goes
    untyped.anything(1, 2).get()
    print(size)


async def aio(conn: transport.aio.AsyncConnection) -> None:
    volumes = conn.proxy("volume", Volumes)
    made: dict[str, int] = await volumes.create("a")
    capacity: int = await volumes.capacity
    print(made, capacity)
