"""Wrong uses of typed proxies: each line marked with an expected error must get it from mypy."""

# Each expected error stays on its own line:
# fmt: off
from __future__ import annotations

import transport
import transport.aio
from actors import Manager


class Volumes(Manager):
    capacity: int = 100

    def create(self, name: str, size: int = 1) -> dict[str, int]:
        return {name: size}


def local() -> None:
    proxy = Volumes.start().proxy()
    proxy.create(1)  # E: Argument 1 to "__call__" of "ProxyMethod" has incompatible type "int"; expected "str"
    proxy.create("a", sise=2)  # E: Unexpected keyword argument "sise"
    text: str = proxy.create("a").get()  # E: Incompatible types in assignment (expression has type "dict[str, int]", variable has type "str")
    proxy.create("a").get().append(1)  # E: "dict[str, int]" has no attribute "append"
    proxy.delete("a")  # E: "Volumes" has no attribute "delete" a proxy can reach
    proxy._db  # E: "Volumes" has no private name "_db" a proxy can reach
    proxy.create.defer()  # E: Missing positional argument "name" in call to "defer" of "ProxyMethod"
    print(text)


def remote(conn: transport.Connection) -> None:
    volumes = conn.proxy("volume", Volumes)
    volumes.create("a", "big")  # E: Argument 2 to "__call__" of "ProxyMethod" has incompatible type "str"; expected "int"
    total: int = volumes.create("a").get() + 1  # E: Unsupported operand types for + ("dict[str, int]" and "int")
    name: str = volumes.capacity.get()  # E: Incompatible types in assignment (expression has type "int", variable has type "str")
    print(total, name)


async def aio(conn: transport.aio.AsyncConnection) -> None:
    volumes = conn.proxy("volume", Volumes)
    size: str = await volumes.create("a")  # E: Incompatible types in assignment (expression has type "dict[str, int]", variable has type "str")
    print(size)
