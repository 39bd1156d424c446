"""The asyncio client: `await conn.proxy("x").method(...)` on pyzmq's asyncio sockets.

Same wire protocol, errors, deadlines and per-sender order as the threaded
client (`transport.connect`); everything runs in the event loop's thread, and
nothing blocks it.

The socket is a `zmq.asyncio` socket, driven through its file descriptor: one
`loop.add_reader` callback reads every reply that has arrived (the FD is
edge-triggered, so each send re-checks ZMQ_EVENTS, as the threaded client
does), and sends go out at once with NOBLOCK, queueing in order only when
ZeroMQ's send queue is full. Awaiting `sock.recv()` per reply (pyzmq's futures)
measured 3-5 times slower (bench/aio.py shows that floor beside ours).

Example:
    >>> import asyncio, pykka, transport, transport.aio
    >>> class Greeter(pykka.ThreadingActor):
    ...     def hello(self, who):
    ...         return f"hello {who}"
    >>> async def main(endpoint):
    ...     async with transport.aio.connect(endpoint, timeout=5) as conn:
    ...         return await conn.proxy("greeter").hello("you")
    >>> ref = Greeter.start()
    >>> with transport.Bridge("tcp://127.0.0.1:*") as bridge:
    ...     bridge.expose("greeter", ref)
    ...     asyncio.run(main(bridge.endpoint))
    'hello you'
    >>> ref.stop()
    True
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

import zmq
import zmq.asyncio

from transport._calls import encode_call, outcome, overloaded
from transport._codec import Codec, default_codec
from transport._connection import DEFAULT_MAX_PENDING, DEFAULT_TIMEOUT, connect_client_socket
from transport._errors import (
    ConnectionClosed,
    MessagingTimeout,
    NoSuchMethod,
    Overloaded,
    UnsupportedVersion,
)
from transport._protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Kind,
    ProtocolError,
    version_is_compatible,
)
from transport._proxy import Description

if TYPE_CHECKING:
    from collections.abc import Iterable

    from transport._security import KeyPair

__all__ = ["AsyncConnection", "AsyncProxy", "connect"]

logger = logging.getLogger("transport.aio")

_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_POLLOUT = int(zmq.POLLOUT)
_NOBLOCK = int(zmq.NOBLOCK)
_BATCH = 256
_raw_send = zmq.Socket.send  # the plain (non-future) methods of the asyncio socket
_raw_recv = zmq.Socket.recv

A = TypeVar("A")


class _Call:
    """What the connection keeps of a pending call."""

    __slots__ = ("actor", "future", "method", "sent", "timer")

    def __init__(self, future: asyncio.Future[Any], actor: str, method: str, sent: float) -> None:
        self.future = future
        self.actor = actor
        self.method = method
        self.sent = sent
        self.timer: asyncio.TimerHandle | None = None


class AsyncConnection:
    """An asyncio connection to one bridge endpoint; use `transport.aio.connect()`.

    Use it from one event loop. Calls return `asyncio.Future`s: await them,
    gather them, wrap them in `asyncio.wait_for`. Cancelling one (or the task
    awaiting it) forgets the call; a late reply is dropped.

    Args: as `transport.connect` (`timeout`, `keypair`, `server_key`,
    `allowed_exception_modules`, `max_message_size`, `max_pending`).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        keypair: KeyPair | None = None,
        server_key: bytes | None = None,
        allowed_exception_modules: Iterable[str] = (),
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        if (keypair is None) != (server_key is None):
            raise ValueError("CURVE needs both keypair= and server_key=")
        self.endpoint = endpoint
        self.timeout = timeout
        self.max_message_size = max_message_size
        self.max_pending = max_pending
        allowed = frozenset(allowed_exception_modules)
        self._codec = Codec(allowed) if allowed else default_codec
        self._allowed = self._codec.allowed_exception_modules
        self._sock: zmq.asyncio.Socket = zmq.asyncio.Context.instance().socket(zmq.DEALER)
        connect_client_socket(self._sock, endpoint, keypair, server_key)
        self._pending: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self._descriptions: dict[str, Description] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd = cast("int", self._sock.getsockopt(zmq.FD))
        self._outbox: collections.deque[bytes] = collections.deque()  # waiting for room
        self._scheduled = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<transport.aio.AsyncConnection {self.endpoint}{' closed' if self._closed else ''}>"

    @overload
    def proxy(
        self,
        name: str,
        actor_class: type[A],
        version: str | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncProxy[A]: ...

    @overload
    def proxy(
        self, name: str, version: str | None = None, *, timeout: float | None = None
    ) -> AsyncProxy[Any]: ...

    def proxy(  # type: ignore[misc]  # `version` is the 2nd positional or a keyword
        self,
        name: str,
        actor_class: type[Any] | str | None = None,
        version: str | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncProxy[Any]:
        """Return a proxy of the actor `name` (no round trip: see `describe`).

        Names are checked against the actor's description when this connection
        has one (`await conn.describe(name)`); otherwise the bridge checks them
        and a wrong name fails when the call is awaited.
        """
        if isinstance(actor_class, str):
            version = actor_class
        return AsyncProxy(self, name, version, timeout)

    async def describe(self, name: str, *, fresh: bool = False) -> Description:
        """Learn what actor `name` exposes (cached per connection unless `fresh`).

        Raises:
            UnknownActor: the bridge serves no actor `name`.
        """
        description = None if fresh else self._descriptions.get(name)
        if description is None:
            reply = await self._call(Kind.DESCRIBE, name, "*", (), {}, None, None)
            description = self._descriptions[name] = Description.from_wire(reply)
        return description

    async def close(self) -> None:
        """Close; pending calls fail with `ConnectionClosed`. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for call in self._pending.values():
            self._finish(call, None, ConnectionClosed(f"connection to {self.endpoint} closed"))
        self._pending.clear()
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        self._outbox.clear()
        self._sock.close(linger=0)

    async def __aenter__(self) -> AsyncConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- calls ---------------------------------------------------------------------------

    def _call(  # noqa: PLR0917 - private
        self,
        kind: Kind,
        actor: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        version: str | None,
        timeout: float | None,
    ) -> asyncio.Future[Any]:
        """Send a request now (so per-sender order is call order) and return its future."""
        if self._closed:
            raise ConnectionClosed(f"connection to {self.endpoint} closed")
        if len(self._pending) >= self.max_pending:
            raise overloaded(actor, method, len(self._pending), self.endpoint, self.max_pending)
        msg_id = next(self._ids)
        seconds = self.timeout if timeout is None else timeout
        ttl = int(seconds * 1000) + 1  # ms, rounded up: the bridge skips it after that
        body = encode_call(
            self._codec, self.max_message_size, kind, msg_id, actor, method, args, kwargs,
            version, ttl,
        )  # fmt: skip
        loop = self._attach()
        future: asyncio.Future[Any] = loop.create_future()
        now = time.monotonic()
        call = _Call(future, actor, method, now)
        self._pending[msg_id] = call
        future.add_done_callback(lambda f: self._forget(msg_id, f))
        call.timer = loop.call_later(seconds, self._expire, msg_id, call)
        try:
            self._send(body)
        except BaseException:
            self._pending.pop(msg_id, None)
            call.timer.cancel()
            raise
        return future

    def _cast(
        self,
        actor: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        version: str | None,
    ) -> None:
        """Send (or queue, in call order) a cast now."""
        if self._closed:
            raise ConnectionClosed(f"connection to {self.endpoint} closed")
        if len(self._outbox) >= self.max_pending:
            raise Overloaded(f"{len(self._outbox)} messages wait for room to {self.endpoint}")
        body = encode_call(
            self._codec, self.max_message_size, Kind.CAST, 0, actor, method, args, kwargs,
            version,
        )  # fmt: skip
        self._attach()
        self._send(body)

    # -- the socket, through its FD ----------------------------------------------------------

    def _attach(self) -> asyncio.AbstractEventLoop:
        """The running loop; the first call registers the socket's FD with it."""
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return loop
        if self._loop is not None:
            raise RuntimeError(f"{self!r} belongs to another event loop")
        self._loop = loop
        loop.add_reader(self._fd, self._on_events)
        return loop

    def _send(self, body: bytes) -> None:
        """Send now, or queue behind what already waits for room (order is call order)."""
        sock = self._sock
        if self._outbox:
            self._outbox.append(body)
        else:
            try:
                _raw_send(sock, body, _NOBLOCK)
            except zmq.Again:
                self._outbox.append(body)
        # The FD is edge-triggered and this send may have consumed its edge.
        if not self._scheduled and sock.getsockopt(_EVENTS) & _POLLIN:  # type: ignore[operator]
            self._scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._on_events)

    def _on_events(self) -> None:
        """The FD fired (or a send saw input): send what waits, read what has arrived."""
        self._scheduled = False
        if self._closed:
            return
        sock = self._sock
        events: Any = sock.getsockopt
        outbox = self._outbox
        while outbox and events(_EVENTS) & _POLLOUT:
            try:
                _raw_send(sock, outbox[0], _NOBLOCK)
            except zmq.Again:
                break
            outbox.popleft()
        for _ in range(_BATCH):
            if not events(_EVENTS) & _POLLIN:
                return
            self._dispatch(_raw_recv(sock, _NOBLOCK))
        self._scheduled = True  # more is waiting: let other callbacks run first
        assert self._loop is not None
        self._loop.call_soon(self._on_events)

    def _dispatch(self, body: bytes) -> None:
        try:
            msg_id, value, exc = outcome(self._codec, body, self._allowed)
        except ProtocolError as bad:
            logger.warning("dropping a malformed reply from %s: %s", self.endpoint, bad)
            return
        call = self._pending.pop(msg_id, None)
        if call is None:
            logger.debug("dropping a reply to unknown, expired or cancelled call %d", msg_id)
        else:
            self._finish(call, value, exc)

    def _forget(self, msg_id: int, future: asyncio.Future[Any]) -> None:
        """The future is done (or was cancelled): drop the call and its timer."""
        call = self._pending.pop(msg_id, None)
        if call is not None and call.timer is not None:
            call.timer.cancel()

    def _finish(self, call: _Call, value: Any, exc: BaseException | None) -> None:
        if call.timer is not None:
            call.timer.cancel()
        if call.future.done():
            return
        if exc is not None:
            call.future.set_exception(exc)
        else:
            call.future.set_result(value)

    def _expire(self, msg_id: int, call: _Call) -> None:
        self._pending.pop(msg_id, None)
        elapsed = time.monotonic() - call.sent
        self._finish(call, None, MessagingTimeout(
            f"no reply from {call.actor}.{call.method} at {self.endpoint} before its deadline; "
            f"sent {elapsed:.3f} s ago"
        ))  # fmt: skip


class _AsyncMethod:
    """`proxy.method`: call it for a future, or `.defer()` it for a cast."""

    __slots__ = ("_actor", "_conn", "_method", "_timeout", "_version")

    def __init__(
        self,
        conn: AsyncConnection,
        actor: str,
        method: str,
        version: str | None,
        timeout: float | None,
    ) -> None:
        self._conn = conn
        self._actor = actor
        self._method = method
        self._version = version
        self._timeout = timeout

    def __call__(self, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        return self._conn._call(
            Kind.CALL, self._actor, self._method, args, kwargs, self._version, self._timeout
        )

    def defer(self, *args: Any, **kwargs: Any) -> None:
        """Cast: queued in call order; the result is dropped (at-most-once)."""
        self._conn._cast(self._actor, self._method, args, kwargs, self._version)

    def __repr__(self) -> str:
        return f"<async remote method {self._actor}.{self._method} at {self._conn.endpoint}>"


class AsyncProxy(Generic[A]):
    """Stand-in for a remote actor in asyncio code; use `AsyncConnection.proxy()`.

    `await proxy.method(...)` calls; `proxy.method.defer(...)` casts. With the
    actor's description on the connection (`await conn.describe(name)`), an
    unknown name raises `NoSuchMethod` at access and `await proxy.attr` reads an
    attribute; `await proxy.set_attribute(name, value)` sets one.
    """

    def __init__(
        self, conn: AsyncConnection, name: str, version: str | None, timeout: float | None
    ) -> None:
        self._conn = conn
        self._name = name
        self._version = version
        self._timeout = timeout

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        description = self._conn._descriptions.get(self._name)
        if description is not None:
            if self._version is not None and not version_is_compatible(
                description.rpc_version, self._version
            ):
                raise UnsupportedVersion(
                    f"{self._name} implements RPC version {description.rpc_version}, "
                    f"cannot serve {self._version}"
                )
            if name in description.attributes:
                return self._conn._call(
                    Kind.GET, self._name, name, (), {}, self._version, self._timeout
                )
            if name not in description.methods:
                raise NoSuchMethod(f"{self!r} has no attribute {name!r} open to remote callers")
        method = _AsyncMethod(self._conn, self._name, name, self._version, self._timeout)
        self.__dict__[name] = method
        return method

    def set_attribute(self, name: str, value: Any) -> asyncio.Future[None]:
        """Set the actor's attribute `name` inside its mailbox; await it to know it is set."""
        return self._conn._call(
            Kind.SET, self._name, name, (value,), {}, self._version, self._timeout
        )

    def __repr__(self) -> str:
        description = self._conn._descriptions.get(self._name)
        cls = description.class_name if description is not None else "(not described)"
        return f"<AsyncProxy {cls} {self._name!r} at {self._conn.endpoint}>"


def connect(
    endpoint: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    keypair: KeyPair | None = None,
    server_key: bytes | None = None,
    allowed_exception_modules: Iterable[str] = (),
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    max_pending: int = DEFAULT_MAX_PENDING,
) -> AsyncConnection:
    """Connect an asyncio client to a bridge (arguments as `transport.connect`).

    Returns:
        the connection; `await conn.close()` it (or use `async with`).
    """
    return AsyncConnection(
        endpoint, timeout=timeout, keypair=keypair, server_key=server_key,
        allowed_exception_modules=allowed_exception_modules, max_message_size=max_message_size,
        max_pending=max_pending,
    )  # fmt: skip
