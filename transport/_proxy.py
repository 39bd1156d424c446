"""Remote proxies: a remote actor used like a `pykka.ActorProxy`.

A proxy knows what its actor exposes from one describe request per
(connection, actor), cached by the connection: its class, its remotely
callable methods and its readable attributes. So an unknown name fails at
attribute access, `dir()` lists the remote surface, and a method call costs
nothing more than before (the `_RemoteMethod` is cached on the proxy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from transport._errors import InvalidRequest, NoSuchMethod
from transport._protocol import Kind

if TYPE_CHECKING:
    from transport._connection import Connection
    from transport._future import RemoteFuture
    from transport._typing import ProxyMethod  # noqa: F401 - for transport.mypy_plugin

__all__ = ["Description", "RemoteProxy"]

A = TypeVar("A")


@dataclass(frozen=True, slots=True)
class Description:
    """What a served actor exposes, as its bridge describes it."""

    class_name: str
    module: str
    rpc_version: str
    methods: frozenset[str]
    attributes: frozenset[str]

    @classmethod
    def from_wire(cls, value: Any) -> Description:
        """Build from a describe reply's result.

        Raises:
            InvalidRequest: the reply is not a description.
        """
        try:
            names = {key: value[key] for key in ("class", "module", "rpc_version")}
            methods, attributes = value["methods"], value["attributes"]
            if not all(isinstance(v, str) for v in names.values()) or not all(
                isinstance(n, str) for n in [*methods, *attributes]
            ):
                raise TypeError(value)
        except (TypeError, KeyError) as exc:
            raise InvalidRequest(f"not an actor description: {exc!r}") from None
        return cls(
            names["class"], names["module"], names["rpc_version"],
            frozenset(methods), frozenset(attributes),
        )  # fmt: skip


class _RemoteMethod:
    """`proxy.method`: call it for a future, or `.defer()` it for a cast."""

    __slots__ = ("_actor", "_conn", "_method", "_timeout", "_version")

    def __init__(
        self, conn: Connection, actor: str, method: str, version: str | None, timeout: float | None
    ) -> None:
        self._conn = conn
        self._actor = actor
        self._method = method
        self._version = version
        self._timeout = timeout

    def __call__(self, *args: Any, **kwargs: Any) -> RemoteFuture[Any]:
        return self._conn._call(
            self._actor, self._method, args, kwargs, self._version, self._timeout
        )

    def defer(self, *args: Any, **kwargs: Any) -> None:
        """Cast: queue the call and return; the result is dropped (at-most-once).

        Returns once ZeroMQ has queued the message. When its send queue is full
        (1000 messages: the peer is slow or unreachable) it waits for room, up to
        the connection's timeout, then raises `MessagingTimeout`.
        """
        self._conn._cast(self._actor, self._method, args, kwargs, self._version)

    def __repr__(self) -> str:
        return f"<remote method {self._actor}.{self._method} at {self._conn.endpoint}>"


class RemoteProxy(Generic[A]):
    """Stand-in for a remote actor, used like a `pykka.ActorProxy`; use `Connection.proxy()`.

    - `proxy.method(*args, **kwargs)` returns a `RemoteFuture`;
      `proxy.method.defer(*args, **kwargs)` is a cast.
    - `proxy.attr` returns a future of the attribute's (or property's) value,
      read inside the actor's mailbox; `proxy.attr = value` sets it there and
      returns once it is set (raising what the actor raised, e.g. the
      `AttributeError` of a read-only property).
    - A name the actor does not expose raises `NoSuchMethod` (an
      `AttributeError`) at attribute access. The bridge's rules decide what is
      exposed: never private names, pykka's own names or `RPC_PRIVATE` ones.

    docs/proxies.rst lists every difference from a local proxy.
    """

    def __init__(
        self,
        connection: Connection,
        name: str,
        version: str | None,
        timeout: float | None,
        description: Description | None,
    ) -> None:
        object.__setattr__(self, "_transport_conn", connection)
        object.__setattr__(self, "_transport_name", name)
        object.__setattr__(self, "_transport_version", version)
        object.__setattr__(self, "_transport_timeout", timeout)
        object.__setattr__(self, "_transport_description", description)

    def _transport_refresh(self, name: str) -> Description:
        """Describe the actor again (it may have gained `name` since) and return it."""
        conn = self._transport_conn
        description: Description = conn._describe(
            self._transport_name, self._transport_version, self._transport_timeout, fresh=True
        )
        object.__setattr__(self, "_transport_description", description)
        return description

    def _transport_missing(self, name: str) -> NoSuchMethod:
        return NoSuchMethod(
            f"{self!r} has no attribute {name!r} open to remote callers "
            "(private, pykka's, RPC_PRIVATE or not on the actor)"
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        description: Description | None = self._transport_description
        if description is not None and (
            name not in description.methods and name not in description.attributes
        ):
            description = self._transport_refresh(name)
        if description is None or name in description.methods:
            method = _RemoteMethod(
                self._transport_conn,
                self._transport_name,
                name,
                self._transport_version,
                self._transport_timeout,
            )
            self.__dict__[name] = method  # later accesses skip __getattr__ (the hot path)
            return method
        if name in description.attributes:
            return self._transport_conn._member(
                Kind.GET, self._transport_name, name, (), self._transport_version,
                self._transport_timeout,
            )  # fmt: skip
        raise self._transport_missing(name)

    def __setattr__(self, name: str, value: Any) -> None:
        """Set the actor's attribute `name` inside its mailbox; block until it is set."""
        if name.startswith("_"):
            raise AttributeError(f"cannot set private name {name!r} on a remote proxy")
        description: Description | None = self._transport_description
        if description is None:
            raise AttributeError(f"{self!r} is unchecked (check=False): it only calls methods")
        if name not in description.attributes:
            description = self._transport_refresh(name)
            if name not in description.attributes:
                raise self._transport_missing(name)
        self._transport_conn._member(
            Kind.SET, self._transport_name, name, (value,), self._transport_version,
            self._transport_timeout,
        ).get()  # fmt: skip

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete {name!r} through a remote proxy")

    def __dir__(self) -> list[str]:
        description: Description | None = self._transport_description
        remote = () if description is None else (*description.methods, *description.attributes)
        return sorted({*remote, *type(self).__dict__})

    def __repr__(self) -> str:
        description: Description | None = self._transport_description
        cls = "(unchecked)" if description is None else description.class_name
        version = f" version {self._transport_version}" if self._transport_version else ""
        return (
            f"<RemoteProxy {cls} {self._transport_name!r}{version} "
            f"at {self._transport_conn.endpoint}>"
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RemoteProxy)
            and other._transport_conn is self._transport_conn
            and other._transport_name == self._transport_name
        )

    def __hash__(self) -> int:
        return hash((id(self._transport_conn), self._transport_name))
