"""A mypy plugin that types proxies from their actor's class.

Enable it in the mypy configuration::

    [tool.mypy]
    plugins = ["transport.mypy_plugin"]

Then, for a manager class `M` (any pykka actor class):

- ``M.start().proxy()`` (a ``pykka.ActorProxy[M]``): ``proxy.method`` is a
  `ProxyMethod` whose call checks the arguments against ``M.method`` and returns
  ``pykka.Future[<its return type>]``; ``proxy.attr`` is ``pykka.Future[<its type>]``;
- ``connection.proxy(name, M)`` (a ``transport.RemoteProxy[M]``): the same with
  ``transport.RemoteFuture``;
- ``transport.aio.connect(...).proxy(name, M)`` (an ``AsyncProxy[M]``): the same
  with ``asyncio.Future``.

A name the class does not have, or a private one, is reported. A proxy whose
actor class is unknown (``RemoteProxy[Any]``) stays untyped. Not modelled:
pykka's traversable attributes (typed as a future of the attribute, where a
local proxy gives a proxy of it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from mypy.nodes import ARG_STAR, ARG_STAR2, Decorator, FuncBase, OverloadedFuncDef, TypeInfo
from mypy.plugin import AttributeContext, Plugin
from mypy.types import (
    AnyType,
    CallableType,
    Instance,
    Parameters,
    Type,
    TypeOfAny,
    get_proper_type,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy.checker import TypeChecker

__all__ = ["plugin"]

# proxy class -> the future class its members return
_PROXIES = {
    "pykka._proxy.ActorProxy": "pykka._future.Future",
    "transport._proxy.RemoteProxy": "transport._future.RemoteFuture",
    "transport.aio.AsyncProxy": "asyncio.futures.Future",
}
_METHOD = "transport._typing.ProxyMethod"


def _instance(ctx: AttributeContext, fullname: str, args: list[Type]) -> Type | None:
    """``fullname[args]``, or None when that module is not part of the build."""
    module, _, name = fullname.rpartition(".")
    tree = cast("TypeChecker", ctx.api).modules.get(module)
    symbol = tree.names.get(name) if tree is not None else None
    if symbol is None or not isinstance(symbol.node, TypeInfo):
        return None
    return Instance(symbol.node, args)


def _future(ctx: AttributeContext, future: str, value: Type) -> Type:
    return _instance(ctx, future, [value]) or AnyType(TypeOfAny.special_form)


def _member(ctx: AttributeContext, name: str, future: str) -> Type:
    proxy = get_proper_type(ctx.type)
    if not isinstance(proxy, Instance) or name in proxy.type.names or not proxy.args:
        return ctx.default_attr_type
    target = get_proper_type(proxy.args[0])
    if not isinstance(target, Instance):
        return ctx.default_attr_type  # RemoteProxy[Any]: untyped
    symbol = target.type.get(name)
    if symbol is None or symbol.node is None or name.startswith("_"):
        what = "private name" if name.startswith("_") else "attribute"
        ctx.api.fail(f'"{target.type.name}" has no {what} "{name}" a proxy can reach', ctx.context)
        return AnyType(TypeOfAny.from_error)
    checker = cast("TypeChecker", ctx.api)
    member = get_proper_type(
        checker.expr_checker.analyze_external_member_access(name, target, ctx.context)
    )
    node = symbol.node
    is_property = (isinstance(node, Decorator) and node.func.is_property) or (
        isinstance(node, OverloadedFuncDef) and node.is_property
    )
    # pykka calls a callable field too (a remote proxy only reads it: docs/proxies.rst)
    local_callable = future == _PROXIES["pykka._proxy.ActorProxy"] and isinstance(
        member, CallableType
    )
    if not is_property and (
        local_callable or isinstance(node, FuncBase | Decorator | OverloadedFuncDef)
    ):
        if isinstance(member, CallableType):
            params = Parameters(member.arg_types, member.arg_kinds, member.arg_names)
            result = _future(ctx, future, member.ret_type)
        else:  # overloads: arguments unchecked, result Any
            any_type = AnyType(TypeOfAny.special_form)
            params = Parameters([any_type, any_type], [ARG_STAR, ARG_STAR2], [None, None])
            result = _future(ctx, future, any_type)
        return _instance(ctx, _METHOD, [params, result]) or ctx.default_attr_type
    return _future(ctx, future, member)


class _ProxyPlugin(Plugin):
    def get_attribute_hook(self, fullname: str) -> Callable[[AttributeContext], Type] | None:
        owner, _, name = fullname.rpartition(".")
        future = _PROXIES.get(owner)
        if future is None:
            return None
        return lambda ctx: _member(ctx, name, future)


def plugin(version: str) -> type[Plugin]:
    """The mypy entry point."""
    return _ProxyPlugin
