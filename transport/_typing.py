"""Types of proxy members, for the type checker (see `transport.mypy_plugin`)."""

from __future__ import annotations

from typing import ParamSpec, Protocol, TypeVar

__all__ = ["ProxyMethod"]

P = ParamSpec("P")
F_co = TypeVar("F_co", covariant=True)


class ProxyMethod(Protocol[P, F_co]):
    """A method seen through a proxy: calling it returns a future `F_co` of its result.

    The mypy plugin types `proxy.method` as ``ProxyMethod[<method's parameters>,
    <future of its return type>]``; at run time it is a `_RemoteMethod`, a
    `pykka.CallableProxy` or an asyncio method, all of which have this shape.
    """

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> F_co:
        """Call (ask): the future of the result."""
        ...

    def defer(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Cast (tell): the result is dropped."""
        ...
