"""The client side: connections, remote proxies and their futures.

Threading: one DEALER socket per connection, used by every thread under a short
lock (which also keeps one connection's messages in order). No thread of its
own: a caller waiting for a reply becomes the *leader* and reads replies for
everyone, waiting on the socket's (edge-triggered) file descriptor; the others
(*followers*) wait on a condition until their future is resolved or leadership
is free. A sequential call therefore costs no thread hand-off at all.
"""

from __future__ import annotations

import itertools
import logging
import select
import threading
import time
from typing import TYPE_CHECKING, Any, cast

import pykka
import zmq

from transport._codec import Codec, default_codec
from transport._context import wire_context
from transport._errors import (
    BRIDGE_ERRORS,
    ConnectionClosed,
    MessageTooLarge,
    MessagingError,
    MessagingTimeout,
    rebuild_exception,
)
from transport._protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Kind,
    ProtocolError,
    decode_response_fields,
    encode_request,
)
from transport._waker import Waker

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from transport._pykka import GetHookFunc, OptExcInfo
    from transport._security import KeyPair

__all__ = ["Connection", "RemoteFuture", "RemoteProxy", "connect", "fanout_cast"]

logger = logging.getLogger("transport.client")

_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_NOBLOCK = int(zmq.NOBLOCK)
_BATCH = 256
_SWEEP_INTERVAL = 1.0
DEFAULT_TIMEOUT = 60.0


class RemoteFuture(pykka.Future[Any]):
    """The future of a remote call; a `pykka.Future`.

    `get(timeout=t)` waits at most `t` seconds (raising `MessagingTimeout`, the
    call staying pending) and never past the call's own deadline, which was set
    when the call was sent; once the deadline passes, the call has failed for
    good with `MessagingTimeout`, whether or not anybody was waiting.
    """

    _get_hook: GetHookFunc[Any] | None = None  # see set_get_hook()

    def __init__(self) -> None:
        # No pykka.Future.__init__ here (one per call): see set_get_hook().
        self._conn: Connection | None = None
        self._deadline = 0.0
        self._done = False
        self._value: Any = None
        self._exc: BaseException | None = None

    def __repr__(self) -> str:
        state = "done" if self._done else "pending"
        return f"<transport.RemoteFuture {state}>"

    def get(self, *, timeout: float | None = None) -> Any:
        """Return the call's value, or raise its exception.

        Args:
            timeout: seconds to wait at most; `None` waits until the call's deadline.

        Raises:
            MessagingTimeout: no reply within `timeout` or by the call's deadline.
            Exception: the remote exception, or a `MessagingError`.

        Returns:
            the remote method's return value.
        """
        if self._get_hook is not None:
            return super().get(timeout=timeout)
        if not self._done:
            if self._conn is None:
                raise RuntimeError("this future belongs to no remote call")
            self._conn._wait(self, timeout)
        if self._exc is not None:
            raise self._exc.with_traceback(None)
        return self._value

    def set_get_hook(self, func: GetHookFunc[Any]) -> None:
        """Set pykka's get hook (as `map()`, `join()` and friends do)."""
        pykka.Future.__init__(self)
        super().set_get_hook(func)

    def set(self, value: Any | None = None) -> None:
        """Not supported: a remote call's result comes from the remote actor."""
        raise RuntimeError("a remote call's result comes from the remote actor")

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        """Not supported: a remote call's result comes from the remote actor."""
        raise RuntimeError("a remote call's result comes from the remote actor")


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

    def __call__(self, *args: Any, **kwargs: Any) -> RemoteFuture:
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


class RemoteProxy:
    """Stand-in for a remote actor, used like a `pykka.ActorProxy`.

    `proxy.method(*args, **kwargs)` returns a `RemoteFuture`;
    `proxy.method.defer(*args, **kwargs)` is a cast. Only methods can be called
    (no attribute reads or writes); the bridge refuses private names.
    """

    def __init__(
        self, connection: Connection, name: str, version: str | None, timeout: float | None
    ) -> None:
        self._transport_conn = connection
        self._transport_name = name
        self._transport_version = version
        self._transport_timeout = timeout

    def __getattr__(self, name: str) -> _RemoteMethod:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        method = _RemoteMethod(
            self._transport_conn,
            self._transport_name,
            name,
            self._transport_version,
            self._transport_timeout,
        )
        self.__dict__[name] = method
        return method

    def __repr__(self) -> str:
        version = f" version {self._transport_version}" if self._transport_version else ""
        return f"<RemoteProxy {self._transport_name!r}{version} at {self._transport_conn.endpoint}>"


class Connection:
    """A connection to one bridge endpoint; thread-safe; use `connect()`.

    Args:
        endpoint: the bridge's endpoint (`tcp://host:port`, `ipc://path`).
        timeout: default deadline of a call, in seconds after it is sent.
        keypair: this client's CURVE key pair (with `server_key`).
        server_key: the bridge's public CURVE key.
        allowed_exception_modules: modules (besides builtins) whose remote
            exceptions are re-raised as their own class instead of `RemoteError`.
        max_message_size: largest message this client sends, in bytes; larger
            ones raise `MessageTooLarge` before anything is sent.
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
    ) -> None:
        if (keypair is None) != (server_key is None):
            raise ValueError("CURVE needs both keypair= and server_key=")
        self.endpoint = endpoint
        self.timeout = timeout
        self.max_message_size = max_message_size
        allowed = frozenset(allowed_exception_modules)
        self._codec = Codec(allowed) if allowed else default_codec
        self._allowed = self._codec.allowed_exception_modules
        sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, 0)  # replies are bounded by the calls we made
            sock.setsockopt(zmq.RECONNECT_IVL, 100)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
            if keypair is not None and server_key is not None:
                sock.setsockopt(zmq.CURVE_SERVERKEY, server_key)
                sock.setsockopt(zmq.CURVE_PUBLICKEY, keypair.public)
                sock.setsockopt(zmq.CURVE_SECRETKEY, keypair.secret)
            sock.connect(endpoint)
        except BaseException:
            sock.close(linger=0)
            raise
        self._sock = sock
        self._lock = threading.Lock()  # the socket lock: held only around socket calls
        # Futures and leadership: `_state` guards them (a C-level lock, cheap to take);
        # `_cond` is a condition on that same lock, for followers to wait on.
        self._state = threading.Lock()
        self._cond = threading.Condition(self._state)
        self._pending: dict[int, RemoteFuture] = {}
        self._ids = itertools.count(1)
        self._leader = False
        self._waiters = 0
        self._polling = False
        self._closed = False
        self._waker = Waker()
        self._poller = select.poll()
        self._poller.register(cast("int", sock.getsockopt(zmq.FD)), select.POLLIN)
        self._poller.register(self._waker.fileno(), select.POLLIN)
        self._next_sweep = time.monotonic() + _SWEEP_INTERVAL

    def __repr__(self) -> str:
        return f"<transport.Connection {self.endpoint}{' closed' if self._closed else ''}>"

    def proxy(
        self, name: str, version: str | None = None, *, timeout: float | None = None
    ) -> RemoteProxy:
        """Return a proxy of the actor exposed as `name`.

        Args:
            name: the actor's name on the bridge.
            version: the RPC version to ask for ("major.minor"); `None` asks for none.
            timeout: this proxy's call deadline; the connection's when `None`.

        Returns:
            the proxy.
        """
        return RemoteProxy(self, name, version, timeout)

    def close(self, *, linger: float = 1.0) -> None:
        """Close the connection; pending calls fail with `ConnectionClosed`. Idempotent.

        Args:
            linger: seconds ZeroMQ may keep trying to deliver queued casts.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        closed = ConnectionClosed(f"connection to {self.endpoint} closed")
        with self._state:
            for future in self._pending.values():
                self._resolve_locked(future, None, closed)
            self._pending.clear()
            self._cond.notify_all()
        self._waker.wake()
        with self._state:
            self._waiters += 1
            try:
                self._cond.wait_for(lambda: not self._leader, timeout=5.0)
            finally:
                self._waiters -= 1
        with self._lock:
            self._sock.close(linger=int(linger * 1000))
        self._waker.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- sending ----------------------------------------------------------------------

    def _encode(  # noqa: PLR0917 - private, hot path
        self,
        kind: Kind,
        msg_id: int,
        actor: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        version: str | None,
        ttl: int | None = None,
    ) -> bytes:
        body = encode_request(
            self._codec, kind=kind, msg_id=msg_id, actor=actor, method=method, args=args,
            kwargs=kwargs, version=version, context=wire_context(), ttl=ttl,
            sent=None if ttl is None else int(time.monotonic() * 1000),
        )  # fmt: skip
        if len(body) > self.max_message_size:
            raise MessageTooLarge(
                f"{actor}.{method}: message of {len(body)} bytes exceeds the limit of "
                f"{self.max_message_size}"
            )
        return body

    def _send(self, body: bytes, deadline: float) -> None:
        """Queue `body`; when ZeroMQ's send queue is full, wait for room until `deadline`."""
        sock = self._sock
        while True:
            with self._lock:
                if self._closed:
                    raise ConnectionClosed(f"connection to {self.endpoint} closed")
                try:
                    sock.send(body, _NOBLOCK)
                    sent = True
                except zmq.Again:
                    sent = False
                # The FD is edge-triggered and this send may have consumed the edge.
                if self._polling and sock.getsockopt(_EVENTS) & _POLLIN:  # type: ignore[operator]
                    self._waker.wake()
            if sent:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MessagingTimeout(
                    f"cannot queue a message to {self.endpoint}: send queue full"
                )
            # Back-pressure (slow path): wait a little for room, then try again.
            # Short waits, since the edge-triggered FD may be consumed by others.
            waiter = select.poll()
            waiter.register(cast("int", sock.getsockopt(zmq.FD)), select.POLLIN)
            waiter.poll(max(1, min(10, int(remaining * 1000))))

    def _call(  # noqa: PLR0917 - private, hot path
        self,
        actor: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        version: str | None,
        timeout: float | None,
    ) -> RemoteFuture:
        if self._closed:
            raise ConnectionClosed(f"connection to {self.endpoint} closed")
        msg_id = next(self._ids)
        ttl = int((self.timeout if timeout is None else timeout) * 1000) + 1  # ms, rounded up
        body = self._encode(Kind.CALL, msg_id, actor, method, args, kwargs, version, ttl)
        future = RemoteFuture()
        future._conn = self
        now = time.monotonic()
        future._deadline = now + (self.timeout if timeout is None else timeout)
        self._pending[msg_id] = future
        try:
            self._send(body, future._deadline)
        except MessagingTimeout as exc:
            with self._state:
                self._pending.pop(msg_id, None)
                self._resolve_locked(future, None, exc)
        except BaseException:
            self._pending.pop(msg_id, None)
            raise
        if now >= self._next_sweep:
            self._sweep(now)
        return future

    def _cast(
        self,
        actor: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        version: str | None,
    ) -> None:
        body = self._encode(Kind.CAST, 0, actor, method, args, kwargs, version)
        self._send(body, time.monotonic() + self.timeout)

    # -- receiving: leader/follower ------------------------------------------------------

    def _wait(self, future: RemoteFuture, timeout: float | None) -> None:
        """Wait until `future` is resolved, its deadline passes, or `timeout` runs out."""
        limit = future._deadline
        if timeout is not None:
            limit = min(limit, time.monotonic() + timeout)
        state = self._state
        while True:
            with state:
                if future._done:
                    return
                now = time.monotonic()
                if now >= future._deadline:
                    self._expire_locked(future)
                    return
                if now >= limit:
                    raise MessagingTimeout(
                        f"no reply within {timeout} s (the call is still pending)"
                    )
                if self._leader:
                    self._waiters += 1
                    try:
                        self._cond.wait(limit - now)
                    finally:
                        self._waiters -= 1
                    continue
                self._leader = True
            try:
                self._lead(future, limit)
            finally:
                with state:
                    self._leader = False
                    if self._waiters:  # a sequential caller has nobody to hand over to
                        self._cond.notify_all()

    def _lead(self, future: RemoteFuture, limit: float) -> None:
        """Read replies for everyone until `future` is resolved or `limit` passes.

        The hot path of every call. Before sleeping, one ZMQ_EVENTS check (the
        FD is edge-triggered: the check is what makes sleeping safe). After a
        wake-up a reply is most likely there, so it is received straight away;
        ``Again`` (rare) also leaves the socket safe to sleep on. More is read
        in the same turn only while other calls are pending.
        """
        sock = self._sock
        events: Callable[[int], int] = sock.getsockopt  # type: ignore[assignment]
        recv = sock.recv
        lock = self._lock
        pending = self._pending
        waker = self._waker
        waker_fd = waker.fileno()
        woken = False
        try:
            while True:
                with lock:
                    if self._closed:
                        return
                    self._polling = False
                    bodies: list[bytes] | None = None
                    if woken:
                        try:  # noqa: SIM105 - contextlib.suppress costs a frame per call
                            bodies = [recv(_NOBLOCK)]
                        except zmq.Again:
                            pass
                    elif events(_EVENTS) & _POLLIN:
                        bodies = [recv(_NOBLOCK)]
                    if bodies is None:
                        self._polling = True
                    elif len(pending) > 1:  # others wait too: take what else came in
                        while len(bodies) < _BATCH and events(_EVENTS) & _POLLIN:
                            bodies.append(recv(_NOBLOCK))
                woken = False
                if bodies is not None:
                    self._dispatch(bodies)
                    if future._done:
                        return
                    continue
                if future._done:
                    return
                remaining = limit - time.monotonic()
                if remaining <= 0:
                    return
                for fd, _ in self._poller.poll(int(remaining * 1000) + 1):
                    woken = True
                    if fd == waker_fd:
                        waker.clear()
        finally:
            self._polling = False

    def _dispatch(self, bodies: list[bytes]) -> None:
        outcomes: list[tuple[int, Any, BaseException | None]] = []
        for body in bodies:
            try:
                msg_id, is_reply, fields = decode_response_fields(self._codec, body)
            except ProtocolError as bad:
                logger.warning("dropping a malformed reply from %s: %s", self.endpoint, bad)
                continue
            if is_reply:
                outcomes.append((msg_id, fields[0], None))
            else:
                outcomes.append((msg_id, None, self._error(fields)))
        now = time.monotonic()
        with self._state:
            pending = self._pending
            for msg_id, value, exc in outcomes:
                future = pending.pop(msg_id, None)
                if future is None:
                    logger.debug("dropping a reply to unknown or expired call %d", msg_id)
                elif now >= future._deadline:
                    self._expire_locked(future)
                else:
                    self._resolve_locked(future, value, exc)
            if self._waiters:
                self._cond.notify_all()
        if now >= self._next_sweep:
            self._sweep(now)

    def _error(self, fields: list[Any]) -> BaseException:
        kind, module, name, message, args, traceback = fields
        message = str(message)
        if kind == "remote":
            return rebuild_exception(
                module=str(module), qualname=str(name), message=message,
                args=args if isinstance(args, list) else None, traceback=str(traceback or ""),
                allowed_modules=self._allowed,
            )  # fmt: skip
        return BRIDGE_ERRORS.get(str(kind), MessagingError)(message)

    @staticmethod
    def _resolve_locked(future: RemoteFuture, value: Any, exc: BaseException | None) -> None:
        if not future._done:
            future._value = value
            future._exc = exc
            future._done = True

    def _expire_locked(self, future: RemoteFuture) -> None:
        for msg_id, pending in list(self._pending.items()):
            if pending is future:
                del self._pending[msg_id]
                break
        self._resolve_locked(
            future, None, MessagingTimeout(f"no reply from {self.endpoint} before the deadline")
        )

    def _sweep(self, now: float) -> None:
        """Fail every pending call whose deadline passed, read or not."""
        self._next_sweep = now + _SWEEP_INTERVAL
        with self._state:
            expired = [
                msg_id for msg_id, future in list(self._pending.items()) if now >= future._deadline
            ]
            for msg_id in expired:
                future = self._pending.pop(msg_id)
                self._resolve_locked(
                    future,
                    None,
                    MessagingTimeout(f"no reply from {self.endpoint} before the deadline"),
                )
            if expired:
                self._cond.notify_all()


def connect(
    endpoint: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    keypair: KeyPair | None = None,
    server_key: bytes | None = None,
    allowed_exception_modules: Iterable[str] = (),
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> Connection:
    """Connect to a bridge (ZeroMQ connects lazily and reconnects by itself).

    Args:
        endpoint: the bridge's endpoint.
        timeout: default deadline of each call, in seconds.
        keypair: this client's CURVE key pair (with `server_key`).
        server_key: the bridge's public CURVE key (with `keypair`).
        allowed_exception_modules: modules whose exceptions are re-raised as
            themselves (builtins always are).
        max_message_size: the largest message this client sends, in bytes.

    Returns:
        the connection; `close()` it when done (or use it as a context manager).

    Example:
        >>> with connect("tcp://127.0.0.1:5555", timeout=5) as conn:
        ...     volumes = conn.proxy("volume", version="1.2")
        ...     # volumes.create_volume(size=10).get()
        ...     # volumes.refresh.defer()
    """
    return Connection(
        endpoint, timeout=timeout, keypair=keypair, server_key=server_key,
        allowed_exception_modules=allowed_exception_modules, max_message_size=max_message_size,
    )  # fmt: skip


def fanout_cast(
    targets: Iterable[Connection | str],
    name: str,
    method: str,
    /,
    *args: Any,
    **kwargs: Any,
) -> None:
    """Cast `name.method(*args, **kwargs)` to every target: one message each.

    Endpoint strings get a temporary plain connection, closed with a one-second
    linger so the cast still goes out; each is a new sender, so two fan-outs to
    the same endpoint string are not ordered. Pass connections to keep order
    (and for CURVE). A target
    that cannot take the message is logged and skipped (a fan-out is
    at-most-once, like a cast).

    Raises:
        TypeError: an argument cannot be encoded (nothing was sent).
        MessageTooLarge: the message exceeds a target's limit (nothing was sent
            to that target).
    """
    context = wire_context()
    body = encode_request(
        default_codec, kind=Kind.CAST, msg_id=0, actor=name, method=method, args=args,
        kwargs=kwargs, version=None, context=context,
    )  # fmt: skip
    for target in targets:
        conn = connect(target) if isinstance(target, str) else target
        try:
            if len(body) > conn.max_message_size:
                raise MessageTooLarge(
                    f"{name}.{method}: message of {len(body)} bytes exceeds the limit of "
                    f"{conn.max_message_size}"
                )
            conn._send(body, time.monotonic() + conn.timeout)
        except (MessagingTimeout, ConnectionClosed) as exc:
            logger.warning(
                "fan-out cast %s.%s to %s not sent: %s", name, method, conn.endpoint, exc
            )
        finally:
            if isinstance(target, str):
                conn.close(linger=1.0)
