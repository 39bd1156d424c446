"""The server side: a ROUTER socket that dispatches requests into actors' mailboxes."""

from __future__ import annotations

import functools
import inspect
import logging
import select
import sys
import threading
import time
from time import perf_counter
from typing import TYPE_CHECKING, Any

import pykka
import zmq
from pykka.messages import ProxyCall, ProxyGetAttr, ProxySetAttr

from _pykka_adapter import (  # Envelope: straight into the inbox
    AttachSource,
    DetachSource,
    Envelope,
    actor_of,
)
from transport._codec import Codec, default_codec, describe_exception, format_traceback
from transport._context import RequestContext, run_context
from transport._flow import (
    DEFAULT_BACKLOG_BYTES,
    DEFAULT_MAILBOX_LIMIT,
    DEFAULT_REPLY_HWM,
    Backlog,
    MailboxView,
)
from transport._protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    MAX_ROUTING_FRAMES,
    PROTOCOL_VERSION,
    Kind,
    ProtocolError,
    Request,
    brief,
    decode_request,
    encode_error,
    version_is_compatible,
)
from transport._ratelog import RefusalLog
from transport._security import is_loopback, start_authenticator
from transport._stats import BridgeTraffic
from transport._transit import TransitClock
from transport._waker import Waker, wake_if_input

if TYPE_CHECKING:
    import contextvars
    import os
    from collections.abc import Callable, Iterable

    from zmq.auth.thread import ThreadAuthenticator

    from _pykka_adapter import OptExcInfo
    from transport._direct import ActorSocket
    from transport._security import KeyPair

__all__ = [
    "Bridge",
    "ContextProxyCall",
    "describe_actor",
    "is_remotely_callable",
    "is_remotely_readable",
    "is_remotely_settable",
]

logger = logging.getLogger("transport.bridge")

_BATCH = 64  # under load: messages read per turn, between two GIL hand-overs
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE_NOBLOCK = int(zmq.SNDMORE | zmq.NOBLOCK)
_REPLY = int(Kind.REPLY)
_RETRY_MS = 5  # how often replies backlogged for slow readers are retried
_OWN_MAX_SOCKETS = 65536  # sockets per context with own_sockets (a slot pointer each)
_CACHE_SIZE = 4096  # checked (class, method) and (class, version) pairs kept
_REPLY_ROOTS = ("version", "kind", "msg_id", "result")  # names for encoding errors
# Attributes of every pykka actor: never callable from another host.
_PYKKA_NAMES = (
    frozenset(dir(pykka.ThreadingActor))
    | frozenset(dir(pykka.Actor))
    | {
        "actor_urn",
        "actor_inbox",
        "actor_stopped",
        "actor_ref",
    }
)


class ContextProxyCall(ProxyCall):
    """A `pykka.messages.ProxyCall` that carries the caller's request context.

    `context` is a `contextvars.Context` in which `current_context()` returns the
    request context that came with the message. An actor that wants it current
    runs the call with `message.context.run(...)` (`actors.Manager` does); any
    other pykka actor handles this message as a plain `ProxyCall`.

    `deadline` is when the caller stops waiting (`time.monotonic()` seconds), or
    None: `actors.Manager` (any `ResilientActor`) does not start the call after
    it, and tells the reply future `expired()` instead.
    """

    context: contextvars.Context
    deadline: float | None

    def __new__(
        cls,
        attr_path: tuple[str, ...],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        context: contextvars.Context,
        deadline: float | None = None,
    ) -> ContextProxyCall:
        # tuple.__new__ directly: the named tuple's generated __new__ is one more frame.
        self = tuple.__new__(cls, (attr_path, args, kwargs))
        self.context = context
        self.deadline = deadline
        return self


def _private_names(cls: type) -> frozenset[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        names.update(vars(klass).get("RPC_PRIVATE", ()))
    return frozenset(names)


def is_remotely_callable(cls: type, name: str) -> bool:
    """Tell whether `name` is a method of actor class `cls` that remote callers may call.

    Hidden: names starting with `_`; every attribute of `pykka.Actor` and
    `pykka.ThreadingActor`; every name in any `RPC_PRIVATE` class attribute along
    the class's MRO; anything that is not callable on the class.

    Returns:
        whether a remote caller may call it.
    """
    if name.startswith("_") or name in _PYKKA_NAMES or name in _private_names(cls):
        return False
    try:
        attr = getattr(cls, name)
    except Exception:  # noqa: BLE001 - any failure means "not there"
        return False
    return callable(attr)


def is_remotely_readable(cls: type, name: str) -> bool:
    """Tell whether remote callers may read or set attribute `name` of actor class `cls`.

    The same names are hidden as for calls (`is_remotely_callable`); a name that
    is callable on the class is a method, not an attribute. Instance attributes
    (not on the class) are readable.

    Returns:
        whether a remote caller may read or set it.
    """
    if (
        name.startswith("_")
        or name in _PYKKA_NAMES
        or name in ("RPC_PRIVATE", "RPC_READ_ONLY")
        or name in _private_names(cls)
    ):
        return False
    try:
        attr = inspect.getattr_static(cls, name)
    except AttributeError:
        return True  # an instance attribute, or none (the actor raises AttributeError)
    return isinstance(attr, property) or not callable(attr)


@functools.lru_cache(maxsize=256)  # keyed by served classes only
def _class_surface(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The methods and attributes on actor class `cls` that remote callers may use."""
    names = dir(cls)
    methods = tuple(n for n in names if is_remotely_callable(cls, n))
    attributes = tuple(n for n in names if n not in methods and is_remotely_readable(cls, n))
    return methods, attributes


def is_remotely_settable(actor: Any, name: str) -> bool:
    """Tell whether remote callers may set attribute `name` on `actor` (an actor instance).

    It must be readable (`is_remotely_readable`), not listed in any
    `RPC_READ_ONLY` class attribute along the MRO, and exist already, on the
    instance or its class: a remote caller never adds attributes (their names
    are the sender's choice). Safe from any thread (one dict lookup).

    Returns:
        whether a remote caller may set it.
    """
    cls: type = type(actor)
    if not is_remotely_readable(cls, name):
        return False
    for klass in cls.__mro__:
        if name in vars(klass).get("RPC_READ_ONLY", ()):
            return False
    if name in vars(actor):
        return True
    try:
        inspect.getattr_static(cls, name)
    except AttributeError:
        return False
    return True


def describe_actor(actor: Any) -> dict[str, Any]:
    """Describe what `actor` (a pykka actor instance) exposes to remote callers.

    The class's part is computed once per class; the instance adds its public
    fields (`vars(actor)`, copied in one C call, so this may run in any thread,
    as pykka's own `ActorProxy` introspects its actor from the caller's thread).

    Returns:
        the describe reply's result (docs/protocol.rst, "Describe, get and set").
    """
    cls: type = type(actor)
    methods, attributes = _class_surface(cls)
    fields = [n for n in list(vars(actor)) if n not in attributes and is_remotely_readable(cls, n)]
    return {
        "class": cls.__qualname__,
        "module": cls.__module__,
        "rpc_version": str(getattr(cls, "RPC_API_VERSION", "1.0")),
        "methods": list(methods),
        "attributes": sorted([*attributes, *fields]),
    }


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _callable_cached(cls: type, name: str) -> bool:
    return is_remotely_callable(cls, name)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _version_ok(cls: type, version: str) -> bool:
    return version_is_compatible(str(getattr(cls, "RPC_API_VERSION", "1.0")), version)


_FIXARRAYS = frozenset({0x99, 0x9A, 0x9B})  # requests of 9, 10 or 11 fields


def _cast_target(body: memoryview) -> str | None:
    """The actor a cast names, read from the body's first bytes without decoding it.

    A cast as the reference client encodes it starts ``[1, 2, 0, "actor", ...``;
    anything else gives None (and is decoded in full).
    """
    if len(body) < 6 or body[0] not in _FIXARRAYS or body[1] != 1 or body[2] != 2 or body[3]:
        return None
    tag = body[4]
    if 0xA0 < tag <= 0xBF:  # fixstr
        start, size = 5, tag - 0xA0
    elif tag == 0xD9:  # str 8
        start, size = 6, body[5]
    else:
        return None
    try:
        return bytes(body[start : start + size]).decode()
    except UnicodeDecodeError:
        return None


class _ReplyFuture(pykka.Future[Any]):
    """The `reply_to` of a remote call: setting it sends the reply, from the setter's thread.

    Nobody ever waits on it, so it skips `pykka.Future.__init__` (which only
    prepares `get()`): one of these is made per call, on the I/O thread.
    """

    _get_hook = None
    message_kind = "call"  # what a mailbox probe counts it as

    def __init__(
        self, bridge: Bridge, routing: list[bytes], msg_id: int, mailbox: MailboxView
    ) -> None:
        self._bridge = bridge
        self._routing = routing
        self._msg_id = msg_id
        self._mailbox = mailbox
        self.queued_at = perf_counter()  # when the request reached its mailbox (metrics)

    def set(self, value: Any | None = None) -> None:
        self._mailbox.finished += 1  # only this actor's thread writes it
        self._bridge._send_reply(self._routing, self._msg_id, value)

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        self._mailbox.finished += 1
        exc = (exc_info or sys.exc_info())[1]
        if exc is None:  # pragma: no cover - pykka always passes an exception
            exc = RuntimeError("unknown failure")
        self._bridge._send_exception(self._routing, self._msg_id, exc)

    def expired(self) -> None:
        """The caller's deadline passed before the call started: it never runs, no reply."""
        # counted before the mailbox shows it done, so whoever sees it done sees the count
        self._bridge._refusals.note("expired", "call #%d", self._msg_id, level=logging.INFO)
        self._mailbox.finished += 1


class _Closer(pykka.Future[Any]):
    """The `reply_to` of an attach message: if the actor stops before reading it, close."""

    _get_hook = None

    def __init__(self, own: ActorSocket) -> None:
        self._own = own

    def set(self, value: Any | None = None) -> None:
        self._own.close()

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        self._own.close()


class _CastFuture(pykka.Future[Any]):
    """The `reply_to` of a cast: the result is dropped, an exception is logged.

    Giving casts a future keeps a raising method from stopping a plain pykka actor.
    """

    _get_hook = None
    message_kind = "cast"  # what a mailbox probe counts it as

    def __init__(
        self, bridge: Bridge, actor: str, method: str, request_id: str, mailbox: MailboxView
    ) -> None:
        self._bridge = bridge
        self._label = (actor, method)  # formatted only if it is logged
        self._request_id = request_id
        self._mailbox = mailbox
        self.queued_at = perf_counter()

    def set(self, value: Any | None = None) -> None:
        self._mailbox.finished += 1  # only this actor's thread writes it

    def expired(self) -> None:
        """The cast's time-to-live passed before it started: it never runs."""
        self._bridge._refusals.note(  # counted before the mailbox shows it done
            "expired", "cast %s.%s [%s]", *self._label, self._request_id, level=logging.INFO
        )
        self._mailbox.finished += 1

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        self._mailbox.finished += 1
        self._bridge._cast_failures.note(  # a flood of failing casts logs one line each interval
            "cast_failed", "cast %s.%s [%s] raised", *self._label, self._request_id,
            level=logging.ERROR, exc_info=(exc_info or sys.exc_info())[1],
        )  # fmt: skip


class Bridge:
    """Serve named actors to other processes and hosts over ZeroMQ.

    The bridge binds a ROUTER socket owned by its I/O thread. Each request goes
    straight into the target actor's mailbox; the reply goes out from the actor's
    own thread when the method returns, so a slow actor delays only its own
    replies. Refusals (unknown actor or method, unsupported version, a full
    mailbox) are answered at once by the I/O thread. Malformed messages are
    dropped. Refusals are counted (`stats()`) and logged at most once per
    `log_interval` seconds, with a summary.

    Flow control (docs/protocol.rst, "Flow control"): each served actor's
    mailbox holds at most `mailbox_limit` requests from the bridge (or the
    actor class's `MAILBOX_LIMIT`, or `expose(..., mailbox_limit=)`); past it a
    call gets `Overloaded` at once and a cast is dropped and counted. Replies
    to a peer that does not read are bounded by `reply_hwm` and `backlog_bytes`.

    Without `keypair` the endpoint must be local (loopback, `ipc://`) unless
    `allow_insecure` is set.

    Args:
        endpoint: where to bind, e.g. `tcp://127.0.0.1:*` (a free port, see
            `endpoint` after `start()`) or `ipc:///run/node.sock`.
        keypair: the server's CURVE key pair; enables encryption.
        allowed_clients: with `keypair`, the clients' public keys (Z85), or a
            directory of `.key` certificate files, read at `start()`. Required
            with `keypair`.
        allow_insecure: allow a non-loopback bind without keys.
        max_message_size: largest accepted inbound message, in bytes; a larger
            one makes ZeroMQ drop the sender's connection without reading it.
        codec: the codec (default: the standard one).
        mailbox_limit: the default bound of each served actor's mailbox.
        reply_hwm: replies queued in ZeroMQ toward one peer; more are held
            back in the bridge, in order.
        backlog_bytes: bytes of held-back replies past which a peer's new
            calls are refused (`Overloaded`).
        log_interval: seconds between summary lines of refusals.
        own_sockets: also give each served `actors.Manager` (any actor with a
            ``_serve_source`` loop) a socket of its own, read and answered by
            the actor's own thread (`endpoint_of(name)`): a call there wakes
            one server thread instead of two (transport/_direct.py).

    Raises:
        ValueError: insecure non-loopback endpoint, or keys without allow-list.

    Example:
        >>> import pykka
        >>> class Greeter(pykka.ThreadingActor):
        ...     def hello(self, who):
        ...         return f"hello {who}"
        >>> ref = Greeter.start()
        >>> with Bridge("tcp://127.0.0.1:*") as bridge:
        ...     bridge.expose("greeter", ref)
        ...     # connect(bridge.endpoint).proxy("greeter").hello("you").get()
        >>> ref.stop()
    """

    def __init__(
        self,
        endpoint: str,
        *,
        keypair: KeyPair | None = None,
        allowed_clients: Iterable[bytes] | str | os.PathLike[str] | None = None,
        allow_insecure: bool = False,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        codec: Codec = default_codec,
        mailbox_limit: int = DEFAULT_MAILBOX_LIMIT,
        reply_hwm: int = DEFAULT_REPLY_HWM,
        backlog_bytes: int = DEFAULT_BACKLOG_BYTES,
        log_interval: float = 10.0,
        own_sockets: bool = False,
    ) -> None:
        if keypair is None and not allow_insecure and not is_loopback(endpoint):
            raise ValueError(
                f"refusing to bind {endpoint} without CURVE keys; pass keypair= or "
                "allow_insecure=True"
            )
        if keypair is not None and allowed_clients is None:
            raise ValueError("keypair= needs allowed_clients= (client public keys or a directory)")
        self._configured_endpoint = endpoint
        self._keypair = keypair
        self._allowed = (
            allowed_clients
            if allowed_clients is None or isinstance(allowed_clients, str)
            or hasattr(allowed_clients, "__fspath__")
            else list(allowed_clients)
        )  # fmt: skip
        self._max_message_size = max_message_size
        self._codec = codec
        if mailbox_limit < 1 or reply_hwm < 1 or backlog_bytes < 1:
            raise ValueError("mailbox_limit, reply_hwm and backlog_bytes must be at least 1")
        self._mailbox_limit = mailbox_limit
        self._reply_hwm = reply_hwm
        self._backlog_bytes = backlog_bytes
        self._actors: dict[str, MailboxView] = {}
        # Actor threads note too (expired requests, failed casts): a summary that
        # becomes due wakes the I/O thread, which writes it.
        self._refusals = RefusalLog(logger, interval=log_interval, on_pending=self._wake)
        self._cast_failures = RefusalLog(
            logger, interval=log_interval, what="failed", on_pending=self._wake
        )
        self._log_interval = log_interval
        self._own_sockets = own_sockets
        self._own: dict[str, ActorSocket] = {}  # by actor URN
        self._backlog = Backlog()
        self._transit = TransitClock()
        # The socket lock: held by whoever touches the socket (I/O thread or an
        # actor thread sending a reply); never held while waiting.
        self._lock = threading.Lock()
        self._sock: zmq.Socket[bytes] | None = None
        self._polling = False
        self._waker: Waker | None = None
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._auth: ThreadAuthenticator | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stopping = False
        self._start_error: BaseException | None = None
        self._bound: str | None = None
        self.traffic = BridgeTraffic()
        """Messages and bytes this bridge received and sent (read by metrics exporters)."""

    @property
    def endpoint(self) -> str:
        """The bound endpoint (with the actual port) once started, else the configured one."""
        return self._bound or self._configured_endpoint

    def expose(
        self, name: str, actor_ref: pykka.ActorRef[Any], *, mailbox_limit: int | None = None
    ) -> None:
        """Serve `actor_ref` under `name` (replacing any actor of that name).

        The actor's mailbox bound is `mailbox_limit`, else the actor class's
        `MAILBOX_LIMIT` attribute when set, else the bridge's. An actor served
        under several names has one mailbox and one bound. May be called before
        or after `start()`, from any thread.

        Raises:
            ValueError: a bound below 1.
        """
        if mailbox_limit is not None and mailbox_limit < 1:
            raise ValueError(f"mailbox_limit must be at least 1, not {mailbox_limit}")
        for view in list(self._actors.values()):
            if view.ref.actor_urn == actor_ref.actor_urn:
                if mailbox_limit is not None:
                    view.limit = mailbox_limit
                self._actors[name] = view
                self._attach(name, view)
                return
        limit = mailbox_limit
        if limit is None:
            limit = getattr(actor_ref.actor_class, "MAILBOX_LIMIT", None) or self._mailbox_limit
        self._actors[name] = view = MailboxView(actor_ref, limit)
        self._attach(name, view)

    def endpoint_of(self, name: str) -> str:
        """Where to call `name`: its own socket's endpoint if it has one, else `endpoint`."""
        view = self._actors.get(name)
        own = None if view is None else self._own.get(view.ref.actor_urn)
        return own.endpoint if own is not None else self.endpoint

    def _attach(self, name: str, view: MailboxView) -> None:
        """With `own_sockets`, once started: serve `name` on its actor's own socket too."""
        if not self._own_sockets or self._context is None or self._sock is None:
            return
        ref = view.ref
        if getattr(ref.actor_class, "_serve_source", None) is None or ref.actor_stopped.is_set():
            return
        from transport._direct import ActorSocket, own_endpoint  # noqa: PLC0415 - cycle

        own = self._own.get(ref.actor_urn)
        if own is None or own.closed.is_set():
            own = ActorSocket(self, ref, view.limit, own_endpoint(self.endpoint, name))
            self._own[ref.actor_urn] = own
            ref.actor_inbox.put(Envelope(AttachSource(own), reply_to=_Closer(own)))
        own.view.limit = view.limit
        own._actors[name] = own.view

    def unexpose(self, name: str) -> None:
        """Stop serving `name`; later requests for it get `UnknownActor`."""
        view = self._actors.pop(name, None)
        own = None if view is None else self._own.get(view.ref.actor_urn)
        if own is not None:
            own._actors.pop(name, None)
            if not own._actors:
                self._detach(own)

    def _detach(self, own: ActorSocket) -> None:
        self._own.pop(own.view.ref.actor_urn, None)
        if own.view.ref.actor_stopped.is_set():
            own.close()  # its thread is gone (or going): nobody else uses the socket
        else:
            own.view.ref.actor_inbox.put(Envelope(DetachSource(own)))

    def stats(self) -> dict[str, int]:
        """Counters since start: refusals by reason, and what is held now.

        Reasons: ``malformed``, ``unknown_actor``, ``no_such_method``,
        ``unsupported_version``, ``overloaded`` (calls refused, full mailbox),
        ``overloaded_cast`` (casts dropped, full mailbox), ``slow_reader``
        (calls refused because their peer's replies back up),
        ``slow_reader_dropped`` (calls dropped, the refusals' cap reached),
        ``expired`` (requests not started: their time-to-live had passed);
        ``cast_failed``: casts whose method raised (logged like refusals: the
        first at once, with its traceback, then a summary per interval).
        Also ``accepted``: requests put into the served actors' mailboxes;
        ``backlog`` and ``backlog_bytes``: replies held for slow readers now;
        ``mailbox.<name>``: requests each served name's mailbox holds now; and
        ``accepted.<name>``: requests put into it since it was exposed.
        """
        counts = dict.fromkeys(
            ("malformed", "overloaded", "overloaded_cast", "slow_reader", "expired"), 0
        )
        counts.update(self._refusals.totals())
        counts.update(self._cast_failures.totals())
        counts["backlog"] = self._backlog.size
        counts["backlog_bytes"] = self._backlog.nbytes
        views = {id(view): view for view in list(self._actors.values())}
        owns = list(self._own.values())
        for own in owns:
            for reason, count in (*own._refusals.totals().items(),
                                  *own._cast_failures.totals().items()):  # fmt: skip
                counts[reason] = counts.get(reason, 0) + count
        counts["accepted"] = sum(view.accepted for view in views.values()) + sum(
            own.view.accepted for own in owns
        )
        by_urn = {own.view.ref.actor_urn: own.view for own in owns}
        for name, view in list(self._actors.items()):
            own_view = by_urn.get(view.ref.actor_urn)
            extra = (0, 0) if own_view is None else (own_view.depth, own_view.accepted)
            counts[f"mailbox.{name}"] = view.depth + extra[0]
            counts[f"accepted.{name}"] = view.accepted + extra[1]
        return counts

    def traffic_totals(self) -> BridgeTraffic:
        """`traffic` plus the traffic of every actor's own socket (a fresh sum)."""
        total = BridgeTraffic()
        for traffic in (self.traffic, *(own.traffic for own in list(self._own.values()))):
            total.messages_in += traffic.messages_in
            total.bytes_in += traffic.bytes_in
            total.messages_out += traffic.messages_out
            total.bytes_out += traffic.bytes_out
        return total

    def start(self, *, timeout: float = 10.0) -> None:
        """Bind and start serving; return once the socket is bound.

        Raises:
            RuntimeError: already started, or the I/O thread did not start in time.
            zmq.ZMQError: the bind failed.
        """
        if self._thread is not None:
            raise RuntimeError("bridge already started")
        self._context = zmq.Context()
        if self._own_sockets:  # a socket per served actor: past ZeroMQ's default 1,023
            self._context.set(zmq.MAX_SOCKETS, _OWN_MAX_SOCKETS)
        try:
            if self._keypair is not None:
                assert self._allowed is not None
                self._auth = start_authenticator(self._context, self._allowed)
            self._waker = Waker()
            self._thread = threading.Thread(
                target=self._run, name=f"transport-bridge-{self._configured_endpoint}", daemon=True
            )
            self._thread.start()
            if not self._started.wait(timeout):
                raise RuntimeError("bridge I/O thread did not start in time")
            if self._start_error is not None:
                raise self._start_error
        except BaseException:
            self.stop(timeout=timeout)
            raise
        for name, view in list(self._actors.items()):
            self._attach(name, view)
        if self._keypair is None:
            logger.warning(
                "bridge serving %s WITHOUT encryption or client authentication%s",
                self.endpoint,
                "" if is_loopback(self.endpoint) else " on a non-loopback address",
            )
        else:
            logger.info("bridge serving %s with CURVE encryption", self.endpoint)

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop serving; replies still in flight are dropped. Idempotent."""
        owns = list(self._own.values())
        for own in owns:
            self._detach(own)
        give_up = time.monotonic() + timeout
        for own in owns:  # each actor closes its socket between two messages
            if not own.closed.wait(max(0.0, give_up - time.monotonic())):
                logger.error("an actor did not close its socket within %s s", timeout)
                self._context = None  # terminating it would wait for that socket
        self._stopping = True
        if self._waker is not None:
            self._waker.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():  # pragma: no cover - defensive
                logger.error("bridge I/O thread did not stop within %s s", timeout)
                return
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._waker is not None:
            self._waker.close()
            self._waker = None
        if self._context is not None:
            self._context.term()
            self._context = None

    def __enter__(self) -> Bridge:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- I/O thread ---------------------------------------------------------------

    def _run(self) -> None:
        assert self._context is not None
        sock: zmq.Socket[bytes] = self._context.socket(zmq.ROUTER)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.MAXMSGSIZE, self._max_message_size)
            # A ROUTER silently drops what exceeds its send limit toward a peer,
            # unless it is "mandatory": then the send fails and the reply is held
            # in the backlog (transport/_flow.py).
            sock.setsockopt(zmq.SNDHWM, self._reply_hwm)
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            if self._keypair is not None:
                sock.setsockopt(zmq.CURVE_SERVER, 1)
                sock.setsockopt(zmq.CURVE_SECRETKEY, self._keypair.secret)
                sock.setsockopt(zmq.CURVE_PUBLICKEY, self._keypair.public)
            sock.bind(self._configured_endpoint)
            last = sock.getsockopt(zmq.LAST_ENDPOINT)
            assert isinstance(last, bytes)
            self._bound = last.decode()
            with self._lock:
                self._sock = sock
            self._started.set()
            self._loop(sock)
        except Exception as exc:
            if not self._started.is_set():
                self._start_error = exc
            else:  # pragma: no cover - defensive: the loop itself must not fail
                logger.exception("bridge I/O thread failed")
        finally:
            with self._lock:
                self._sock = None
                sock.close(linger=0)
            self._started.set()

    def _loop(self, sock: zmq.Socket[bytes]) -> None:
        assert self._waker is not None
        waker = self._waker
        waker_fd = waker.fileno()
        poller = select.poll()
        poller.register(sock.getsockopt(zmq.FD), select.POLLIN)  # type: ignore[arg-type]
        poller.register(waker_fd, select.POLLIN)
        events: Callable[[int], int] = sock.getsockopt  # type: ignore[assignment]
        lock = self._lock
        greedy = False
        while not self._stopping:
            batch: list[list[zmq.Frame]] = []
            with lock:
                self._polling = False
                self._drain(sock, batch, greedy=greedy)
                if not batch:
                    # Set under the lock that saw no input: an actor thread sending
                    # from now on sees the flag and wakes us if input is pending.
                    self._polling = True
            deliveries: list[tuple[Any, Envelope[Any]]] = []
            traffic = self.traffic  # only this (the I/O) thread writes the inbound counts
            traffic.messages_in += len(batch)
            for frames in batch:
                traffic.bytes_in += len(frames[-1])
                try:
                    delivery = self._handle(frames)
                except Exception as exc:  # noqa: BLE001  # pragma: no cover - defensive
                    self._refusals.note("malformed", "failed to handle: %s", brief(exc))
                    continue
                if delivery is not None:
                    deliveries.append(delivery)
            idle = True
            if batch:
                with lock:
                    idle = not events(_EVENTS) & _POLLIN
                    self._polling = idle
            greedy = not idle  # more came in meanwhile: read it in one batch
            # The hand-off comes last, just before this thread blocks in poll()
            # (releasing the GIL), so the woken actor thread finds the GIL free.
            for inbox, envelope in deliveries:
                inbox.put(envelope)
            pending = self._backlog or self._refusals.pending or self._cast_failures.pending
            timeout = self._housekeeping(sock) if pending else None
            if not idle:
                # Under a flood this thread never blocks: hand the GIL over once per
                # batch, so the actors woken by this and earlier batches (and their
                # replies) do not wait for the interpreter's 5 ms switch interval.
                time.sleep(0)
            if idle:
                for fd, _ in poller.poll(timeout):
                    if fd == waker_fd:
                        waker.clear()

    def _wake(self) -> None:
        waker = self._waker
        if waker is not None and threading.current_thread() is not self._thread:
            waker.wake()

    def _housekeeping(self, sock: zmq.Socket[bytes]) -> float | None:
        """Retry backlogged replies, write a due refusal summary; return the poll timeout (ms)."""
        due = [t for t in (self._refusals.flush(), self._cast_failures.flush()) if t is not None]
        timeout = min(due) * 1000 + 1 if due else None
        if self._backlog:
            with self._lock:
                self._backlog.flush(functools.partial(self._try_send, sock))
                if self._backlog:
                    timeout = _RETRY_MS if timeout is None else min(timeout, _RETRY_MS)
        return timeout

    @staticmethod
    def _drain(sock: zmq.Socket[bytes], batch: list[list[zmq.Frame]], *, greedy: bool) -> None:
        """Receive one message, or when `greedy` up to a batch (the caller holds the lock).

        Frames are received without copying (`zmq.Frame`): a frame's `more` says
        whether another follows, where `recv_multipart` asks the socket (a
        getsockopt per frame). A lone request costs its receives and, back in
        the loop, one ZMQ_EVENTS check; under a flood that check finds more and
        the next turn reads until ``Again``, one exception per batch.
        """
        recv = sock.recv
        try:
            while True:
                frame = recv(_NOBLOCK, copy=False)
                frames = [frame]
                while frame.more:  # a message arrives whole: the rest is there
                    frame = recv(_NOBLOCK, copy=False)
                    frames.append(frame)
                batch.append(frames)
                if not greedy or len(batch) >= _BATCH:
                    return
        except zmq.Again:
            return

    def _handle(self, frames: list[zmq.Frame]) -> tuple[Any, Envelope[Any]] | None:
        """Check one request; refuse it, or return what to put into which inbox."""
        if not 2 <= len(frames) <= MAX_ROUTING_FRAMES + 1:
            self._refusals.note("malformed", "a message of %d frames", len(frames))
            return None
        body = frames[-1].buffer
        if self._cast_to_full_mailbox(body):
            return None
        try:
            req = decode_request(self._codec, body)
        except ProtocolError as exc:
            self._refusals.note("malformed", str(exc))
            if exc.msg_id is not None:
                routing = [frame.bytes for frame in frames[:-1]]
                if self._no_room_for_refusal(routing[0]):
                    self._refusals.note("slow_reader_dropped", "call #%d dropped", exc.msg_id)
                else:
                    self._send_refusal(routing, exc.msg_id, "invalid_request", str(exc))
            return None
        is_call = req.kind is not Kind.CAST
        # The routing frames address the reply: a cast has none.
        routing = [frame.bytes for frame in frames[:-1]] if is_call else []
        rc = RequestContext.from_wire(req.context)
        if is_call and self._backlog.held(routing[0]) >= self._backlog_bytes:
            self._refuse(routing, req.msg_id, is_call=True, kind="overloaded",
                         message="replies to this client back up: it does not read them",
                         rc=rc, reason="slow_reader")  # fmt: skip
            return None
        view = self._actors.get(req.actor)
        if view is None or view.ref.actor_stopped.is_set():
            self._refuse(routing, req.msg_id, is_call=is_call, kind="unknown_actor",
                         message=f"no actor {req.actor!r}", rc=rc)  # fmt: skip
            return None
        cls = view.ref.actor_class
        if req.version is not None and not _version_ok(cls, req.version):  # type: ignore[arg-type]
            implemented = getattr(cls, "RPC_API_VERSION", "1.0")
            self._refuse(
                routing, req.msg_id, is_call=is_call, kind="unsupported_version",
                message=f"{req.actor} implements RPC version {implemented}, "
                f"cannot serve {req.version}",
                rc=rc,
            )  # fmt: skip
            return None
        if req.kind is not Kind.CALL and is_call:
            return self._handle_member(routing, req, view, rc)
        if not _callable_cached(cls, req.method):  # type: ignore[arg-type]  # classes hash
            self._refuse(routing, req.msg_id, is_call=is_call, kind="no_such_method",
                         message=f"{req.actor} has no method {req.method!r}", rc=rc)  # fmt: skip
            return None
        if view.full():
            if not is_call:  # the flood's path: keep it to a count
                self._refusals.note(
                    "overloaded_cast", "dropped a cast [%s] to %s: its mailbox is full (%d)",
                    rc.request_id, req.actor, view.limit,
                )  # fmt: skip
                return None
            self._refuse(routing, req.msg_id, is_call=is_call, kind="overloaded",
                         message=f"{req.actor}'s mailbox is full ({view.limit} requests)",
                         rc=rc)  # fmt: skip
            return None
        deadline = None
        if req.ttl is not None:
            now = time.monotonic()
            deadline = now + req.ttl / 1000
            if req.sent is not None:  # what the caller's timeout already spent on the way
                sender = tuple(routing) if routing else tuple(f.bytes for f in frames[:-1])
                deadline -= self._transit.lateness(sender, req.sent, now)
            if deadline <= now:  # its caller has given up already
                self._refusals.note("expired", "%s #%d on arrival", req.kind.name, req.msg_id)
                return None
        message = ContextProxyCall((req.method,), req.args, req.kwargs, run_context(rc), deadline)
        future: pykka.Future[Any] = (
            _ReplyFuture(self, routing, req.msg_id, view)
            if is_call
            else _CastFuture(self, req.actor, req.method, rc.request_id, view)
        )
        view.accepted += 1  # only this (the I/O) thread writes it
        return view.inbox, Envelope(message, reply_to=future)

    def _cast_to_full_mailbox(self, body: memoryview) -> bool:
        """A flood's path: drop a cast at a full mailbox, seen from its first bytes."""
        target = _cast_target(body)
        if target is None:
            return False
        view = self._actors.get(target)
        if view is None or not view.full():
            return False
        self._refusals.note(
            "overloaded_cast", "dropped a cast to %s: its mailbox is full (%d)", target, view.limit
        )
        return True

    def _handle_member(
        self, routing: list[bytes], req: Request, view: MailboxView, rc: RequestContext
    ) -> tuple[Any, Envelope[Any]] | None:
        """A describe, get or set request: refuse it, or return its delivery."""
        ref = view.ref
        cls = ref.actor_class
        message: Any
        if req.kind is Kind.DESCRIBE:  # answered at once, however busy the actor is
            actor = actor_of(ref)
            if actor is None:
                self._refuse(routing, req.msg_id, is_call=True, kind="unknown_actor",
                             message=f"no actor {req.actor!r}", rc=rc)  # fmt: skip
            else:
                self._send_reply(routing, req.msg_id, describe_actor(actor))
            return None
        if req.kind is Kind.GET:
            allowed = is_remotely_readable(cls, req.method)
        else:
            actor = actor_of(ref)
            allowed = actor is not None and is_remotely_settable(actor, req.method)
        if not allowed:
            what = "readable" if req.kind is Kind.GET else "settable"
            self._refuse(routing, req.msg_id, is_call=True, kind="no_such_method",
                         message=f"{req.actor} has no attribute {req.method!r} {what} by remote "
                         "callers", rc=rc)  # fmt: skip
            return None
        if view.full():
            self._refuse(routing, req.msg_id, is_call=True, kind="overloaded",
                         message=f"{req.actor}'s mailbox is full ({view.limit} requests)",
                         rc=rc)  # fmt: skip
            return None
        if req.kind is Kind.GET:
            message = ProxyGetAttr((req.method,))
        elif len(req.args) == 1 and not req.kwargs:
            message = ProxySetAttr((req.method,), req.args[0])
        else:
            self._refuse(routing, req.msg_id, is_call=True, kind="invalid_request",
                         message="a set request takes exactly one argument", rc=rc)  # fmt: skip
            return None
        view.accepted += 1  # only this (the I/O) thread writes it
        return view.inbox, Envelope(message, reply_to=_ReplyFuture(self, routing, req.msg_id, view))

    def _refuse(
        self,
        routing: list[bytes],
        msg_id: int,
        *,
        is_call: bool,
        kind: str,
        message: str,
        rc: RequestContext,
        reason: str | None = None,
    ) -> None:
        reason = reason or kind
        if is_call:
            if self._no_room_for_refusal(routing[0]):  # it could not read the refusal either
                self._refusals.note("slow_reader_dropped", "call #%d dropped", msg_id)
                return
            self._refusals.note(reason, "refused a call [%s]: %s", rc.request_id, message)
            self._send_refusal(routing, msg_id, kind, message)
        else:
            self._refusals.note(f"{reason}_cast", "dropped a cast [%s]: %s", rc.request_id, message)

    def _no_room_for_refusal(self, peer: bytes) -> bool:
        """Whether `peer`'s replies back up past the bound and its refusals are capped too."""
        backlog = self._backlog
        return backlog.held(peer) >= self._backlog_bytes and not backlog.refusals_room(peer)

    def _send_refusal(self, routing: list[bytes], msg_id: int, kind: str, message: str) -> None:
        from transport._errors import BRIDGE_ERRORS  # noqa: PLC0415 - cold path

        cls = BRIDGE_ERRORS[kind]
        body = encode_error(
            self._codec, msg_id, error_kind=kind, exc_module="transport",
            exc_name=cls.__qualname__, message=message, exc_args=[message], traceback="",
        )  # fmt: skip
        self._send(routing, body, refusal=True)

    # -- actor threads (and the I/O thread for refusals) ---------------------------------

    def _try_send(self, sock: zmq.Socket[bytes], routing: list[bytes], body: bytes) -> bool | None:
        """Send one reply (the caller holds the lock).

        Returns:
            True when queued, False when the peer's queue is full (nothing was
            sent), None when it could not be sent at all (the peer is gone).
        """
        try:
            sock.send(routing[0], _SNDMORE_NOBLOCK)  # a full or unknown peer fails here
        except zmq.Again:
            return False
        except zmq.ZMQError as exc:
            logger.debug("reply dropped: %s", exc)
            return None
        try:
            for frame in routing[1:]:
                sock.send(frame, _SNDMORE_NOBLOCK)
            sock.send(body, _NOBLOCK)
        except zmq.ZMQError as exc:  # pragma: no cover - the peer was checked above
            logger.debug("reply dropped: %s", exc)
            return None
        traffic = self.traffic  # under the socket lock: one writer at a time
        traffic.messages_out += 1
        traffic.bytes_out += len(body)
        return True

    def _send_reply(self, routing: list[bytes], msg_id: int, value: Any) -> None:
        try:
            body = self._codec.encode([PROTOCOL_VERSION, _REPLY, msg_id, value], roots=_REPLY_ROOTS)
        except TypeError as exc:
            self._send_exception(routing, msg_id, exc)
            return
        if len(body) > self._max_message_size:
            self._send_refusal(
                routing, msg_id, "message_too_large",
                f"reply of {len(body)} bytes exceeds the limit of {self._max_message_size}",
            )  # fmt: skip
            return
        self._send(routing, body)

    def _send_exception(self, routing: list[bytes], msg_id: int, exc: BaseException) -> None:
        module, qualname, message, args = describe_exception(exc)
        traceback = format_traceback(exc)
        body = encode_error(
            self._codec, msg_id, error_kind="remote", exc_module=module, exc_name=qualname,
            message=message, exc_args=args, traceback=traceback,
        )  # fmt: skip
        if len(body) > self._max_message_size:
            body = encode_error(
                self._codec, msg_id, error_kind="remote", exc_module=module, exc_name=qualname,
                message=message[:4096], exc_args=None, traceback=traceback[-4096:],
            )  # fmt: skip
        self._send(routing, body)

    def _send(self, routing: list[bytes], body: bytes, *, refusal: bool = False) -> None:
        with self._lock:
            sock = self._sock
            if sock is None:
                logger.debug("bridge stopped; reply dropped")
                return
            backlog = self._backlog
            if backlog.holds(routing[0]) or self._try_send(sock, routing, body) is False:
                # The peer does not read fast enough: hold the reply, in order.
                if not backlog:
                    assert self._waker is not None
                    self._waker.wake()  # the I/O thread starts retrying
                backlog.add(routing, body, refusal=refusal)
            # The socket's FD is edge-triggered and this send may have consumed
            # the edge: if input is pending, make sure the I/O thread wakes.
            if self._polling:
                assert self._waker is not None
                wake_if_input(sock, self._waker)
