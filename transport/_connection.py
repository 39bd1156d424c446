"""The client's connection to one bridge: sending, reading replies, deadlines.

Threading: one DEALER socket per connection, used by every thread under a short
lock (which also keeps one connection's messages in order). No thread of its
own for `get()`: a caller waiting for a reply becomes the *leader* and reads
replies for everyone, waiting on the socket's (edge-triggered) file
descriptor; the others (*followers*) wait on a condition until their future is
resolved or leadership is free. A sequential call therefore costs no thread
hand-off at all. Futures with callbacks (`await`) have nobody calling `get()`:
while any is pending, a reader thread takes the leader's part.

The lean wait: a caller waiting for the only pending call, with no callbacks
and no other thread using the connection lately, receives on the socket
itself, blocking inside ZeroMQ for at most `_LEAN_SLICE_MS` with the socket
lock held: what a REQ socket does, with its system calls (no readiness check
before sleeping, no second `poll`). A call slower than that, or any sign of
another thread, goes the general way (and so do the calls after a slow one,
until a call is answered within the slice again: a timed-out receive costs
more than it saves).
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import logging
import select
import threading
import time
from math import floor
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

import zmq

from transport._calls import check_version, described, encode_call, overloaded, too_large
from transport._codec import Codec, default_codec, new_packer
from transport._context import wire_context
from transport._errors import (
    ConnectionClosed,
    MessagingTimeout,
    error_from_fields,
)
from transport._future import RemoteFuture
from transport._protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    MAX_MSG_ID,
    PROTOCOL_VERSION,
    Kind,
    ProtocolError,
    call_body,
    decode_response_fields,
    request_body,
)
from transport._proxy import Description, RemoteProxy
from transport._waker import Waker, wake_if_input

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from transport._security import KeyPair

__all__ = [
    "DEFAULT_MAX_PENDING",
    "DEFAULT_TIMEOUT",
    "Connection",
    "connect",
    "connect_client_socket",
]

A = TypeVar("A")

logger = logging.getLogger("transport.client")

_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_NOBLOCK = int(zmq.NOBLOCK)
_BATCH = 256
_SWEEP_INTERVAL = 1.0
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_PENDING = 100_000
_READER_IDLE = 1.0  # seconds the reader thread lingers with no callback pending
# The lean wait (see `Connection._lean`): how long it may hold the socket, in
# milliseconds, and for how long after another thread found the socket busy
# it is not used (seconds).
_LEAN_SLICE_MS = 2
_LEAN_SLICE = _LEAN_SLICE_MS / 1000
_LEAN_OFF_AFTER_CONTENTION = 1.0
_CALL = int(Kind.CALL)
_CAST = int(Kind.CAST)
_REPLY = int(Kind.REPLY)
_PACKER_KEEP_LIMIT = 1 << 20  # a packer whose buffer grew past this is replaced
_new_future = object.__new__  # RemoteFuture() without its __init__ frame (see RemoteFuture)
# `zmq.Socket.send` is the backend's send behind a Python layer that only adds
# draft sockets' routing_id/group; the backend's own (public: zmq.backend.Socket)
# saves ~2.4k instructions per message.
_send_frame: Callable[[zmq.Socket[bytes], bytes, int], None] = zmq.backend.Socket.send


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def connect_client_socket(
    sock: zmq.Socket[Any], endpoint: str, keypair: KeyPair | None, server_key: bytes | None
) -> None:
    """Set a client DEALER socket's options (docs/protocol.rst) and connect it; close on failure."""
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
        max_pending: most calls outstanding at once; one more raises
            `Overloaded` at once, sending nothing.
        peer_status: called (in the caller's thread) when a call times out;
            what it returns is added to the `MessagingTimeout` as a note (a
            `Directory` tells whether the services table shows the node up).
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
        peer_status: Callable[[], str | None] | None = None,
    ) -> None:
        if (keypair is None) != (server_key is None):
            raise ValueError("CURVE needs both keypair= and server_key=")
        self.endpoint = endpoint
        self.timeout = timeout
        self.max_message_size = max_message_size
        self.max_pending = max_pending
        self.peer_status = peer_status
        allowed = frozenset(allowed_exception_modules)
        self._codec = Codec(allowed) if allowed else default_codec
        self._allowed = self._codec.allowed_exception_modules
        sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        try:
            sock.setsockopt(zmq.RCVTIMEO, _LEAN_SLICE_MS)  # blocking receives: the lean wait
        except BaseException:
            sock.close(linger=0)
            raise
        connect_client_socket(sock, endpoint, keypair, server_key)
        self._sock = sock
        self._lock = threading.Lock()  # the socket lock: held only around socket calls
        self._pack = new_packer()  # (used only under the socket lock)
        self._last_ttl = (0.0, 1)  # the last timeout a call had, and its ttl
        # Futures and leadership: `_state` guards them (a C-level lock, cheap to take);
        # `_cond` is a condition on that same lock, for followers to wait on.
        self._state = threading.Lock()
        self._cond = threading.Condition(self._state)
        self._pending: dict[int, RemoteFuture[Any]] = {}
        self._descriptions: dict[str, Description] = {}
        # Futures with callbacks, by deadline (a lazy heap: resolved ones are skipped).
        self._watched: list[tuple[float, int, RemoteFuture[Any]]] = []
        self._watching = 0
        self._reader: threading.Thread | None = None
        self._ids = itertools.count(1)
        self._leader = False
        self._waiters = 0
        self._polling = False
        # When the socket was last seen without input: a reply read later arrived
        # after that, so it is late if its call's deadline had passed by then.
        self._empty_at = 0.0
        self._closed = False
        self._contended_at = -_LEAN_OFF_AFTER_CONTENTION  # when a thread found the socket busy
        self._lean_ok = True  # False after a lean wait ran out, until a call is fast again
        self._waker = Waker()
        self._poller = select.poll()
        self._poller.register(cast("int", sock.getsockopt(zmq.FD)), select.POLLIN)
        self._poller.register(self._waker.fileno(), select.POLLIN)
        # Input pending? (ZMQ_EVENTS, checked by libzmq's zmq_poll with a zero timeout:
        # pyzmq's getsockopt builds an enum per call, ~7k instructions more.)
        self._input_ready = functools.partial(zmq.backend.zmq_poll, [(sock, _POLLIN)], 0)
        self._next_sweep = time.monotonic() + _SWEEP_INTERVAL

    def __repr__(self) -> str:
        return f"<transport.Connection {self.endpoint}{' closed' if self._closed else ''}>"

    @overload
    def proxy(
        self,
        name: str,
        actor_class: type[A],
        version: str | None = None,
        *,
        timeout: float | None = None,
        check: bool = True,
    ) -> RemoteProxy[A]: ...

    @overload
    def proxy(
        self,
        name: str,
        version: str | None = None,
        *,
        timeout: float | None = None,
        check: bool = True,
    ) -> RemoteProxy[Any]: ...

    def proxy(  # type: ignore[misc]  # `version` is the 2nd positional or a keyword
        self,
        name: str,
        actor_class: type[Any] | str | None = None,
        version: str | None = None,
        *,
        timeout: float | None = None,
        check: bool = True,
    ) -> RemoteProxy[Any]:
        """Return a proxy of the actor exposed as `name`, after learning what it exposes.

        The first proxy of an actor on this connection asks the bridge what
        the actor exposes (one round trip); later ones reuse that description.

        Args:
            name: the actor's name on the bridge.
            actor_class: the actor's class, for the type checker only
                (`RemoteProxy[Class]`, see docs/proxies.rst); may be omitted.
            version: the RPC version to ask for ("major.minor"); `None` asks for none.
            timeout: this proxy's call deadline; the connection's when `None`.
            check: `False` skips the describe round trip, for casts to hosts
                that may be down: any public name is then taken for a method
                (the bridge still refuses what it does not serve), attributes
                cannot be read or set, and nothing is raised here.

        Raises:
            UnknownActor: the bridge serves no actor `name` (also a
                `pykka.ActorDeadError`).
            UnsupportedVersion: the actor cannot serve `version`.
            MessagingTimeout: the bridge did not answer in time.

        Returns:
            the proxy.
        """
        if isinstance(actor_class, str):
            version, actor_class = actor_class, None
        description = self._describe(name, version, timeout) if check else None
        return RemoteProxy(self, name, version, timeout, description)

    def describe(self, name: str, *, fresh: bool = False) -> Description:
        """Tell what the actor `name` exposes (cached per connection unless `fresh`).

        Raises:
            UnknownActor: the bridge serves no actor `name`.
        """
        return self._describe(name, None, None, fresh=fresh)

    def _describe(
        self, name: str, version: str | None, timeout: float | None, *, fresh: bool = False
    ) -> Description:
        description = described(
            self._descriptions, name,
            lambda: self._member(Kind.DESCRIBE, name, "*", (), None, timeout).get(),
            fresh=fresh,
        )  # fmt: skip
        check_version(name, description, version)
        return description

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
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(5.0)  # it sees `_closed` at once (woken above, or as a follower)
        with self._lock:
            self._sock.close(linger=int(linger * 1000))
        self._waker.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- sending ----------------------------------------------------------------------

    def _send(self, body: bytes, deadline: float) -> None:
        """Queue `body`; when ZeroMQ's send queue is full, wait for room until `deadline`."""
        sock = self._sock
        lock = self._lock
        while True:
            if not lock.acquire(False):  # another thread has the socket: no lean waits a while
                self._contended_at = time.monotonic()
                lock.acquire()
            try:
                if self._closed:
                    raise ConnectionClosed(f"connection to {self.endpoint} closed")
                try:
                    _send_frame(sock, body, _NOBLOCK)
                    sent = True
                except zmq.Again:
                    sent = False
                if self._polling:  # this send may have consumed the FD's edge
                    wake_if_input(sock, self._waker)
            finally:
                lock.release()
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
        kind: int = _CALL,
    ) -> RemoteFuture[Any]:
        """Send a request answered with a reply (a call by default) and return its future.

        The usual case in one step under the socket lock: pack (with the
        connection's own packer, which only that lock's holder uses), send, and
        only then make and register the future, still before the lock is
        released: no reader can have taken the reply yet, and the work between
        a reply and the next request's send is the least it can be.
        """
        if self._closed:
            raise ConnectionClosed(f"connection to {self.endpoint} closed")
        if len(self._pending) >= self.max_pending:
            raise overloaded(actor, method, len(self._pending), self.endpoint, self.max_pending)
        msg_id = next(self._ids)
        if timeout is None:
            timeout = self.timeout
        last = self._last_ttl  # (one attribute: threads may race to replace it)
        if last[0] == timeout:  # kept: int() costs ~1k instructions
            ttl = last[1]
        else:
            ttl = int(timeout * 1000) + 1  # ttl in ms, rounded up
            self._last_ttl = (timeout, ttl)
        now = time.monotonic()
        sent = floor(now * 1000)  # (int() of it, cheaper: it is positive)
        context = wire_context(actor, method)  # (the outgoing hook runs here: under no lock)
        lock = self._lock
        if not lock.acquire(False):  # another thread has the socket: no lean waits a while
            self._contended_at = time.monotonic()
            return self._call_queued(
                request_body(self._codec, kind, msg_id, actor, method, args, kwargs, version,
                             context, ttl, sent),
                msg_id, actor, method, now, timeout,
            )  # fmt: skip
        try:
            if self._closed:
                raise ConnectionClosed(f"connection to {self.endpoint} closed")
            body = call_body(
                self._pack, self._codec, kind, msg_id, actor, method, args, kwargs, version,
                context, ttl, sent,
            )  # fmt: skip
            if len(body) > _PACKER_KEEP_LIMIT:  # its buffer grew to this size: a fresh one
                self._pack = new_packer()
            if len(body) > self.max_message_size:
                raise too_large(actor, method, len(body), self.max_message_size)
            try:
                _send_frame(self._sock, body, _NOBLOCK)
            except zmq.Again:  # the send queue is full: wait for room, the general way
                future = None
            else:
                future = self._pending[msg_id] = self._future(actor, method, now, now + timeout)
            if self._polling:  # this send may have consumed the FD's edge
                wake_if_input(self._sock, self._waker)
        finally:
            lock.release()
        if future is None:
            return self._call_queued(body, msg_id, actor, method, now, timeout)
        if now >= self._next_sweep:
            self._sweep(now)
        return future

    def _future(self, actor: str, method: str, now: float, deadline: float) -> RemoteFuture[Any]:
        """A call's future, made without `RemoteFuture.__init__`'s frame."""
        future: RemoteFuture[Any] = _new_future(RemoteFuture)
        future._conn = self
        future._label = (actor, method, now)
        future._deadline = deadline
        # The class's defaults, set on the instance: reading them (get(), the lean
        # wait) is then a specialized instance-attribute load, not a class lookup.
        future._get_hook = None
        future._callbacks = None
        future._done = False
        return future

    def _call_queued(  # noqa: PLR0917 - private
        self, body: bytes, msg_id: int, actor: str, method: str, now: float, timeout: float
    ) -> RemoteFuture[Any]:
        """`_call` when the socket is busy or its queue full: register, then send (or wait)."""
        if len(body) > self.max_message_size:
            raise too_large(actor, method, len(body), self.max_message_size)
        deadline = now + timeout
        future = self._future(actor, method, now, deadline)
        pending = self._pending
        pending[msg_id] = future
        try:
            self._send(body, deadline)
        except MessagingTimeout as exc:
            with self._state:
                pending.pop(msg_id, None)
                self._resolve_locked(future, None, exc)
        except BaseException:
            pending.pop(msg_id, None)
            raise
        if now >= self._next_sweep:
            self._sweep(now)
        return future

    def _member(  # noqa: PLR0917 - private
        self,
        kind: Kind,
        actor: str,
        name: str,
        args: tuple[Any, ...],
        version: str | None,
        timeout: float | None,
    ) -> RemoteFuture[Any]:
        """Send a describe, get or set request (answered like a call)."""
        return self._call(actor, name, args, {}, version, timeout, int(kind))

    def _cast(
        self,
        actor: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        version: str | None,
    ) -> None:
        body = encode_call(
            self._codec, self.max_message_size, _CAST, 0, actor, method, args, kwargs, version
        )
        self._send(body, time.monotonic() + self.timeout)

    # -- receiving: leader/follower ------------------------------------------------------

    def _wait(self, future: RemoteFuture[Any], timeout: float | None) -> None:
        """Wait until `future` is resolved, its deadline passes, or `timeout` runs out.

        When the time is up, what has arrived is read before deciding: a reply
        already here is taken (so `timeout=0` is a non-blocking check), even
        past the call's deadline, as long as the call has not been failed.
        """
        limit = future._deadline
        if timeout is not None:
            limit = min(limit, time.monotonic() + timeout)
        state = self._state
        while True:
            state.acquire()  # (not `with`: its two special-method lookups cost more)
            try:
                if future._done:
                    return
                now = time.monotonic()
                if now < limit:
                    if self._leader:
                        self._waiters += 1
                        try:
                            self._cond.wait(limit - now)
                        finally:
                            self._waiters -= 1
                        continue
                    self._leader = True
                    lean = (
                        self._lean_ok
                        and len(self._pending) == 1
                        and not self._watching
                        and limit - now > _LEAN_SLICE
                        and now - self._contended_at > _LEAN_OFF_AFTER_CONTENTION
                    )
            finally:
                state.release()
            if now >= limit:
                self._read_arrived()
                with state:
                    if future.done():  # (a method: resolved by _read_arrived meanwhile)
                        return
                    if time.monotonic() >= future._deadline:
                        self._expire_locked(future)
                        return
                exc = self._timeout(future, f"within {timeout} s (the call is still pending)")
                self._note_peer_status(exc)
                raise exc
            handed_over = False  # leadership (the lean wait may hand it over itself)
            try:
                if lean:
                    handed_over = self._lean(future)
                    if handed_over:  # resolved, and leadership given up
                        return
                if not handed_over:
                    self._lead(future, limit)
                    if not self._lean_ok and time.monotonic() - future._label[2] < _LEAN_SLICE:
                        self._lean_ok = True  # answered within a slice: lean waits pay again
            finally:
                if not handed_over:
                    with state:
                        self._leader = False
                        if self._waiters:  # a sequential caller has nobody to hand over to
                            self._cond.notify_all()

    def _lean(self, future: RemoteFuture[Any]) -> bool:
        """The lean wait for the only pending call (as its leader).

        True when `future` got resolved; leadership is then given up here, in
        the same locked step; False: the caller is still the leader.

        Receives with the socket lock held, blocking inside ZeroMQ for at most
        `_LEAN_SLICE_MS` (the socket's receive timeout), so another thread's
        send waits at most that long; that thread then turns lean waits off
        for a while (`_send`). The deadline is at least a slice away (the
        caller checks), so what arrives is in time.
        """
        lock = self._lock
        if not lock.acquire(False):
            return False
        try:
            if self._closed:
                return False
            body = self._sock.recv()
        except zmq.Again:  # nothing within the slice: a slow call, the general way...
            self._lean_ok = False  # ...and the next ones too, until one is fast again
            return False
        finally:
            lock.release()
        # What _dispatch does, for one body and without its bookkeeping: the
        # deadline is at least a slice away, so the reply is in time. A plain
        # reply is recognized here, with decode_response_fields' first test (the
        # same one, inline: this is the critical path); anything else is theirs.
        try:
            msg = self._codec.decode(body)
        except Exception:  # noqa: BLE001 - decode_response_fields says what is wrong
            msg = None
        exc = None
        if msg.__class__ is list and len(msg) == 4:
            version, kind, msg_id, value = msg
            plain = (
                version.__class__ is int
                and version == PROTOCOL_VERSION
                and kind.__class__ is int
                and kind == _REPLY
                and msg_id.__class__ is int
                and 0 <= msg_id <= MAX_MSG_ID
            )
        else:
            plain = False
        if not plain:
            try:
                msg_id, is_reply, fields = decode_response_fields(self._codec, body)
            except ProtocolError as bad:
                logger.warning("dropping a malformed reply from %s: %s", self.endpoint, bad)
                return False
            value = fields[0] if is_reply else None
            if not is_reply:
                exc = self._error(fields)
        state = self._state
        state.acquire()  # (not `with`: its two special-method lookups cost more)
        try:
            resolved = self._pending.pop(msg_id, None)
            if resolved is None:
                logger.debug("dropping a reply to unknown or expired call %d", msg_id)
            elif resolved._callbacks is None:  # _resolve_locked inline: nothing to call
                resolved._value = value
                resolved._exc = exc
                resolved._done = True
            else:
                self._resolve_locked(resolved, value, exc)
            if future._done:
                self._leader = False
            if self._waiters:
                self._cond.notify_all()
            return future._done
        finally:
            state.release()

    def _read_arrived(self) -> None:
        """Read and dispatch every reply that has arrived, without waiting (any thread)."""
        sock = self._sock
        events = self._input_ready
        bodies: list[bytes] = []
        lock = self._lock
        if not lock.acquire(False):  # (held by a lean wait, maybe: no more of them a while)
            self._contended_at = time.monotonic()
            lock.acquire()
        try:
            if self._closed:
                return
            try:
                while len(bodies) < _BATCH and events():
                    bodies.append(sock.recv(_NOBLOCK))
            except zmq.Again:
                pass
            if not bodies:
                self._empty_at = time.monotonic()
            if self._polling:  # reading may have consumed the FD's edge
                wake_if_input(sock, self._waker)
        finally:
            lock.release()
        if bodies:
            self._dispatch(bodies)

    def _lead(self, future: RemoteFuture[Any] | None, limit: float) -> None:
        """Read replies for everyone until `future` is resolved or `limit` passes.

        The hot path of every call. Before sleeping, one ZMQ_EVENTS check (the
        FD is edge-triggered: the check is what makes sleeping safe). After a
        wake-up a reply is most likely there, so it is received straight away;
        ``Again`` (rare) also leaves the socket safe to sleep on. More is read
        in the same turn only while other calls are pending. The reader thread
        leads with no future of its own (`None`).
        """
        sock = self._sock
        events = self._input_ready
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
                    elif events():
                        bodies = [recv(_NOBLOCK)]
                    if bodies is None:
                        self._polling = True
                    elif len(pending) > 1:  # others wait too: take what else came in
                        while len(bodies) < _BATCH and events():
                            bodies.append(recv(_NOBLOCK))
                woken = False
                if bodies is not None:
                    self._dispatch(bodies)
                    if future is not None and future._done:
                        return
                    continue
                if future is not None and future._done:
                    return
                slept_at = time.monotonic()
                remaining = limit - slept_at
                if remaining <= 0:
                    return
                ready = self._poller.poll(int(remaining * 1000) + 1)
                # Woken by the socket alone, its input came in just now; woken by the
                # waker, it may have come in any time during the sleep.
                empty_at = time.monotonic()
                for fd, _ in ready:
                    woken = True
                    if fd == waker_fd:
                        empty_at = slept_at
                        waker.clear()
                self._empty_at = empty_at
                if woken and future is None and empty_at == slept_at:
                    return  # the reader, woken: go and look at its watch list
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
        empty_at = self._empty_at
        with self._state:
            pending = self._pending
            for msg_id, value, exc in outcomes:
                future = pending.pop(msg_id, None)
                if future is None:
                    logger.debug("dropping a reply to unknown or expired call %d", msg_id)
                elif future._deadline <= empty_at:  # it arrived after the deadline: late
                    self._resolve_locked(future, None, self._timeout(future, "before its deadline"))
                else:  # it may have arrived in time, and the call has not been failed: taken
                    self._resolve_locked(future, value, exc)
            if self._waiters:
                self._cond.notify_all()
        if now >= self._next_sweep:
            self._sweep(now)

    def _error(self, fields: list[Any]) -> BaseException:
        return error_from_fields(fields, self._allowed)

    def _resolve_locked(
        self, future: RemoteFuture[Any], value: Any, exc: BaseException | None
    ) -> None:
        if not future._done:
            future._value = value
            future._exc = exc
            future._done = True
            callbacks = future._callbacks
            if callbacks is not None:
                future._callbacks = None
                self._watching -= 1
                for fn in callbacks:
                    try:
                        fn(future)
                    except Exception:
                        logger.exception("a done callback of %r failed", future)

    def _timeout(self, future: RemoteFuture[Any], detail: str) -> MessagingTimeout:
        """The timeout of `future`: it names the endpoint, actor, method and time since sent."""
        actor, method, sent = future._label
        return MessagingTimeout(
            f"no reply from {actor}.{method} at {self.endpoint} {detail}; "
            f"sent {time.monotonic() - sent:.3f} s ago"
        )

    def _note_peer_status(self, exc: BaseException) -> None:
        """Add `peer_status()` to a timeout as a note, once (in the caller's thread, no lock)."""
        status = self.peer_status
        if status is None or not isinstance(exc, MessagingTimeout) or exc.peer_noted:
            return
        if _in_event_loop():
            return  # peer_status may query a database: never in an event loop's thread
        exc.peer_noted = True
        try:
            note = status()
        except Exception as failure:  # noqa: BLE001 - a note must never hide the timeout
            note = f"peer status unknown: {failure!r}"
        if note:
            exc.add_note(note)

    def _expire_locked(self, future: RemoteFuture[Any]) -> None:
        for msg_id, pending in list(self._pending.items()):
            if pending is future:
                del self._pending[msg_id]
                break
        self._resolve_locked(future, None, self._timeout(future, "before its deadline"))

    def _sweep(self, now: float) -> None:
        """Fail every pending call whose deadline passed, after reading what has arrived."""
        self._next_sweep = now + _SWEEP_INTERVAL
        self._read_arrived()
        with self._state:
            expired = [
                msg_id for msg_id, future in list(self._pending.items()) if now >= future._deadline
            ]
            for msg_id in expired:
                future = self._pending.pop(msg_id)
                self._resolve_locked(future, None, self._timeout(future, "before its deadline"))
            if expired:
                self._cond.notify_all()

    # -- callbacks: the reader thread ------------------------------------------------------

    def _add_callback(self, future: RemoteFuture[Any], fn: Callable[[Any], None]) -> bool:
        """Register `fn` on pending `future` (False: it is already done)."""
        with self._state:
            if future._done:
                return False
            if future._callbacks is None:
                future._callbacks = [fn]
                self._watching += 1
                heapq.heappush(self._watched, (future._deadline, id(future), future))
            else:
                future._callbacks.append(fn)
            if self._reader is None:
                self._reader = threading.Thread(
                    target=self._read_for_callbacks, name=f"transport-reader-{self.endpoint}",
                    daemon=True,
                )  # fmt: skip
                self._reader.start()
            elif self._polling:
                self._waker.wake()  # a new, earlier deadline, maybe
        return True

    def _remove_callback(self, future: RemoteFuture[Any], fn: Callable[[Any], None]) -> None:
        with self._state:
            callbacks = future._callbacks
            if callbacks is None or fn not in callbacks:
                return
            callbacks.remove(fn)
            if not callbacks:  # nobody waits for it any more (its heap entry is skipped)
                future._callbacks = None
                self._watching -= 1

    def _read_for_callbacks(self) -> None:
        """The reader thread: lead (or follow) while futures with callbacks are pending."""
        state = self._state
        watched = self._watched
        idle_since: float | None = None
        try:
            while True:
                with state:
                    now = time.monotonic()
                    while watched and (watched[0][2]._callbacks is None or watched[0][2]._done):
                        heapq.heappop(watched)
                    if self._closed:
                        return
                    if not self._watching:
                        idle_since = idle_since or now
                        if now - idle_since >= _READER_IDLE:
                            return
                    else:
                        idle_since = None
                    limit = min(watched[0][0] if watched else now + _READER_IDLE, now + 1.0)
                    if limit <= now:  # the earliest watched call has passed its deadline
                        lead = False
                    elif self._leader:
                        self._waiters += 1
                        try:
                            self._cond.wait(limit - now)
                        finally:
                            self._waiters -= 1
                        continue
                    else:
                        self._leader = True
                        lead = True
                if not lead:
                    self._sweep(now)
                    continue
                try:
                    self._lead(None, limit)
                finally:
                    with state:
                        self._leader = False
                        if self._waiters:
                            self._cond.notify_all()
        finally:
            with state:
                self._reader = None
                if self._watching and not self._closed:  # registered while leaving: go on
                    self._reader = threading.Thread(
                        target=self._read_for_callbacks, daemon=True,
                        name=f"transport-reader-{self.endpoint}",
                    )  # fmt: skip
                    self._reader.start()


def connect(
    endpoint: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    keypair: KeyPair | None = None,
    server_key: bytes | None = None,
    allowed_exception_modules: Iterable[str] = (),
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    max_pending: int = DEFAULT_MAX_PENDING,
    peer_status: Callable[[], str | None] | None = None,
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
        max_pending: the most calls outstanding at once (`Overloaded` past it).
        peer_status: tells, when a call times out, how the peer looks (a note).

    Returns:
        the connection; `close()` it when done (or use it as a context manager).

    Example:
        >>> with connect("tcp://127.0.0.1:5555", timeout=5) as conn:
        ...     pass  # volumes = conn.proxy("volume", version="1.2")
        ...     # volumes.create_volume(size=10).get()
        ...     # volumes.refresh.defer()
    """
    return Connection(
        endpoint, timeout=timeout, keypair=keypair, server_key=server_key,
        allowed_exception_modules=allowed_exception_modules, max_message_size=max_message_size,
        max_pending=max_pending, peer_status=peer_status,
    )  # fmt: skip
