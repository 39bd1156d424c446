"""Types of proxy members, for the type checker (see `transport.mypy_plugin`)."""

from __future__ import annotations

from typing import Generic, ParamSpec, TypeVar

__all__ = ["ProxyMethod"]

P = ParamSpec("P")
F = TypeVar("F")


class ProxyMethod(Generic[P, F]):
    """A method seen through a proxy: calling it returns a future `F` of its result.

    The mypy plugin types `proxy.method` as ``ProxyMethod[<method's parameters>,
    <future of its return type>]``; at run time it is a `_RemoteMethod`, a
    `pykka.CallableProxy` or an asyncio method.
    """

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> F:
        """Call (ask): the future of the result."""
        raise NotImplementedError

    def defer(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Cast (tell): the result is dropped."""
        raise NotImplementedError
