"""A socket per served actor, owned by the actor's own thread: calls without a hand-off.

The bridge's shared ROUTER socket is read by its I/O thread, which hands each
request to the actor's thread through the inbox, and the reply goes back
through the socket under a lock: two thread wake-ups per call. An `ActorSocket`
is a ROUTER socket bound for one actor and used only by that actor's thread
(``actors._mailbox.ResilientActor._serve_source``): the thread waits on the
socket and on its inbox together, reads a request, runs it and sends the reply
itself. A remote call wakes one thread on the server.

Every check and refusal is the bridge's own (the request handling is inherited
from `Bridge`, so every request kind the bridge serves is served here too);
what differs is where requests wait. The socket is drained into a local queue
that holds at most the actor's mailbox bound (past it a call gets `Overloaded`
and a cast is dropped, as on the bridge), each request stamped on arrival, so
its time-to-live counts from when it arrived; replies to a peer that does not
read are held in this socket's own `Backlog` and retried by the actor's thread.

The inline path: a plain call or cast from a DEALER is checked here
(`decode_plain`, cached method and version checks, the bound, the deadline)
and kept as a `_Plain` tuple, then run by `_run_plain` on the actor's thread
with the rules of the mailbox's ``_dispatch`` (deadline, request context,
error reply, rate-limited cast failures, a `BaseException` stops the actor),
and its reply sent at once. Anything else, or any request while a mailbox
probe is set, becomes the envelope `Bridge._handle` makes, for ``_dispatch``.

The sequential caller's path: a request that wakes the wait (nothing else
pending) is received, checked, run and answered inside the wait, in one
function (`_serve_woken`: `decode_plain`, then the same checks and rules,
inline), and what the reply does not need comes after its send. Measured per
sequential call (``python -m bench.percall --callgrind``): the server ran about 139,000
instructions through envelopes, 67,000 inline, 62,000 on this path (a raw
REP loop: 23,000); see docs/performance.rst.
"""

from __future__ import annotations

import collections
import contextvars
import functools
import logging
import math
import select
import threading
from time import monotonic
from typing import TYPE_CHECKING, Any, Literal

import pykka
import zmq
from zmq.backend import Socket as _BackendSocket
from zmq.backend import zmq_poll

from _pykka_adapter import Envelope
from transport._bridge import (
    _REPLY_ROOTS,
    Bridge,
    ContextProxyCall,
    _callable_cached,
    _CastFuture,
    _ReplyFuture,
    _version_ok,
)
from transport._codec import new_packer
from transport._context import RequestContext, current_context, run_context, serve_in_context
from transport._flow import Backlog, MailboxView
from transport._protocol import (
    PROTOCOL_VERSION,
    Kind,
    decode_plain,
)
from transport._ratelog import RefusalLog
from transport._stats import BridgeTraffic
from transport._transit import TransitClock

if TYPE_CHECKING:
    from collections.abc import Callable


__all__ = ["ActorSocket", "own_endpoint"]

logger = logging.getLogger("transport.bridge")

_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE_NOBLOCK = int(zmq.SNDMORE | zmq.NOBLOCK)
_POLLIN = int(zmq.POLLIN)
_CALL = int(Kind.CALL)
_CAST = int(Kind.CAST)
_REPLY = int(Kind.REPLY)
# The backend's send: zmq.Socket.send only adds draft-socket options in Python (a frame
# and an attribute hook per send); replies go out as bytes, two frames each.
_send_frame = _BackendSocket.send
_copy_context = contextvars.copy_context
_PACKER_KEEP = 1 << 16  # a reply packer whose buffer grew past this is replaced after the send
_RETRY_S = 0.005
_MAX_POLL_MS = 2**31 - 1  # zmq_poll takes a C int
_DRAIN_EVERY = 0.001  # seconds between two full reads of the socket under load
_UNCHECKED_AFTER = 8  # messages a drain reads with a check each before reading to Again
_DRAIN_MAX = 4096  # messages one drain reads at most
_TTL, _SENT = 9, 10  # the optional request fields, by position

# A plain request, checked and accepted, waiting to run inline:
# (peer or None for a cast, msg_id, actor name, method, args, kwargs, context, deadline)
_Plain = tuple[bytes | None, int, str, str, list[Any], dict[str, Any], dict[str, Any] | None,
               float | None]  # fmt: skip
_Item = _Plain | Envelope[Any]


def own_endpoint(shared: str, name: str) -> str:
    """Where an actor's own socket binds, next to the bridge's `shared` endpoint."""
    if shared.startswith("tcp://"):
        host = shared[len("tcp://") :].rsplit(":", 1)[0]
        return f"tcp://{host}:*"
    return f"{shared}.{name}"


class ActorSocket(Bridge):
    """One actor's ROUTER socket, used only by that actor's thread once attached.

    Made and bound by the bridge (`Bridge.expose` with ``own_socket``), handed to
    the actor in its inbox; from then on only the actor's thread touches it,
    and that thread closes it.
    """

    def __init__(  # noqa: PLR0915 - the socket's settings, then the hot path's state
        self, bridge: Bridge, ref: pykka.ActorRef[Any], limit: int, endpoint: str
    ) -> None:
        # Not Bridge.__init__: this shares the bridge's settings, not its socket.
        self._bridge = bridge
        self._codec = bridge._codec
        self._max_message_size = bridge._max_message_size
        self._backlog_bytes = bridge._backlog_bytes
        self._reply_hwm = bridge._reply_hwm
        # Written by the actor's thread only, which also flushes them (`timeout`).
        self._refusals = RefusalLog(logger, interval=bridge._log_interval)
        self._cast_failures = RefusalLog(logger, interval=bridge._log_interval, what="failed")
        self._transit = TransitClock()
        self._backlog = Backlog()
        self.traffic = BridgeTraffic()  # written by the actor's thread only
        self.view = MailboxView(ref, limit)
        self._actors: dict[str, MailboxView] = {}
        self._cls: type = ref.actor_class
        # Whether plain requests may run inline: the actor handles a call as
        # pykka does (nothing overrides `_handle_receive`).
        self._inline = getattr(self._cls, "_handle_receive", None) is pykka.Actor._handle_receive
        self._queue: collections.deque[_Item] = collections.deque()
        self._idle = True  # the last step found nothing: the actor then blocked
        # Nothing touched the socket since a check found no request:
        # its descriptor then signals the next one, `wait` need not check again.
        self._checked = False
        self._drained_at = 0.0
        self.closed = threading.Event()
        assert bridge._context is not None
        sock: zmq.Socket[bytes] = bridge._context.socket(zmq.ROUTER)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.MAXMSGSIZE, self._max_message_size)
            sock.setsockopt(zmq.SNDHWM, self._reply_hwm)
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            keypair = bridge._keypair
            if keypair is not None:
                sock.setsockopt(zmq.CURVE_SERVER, 1)
                sock.setsockopt(zmq.CURVE_SECRETKEY, keypair.secret)
                sock.setsockopt(zmq.CURVE_PUBLICKEY, keypair.public)
            sock.bind(endpoint)
        except BaseException:
            sock.close(linger=0)
            raise
        last = sock.getsockopt(zmq.LAST_ENDPOINT)
        assert isinstance(last, bytes)
        self._bound = last.decode()
        self._configured_endpoint = endpoint
        self._sock: zmq.Socket[bytes] | None = sock
        zmq_fd = sock.getsockopt(zmq.FD)
        assert isinstance(zmq_fd, int)
        self._zmq_fd = zmq_fd
        self._items: list[tuple[Any, int]] = [(sock, _POLLIN)]
        self._poller = _poll_in(zmq_fd)
        self._poller_fd = _poll_in(zmq_fd)
        self._fd = -1  # the other descriptor `_poller_fd` watches
        self._readable = False  # the last wait saw a request there
        self._recv = sock.recv
        self._methods: set[str] = set()  # methods `_callable` found callable
        self._pack: Callable[[Any], bytes] = self._first_pack  # a packer of its own, once used

    def _first_pack(self, obj: Any) -> bytes:
        self._pack = new_packer()
        return self._pack(obj)

    # -- the MessageSource protocol (actors._mailbox), on the actor's thread -----------

    def wait(
        self, fd: int | None, timeout: float | None, actor: Any = None
    ) -> tuple[bool, bool]:
        """Block until a request is there or `fd` is readable, at most `timeout` seconds.

        First one check without waiting (``zmq_poll`` with a zero timeout:
        some 3,500 instructions; a ``getsockopt(ZMQ_EVENTS)`` from Python
        costs some 10,000), unless `step` has just made it: a request already
        there is taken at once. Otherwise one ``poll`` on the socket's
        descriptor (edge triggered: it signals ZeroMQ's commands) and on `fd`.
        Fewer system calls than a blocking ``zmq_poll``, whose first pass
        polls without waiting and which checks ``ZMQ_EVENTS`` again after the
        wake-up. Held replies to
        retry or a refusal summary due shorten the wait, and count as work
        when it ends.

        Returns:
            whether `step` has work (a request, or its retries are due), and
            whether `fd` is readable.
        """
        if self._queue:  # requests read already (a drain): work now, whatever the socket says
            return True, False
        sock = self._sock
        due = False
        if self._backlog.size or self._refusals.pending or self._cast_failures.pending:
            mine = self._due()
            if mine is not None and (timeout is None or mine <= timeout):
                timeout, due = mine, True
        ms = -1 if timeout is None else min(_MAX_POLL_MS, max(0, math.ceil(timeout * 1000)))
        if sock is None:
            items: list[tuple[Any, int]] = [] if fd is None else [(fd, _POLLIN)]
            return False, bool(items and zmq_poll(items, ms))
        checked, self._checked = self._checked, False
        if (ms == 0 or not checked) and zmq_poll(self._items, 0):
            self._readable = True  # there already
            return True, False
        if fd is None:
            if ms == 0:
                self._checked = True
                return due, False
            poller = self._poller
        else:
            poller = self._poller_fd
            if self._fd != fd:
                if self._fd >= 0:
                    poller.unregister(self._fd)
                poller.register(fd, select.POLLIN)
                self._fd = fd
        # The socket's descriptor fired: ZeroMQ has commands, nearly always a
        # request's; `step` reads it unchecked (ZeroMQ's own recv then runs
        # the commands), an empty read only costs its `zmq.Again`.
        # Whether a request that wakes it may be served at once (nothing here
        # changes while it waits: the actor's thread alone writes all of it).
        serve = (
            actor is not None
            and self._idle
            and not self._backlog.size
            and self._inline
            and actor.mailbox_probe is None
        )
        events = poller.poll(ms)
        zmq_fd = self._zmq_fd
        if serve and len(events) == 1 and events[0][0] == zmq_fd:
            # A request woke it, nothing else is pending: the sequential caller's.
            self._serve_woken(sock, actor)
            return True, False  # more may have come meanwhile: `step` looks
        readable = woken = False
        for which, _ in events:
            if which == zmq_fd:
                readable = True
            else:
                woken = True
        self._readable = readable
        return readable or (due and not events), woken

    def step(self, actor: Any) -> bool | None:
        """Handle the oldest request read (reading what arrived, up to the bound).

        After a request ran, one check without waiting says whether others came
        meanwhile: if not (a sequential caller), `wait` blocks without checking
        again. If so, the socket is drained, at most once every `_DRAIN_EVERY`
        seconds (reading to the end costs a check per message); in between
        one request is read at a time. Every drain stamps what waited in
        ZeroMQ (its time-to-live counts from then) and refuses past the bound.

        Returns:
            True when a request was handled, None when there was none known
            (`wait` then looks), False when the actor must stop.
        """
        sock = self._sock
        if sock is None:
            return None
        queue = self._queue
        if (
            self._readable  # a wait saw the socket fire, after a step found nothing
            and self._idle
            and not queue
            and not self._backlog.size
            and self._inline
            and actor.mailbox_probe is None
        ):
            self._readable = False
            return self._serve_woken(sock, actor)
        if self._backlog.size:
            self._backlog.flush(functools.partial(self._try_send, sock))
        item: _Item | Literal[False] | None = None
        self._checked = False
        if not self._idle:  # a request just ran: did others come meanwhile?
            if queue:
                item = queue.popleft()
            elif not zmq_poll(self._items, 0):  # no: `wait` blocks at once
                self._idle = self._checked = True
                return None
            elif (now := monotonic()) - self._drained_at >= _DRAIN_EVERY:
                self._read_all(sock)
                self._drained_at = now
                if self._refusals.pending:
                    self._refusals.flush()
                if self._cast_failures.pending:
                    self._cast_failures.flush()
                if not queue:
                    self._idle = self._checked = True
                    return None
                item = queue.popleft()
            else:  # drained lately: one at a time
                self._readable = True
        if item is None:  # after a wait (what is there arrived just now), or one at a time
            while item is None:
                item = self._receive(sock, check=not self._readable)
                self._readable = False
            if item is False:
                self._idle = True
                return None
        self._idle = False
        if item.__class__ is tuple:
            return self._run_plain(actor, item)
        return bool(actor._dispatch(item))

    def _serve_woken(self, sock: zmq.Socket[bytes], actor: Any) -> bool | None:  # noqa: PLR0915
        """Read the request that woke the wait, check it, run it and reply, in one go.

        The sequential caller's path, between a wait's wake-up and the reply's
        send: `decode_plain` (the protocol's checks, shared with `_accept`),
        then `_accept`'s own checks and `_run_plain`'s rules inline, and what
        the reply does not need (the traffic counters, the transit clock's
        update, a grown packer's replacement) after its send. Anything unusual
        (routing frames, a request `decode_plain` would not take, a refusal)
        goes the general way, decoded again there. The rules are repeated
        here, not called: through `_run_plain` and `_reply` a sequential call
        took about 1.7 µs more (interleaved A/B, three runs).

        Returns:
            as `step`.
        """
        recv = self._recv
        try:
            peer = recv(_NOBLOCK)
            frame = recv(_NOBLOCK, copy=False)
        except zmq.Again:
            return None
        self._idle = False
        if frame.more:  # routing frames (a REQ client, a proxy)
            return self._run_item(actor, self._routed(peer, frame))
        msg = decode_plain(self._codec, frame)  # the protocol's checks; a Frame is a buffer
        if msg is None:  # the general way decodes it again, and names what is wrong
            return self._run_item(actor, self._accept(peer, frame))
        if (size := len(msg)) == 11:
            _, kind, msg_id, name, method, args, kwargs, rpc_version, context, ttl, sent = msg
        else:
            _, kind, msg_id, name, method, args, kwargs, rpc_version, context = msg[:9]
            ttl, sent = (msg[9], None) if size == 10 else (None, None)
        view = self.view
        if not (  # then _accept's own checks
            (method in self._methods or self._callable(method))
            and view.accepted - view.finished < view.limit
            and name in self._actors
            and (rpc_version is None or _version_ok(self._cls, rpc_version))
        ):
            return self._run_item(actor, self._accept(peer, frame))
        is_call = kind == _CALL
        key = None  # the transit clock's, while its update waits for the reply's send
        now = 0.0
        if ttl is not None:
            now = monotonic()
            key = (peer,)
            if (
                sent is None
                or (floor := self._transit.floors.get(key)) is None
                or now * 1000.0 - sent - floor >= ttl - 1  # it may be late: look now
            ):
                deadline = now + ttl / 1000
                if sent is not None:  # what transit already spent
                    deadline -= self._transit.lateness(key, sent, now)
                key = None
                if deadline <= now:  # its caller has given up already
                    self._count_in(frame)
                    if is_call:
                        self._refusals.note("expired", "CALL #%d on arrival", msg_id)
                    else:
                        self._refusals.note("expired", "CAST #0 on arrival")
                    return True
        view.accepted += 1  # only this (the actor's) thread writes it
        run = _copy_context().run
        try:
            result = run(serve_in_context, context, getattr(actor, method), args, kwargs)
        except Exception as exc:  # noqa: BLE001 - the caller gets it, as from _dispatch
            view.finished += 1
            self._count_in(frame, key, sent, now)
            if not is_call:
                self._cast_failures.note(  # a flood of failing casts logs one line each interval
                    "cast_failed", "cast %s.%s [%s] raised", name, method, _id_in(run),
                    level=logging.ERROR, exc_info=exc,
                )  # fmt: skip
            else:
                self._send_exception([peer], msg_id, exc)
            return True
        except BaseException:  # noqa: BLE001  (stops the actor, as _dispatch does)
            self._count_in(frame, key, sent, now)
            item = (peer if is_call else None, msg_id, name, method, args, kwargs, context, None)
            return bool(actor._stop_on_failure(self._future(item, _id_in(run))))
        view.finished += 1  # only this (the actor's) thread writes it
        if not is_call:
            self._count_in(frame, key, sent, now)
            return True
        pack = self._pack
        try:
            body = pack([PROTOCOL_VERSION, _REPLY, msg_id, result])
        except Exception:  # noqa: BLE001 - the general way encodes it again, for the error
            self._send_reply([peer], msg_id, result)
            self._count_in(frame, key, sent, now)
            return True
        if len(body) > self._max_message_size:
            self._send_reply([peer], msg_id, result)
        else:
            try:
                _send_frame(sock, peer, _SNDMORE_NOBLOCK)  # a full or unknown peer fails here
            except zmq.Again:  # the peer does not read: hold it
                self._backlog.add([peer], body)
            except zmq.ZMQError as exc:
                logger.debug("reply dropped: %s", exc)
            else:
                try:
                    _send_frame(sock, body, _NOBLOCK)  # a message goes whole once its first went
                except zmq.ZMQError as exc:  # pragma: no cover - the peer was checked above
                    logger.debug("reply dropped: %s", exc)
                else:  # after the send: what the reply does not wait for
                    traffic = self.traffic
                    traffic.messages_out += 1
                    traffic.bytes_out += len(body)
        self._count_in(frame, key, sent, now)
        if len(body) > _PACKER_KEEP:  # its buffer grew to this size: let it go
            self._pack = new_packer()
        return True

    def _count_in(
        self, frame: zmq.Frame, key: tuple[bytes] | None = None, sent: Any = 0, now: float = 0.0
    ) -> None:
        """Count a request in; record its transit (`key`) if that waited for the reply."""
        traffic = self.traffic  # only the actor's thread writes it
        traffic.messages_in += 1
        traffic.bytes_in += len(frame)
        if key is not None:
            self._transit.lateness(key, sent, now)

    def _callable(self, method: str) -> bool:
        """Whether `method` may be called (`_serve_woken`'s check, cached once true)."""
        if _callable_cached(self._cls, method):
            self._methods.add(method)  # the class's own methods: a bounded set
            return True
        return False

    def _run_item(self, actor: Any, item: _Item | None) -> bool:
        """Run what `_accept` or `_routed` made of a request (True when refused)."""
        if item is None:
            return True
        if item.__class__ is tuple:
            return self._run_plain(actor, item)
        return bool(actor._dispatch(item))

    def _read_all(self, sock: zmq.Socket[bytes]) -> None:
        """Read everything that arrived into the queue (refusing past the bound).

        Each read is checked first (a ``zmq_poll``, some 3,500 instructions)
        until `_UNCHECKED_AFTER` messages came in this drain: a flood is then
        read until the ``zmq.Again`` that ends it (some 25,000, once), or
        `_DRAIN_MAX` messages (what is left waits in ZeroMQ for the next one).
        """
        queue = self._queue
        count = 0
        while (item := self._receive(sock, check=count < _UNCHECKED_AFTER)) is not False:
            count += 1
            if item is not None:
                queue.append(item)
            if count >= _DRAIN_MAX:  # a flood faster than its refusals: serve between drains
                return

    def _receive(self, sock: zmq.Socket[bytes], *, check: bool) -> _Item | Literal[False] | None:
        """Read one message and check it: what to run, None when refused, False when none.

        A plain call or cast from a DEALER (two frames: the peer and the body)
        is checked here in full and kept as a `_Plain` tuple; anything else
        goes through the bridge's `_handle`. With `check`, a ``zmq_poll``
        without waiting says first whether a message is there.
        """
        if check and not zmq_poll(self._items, 0):
            return False
        recv = self._recv
        try:
            peer = recv(_NOBLOCK)
            frame = recv(_NOBLOCK, copy=False)
        except zmq.Again:
            return False
        if frame.more:
            return self._routed(peer, frame)
        return self._accept(peer, frame)

    def _routed(self, peer: bytes, frame: zmq.Frame) -> Envelope[Any] | None:
        """The rest of a message with routing frames (a REQ client, a proxy): the bridge's way."""
        frames = [zmq.Frame(peer), frame]
        more = True
        try:
            while more:
                frame = self._recv(_NOBLOCK, copy=False)
                frames.append(frame)
                more = frame.more
        except zmq.Again:  # pragma: no cover - ZeroMQ delivers a message whole
            return None
        return self._general(frames)

    def _accept(self, peer: bytes, frame: zmq.Frame) -> _Plain | Envelope[Any] | None:
        """Check a request of two frames: a `_Plain` to run inline, an envelope, or None."""
        traffic = self.traffic  # only the actor's thread writes it
        traffic.messages_in += 1
        traffic.bytes_in += len(frame)
        view = self.view
        if view.accepted - view.finished >= view.limit:  # full: refused the bridge's way
            return self._general([zmq.Frame(peer), frame], counted=True)
        msg = decode_plain(self._codec, frame)  # a Frame is a buffer: no copy
        if msg is None:
            return self._general([zmq.Frame(peer), frame], counted=True)
        name, method, version = msg[3], msg[4], msg[7]
        cls = self._cls
        if (
            name not in self._actors
            or (version is not None and not _version_ok(cls, version))
            or not _callable_cached(cls, method)
        ):
            return self._general([zmq.Frame(peer), frame], counted=True)
        is_call = msg[1] == _CALL
        backlog = self._backlog
        if is_call and backlog.size and backlog.held(peer) >= self._backlog_bytes:
            return self._general([zmq.Frame(peer), frame], counted=True)
        deadline = None
        if len(msg) > _TTL and msg[_TTL] is not None:
            now = monotonic()
            deadline = now + msg[_TTL] / 1000
            if len(msg) > _SENT and msg[_SENT] is not None:  # what transit already spent
                deadline -= self._transit.lateness((peer,), msg[_SENT], now)
            if deadline <= now:  # its caller has given up already
                kind = "CALL" if is_call else "CAST"
                self._refusals.note("expired", "%s #%d on arrival", kind, msg[2] if is_call else 0)
                return None
        view.accepted += 1  # only this (the actor's) thread writes it
        return (peer if is_call else None, msg[2], name, method, msg[5], msg[6], msg[8], deadline)

    def _general(self, frames: list[zmq.Frame], *, counted: bool = False) -> Envelope[Any] | None:
        """Check a request the bridge's way: its envelope, or None when refused."""
        if not counted:
            traffic = self.traffic
            traffic.messages_in += 1
            traffic.bytes_in += len(frames[-1])
        try:
            delivery = self._handle(frames)
        except Exception as exc:  # noqa: BLE001  # pragma: no cover - defensive
            self._refusals.note("malformed", "failed to handle: %r", exc)
            return None
        return None if delivery is None else delivery[1]

    # -- running a plain request on the actor's thread ---------------------------------

    def _run_plain(self, actor: Any, item: _Plain) -> bool:
        """Run a plain request inline, as the actor's `_dispatch` would run its envelope.

        The same rules: not started past its deadline; run inside a fresh copy
        of the thread's `contextvars.Context` with the request context current
        (so nothing the handler sets leaks into the next message); an
        `Exception` becomes the error reply (a failing cast is logged,
        rate-limited); a `BaseException` stops the actor. A mailbox probe
        (metrics, tracing) sees every message: with one set, the request goes
        through `_dispatch` as an envelope instead.
        """
        if not self._inline or actor.mailbox_probe is not None:
            return bool(actor._dispatch(self._envelope(item)))
        peer, msg_id, _, method, args, kwargs, context, deadline = item
        if deadline is not None and monotonic() >= deadline:
            self._future(item, _request_id(context)).expired()
            return True
        run = _copy_context().run
        view = self.view
        try:
            result = run(serve_in_context, context, getattr(actor, method), args, kwargs)
        except Exception as exc:  # noqa: BLE001 - the caller gets it, as from _dispatch
            view.finished += 1
            if peer is None:
                self._cast_failures.note(  # a flood of failing casts logs one line each interval
                    "cast_failed", "cast %s.%s [%s] raised", item[2], method, _id_in(run),
                    level=logging.ERROR, exc_info=exc,
                )  # fmt: skip
            else:
                self._send_exception([peer], msg_id, exc)
            return True
        except BaseException:  # noqa: BLE001  (stops the actor, as _dispatch does)
            return bool(actor._stop_on_failure(self._future(item, _id_in(run))))
        view.finished += 1  # only this (the actor's) thread writes it
        if peer is not None:
            self._reply(peer, msg_id, result)
        return True

    def _reply(self, peer: bytes, msg_id: int, result: Any) -> None:
        """Send a call's result straight away; anything unusual the bridge's way."""
        sock = self._sock
        if sock is None or self._backlog.size:
            self._send_reply([peer], msg_id, result)
            return
        try:
            body = self._codec.encode(
                [PROTOCOL_VERSION, _REPLY, msg_id, result], roots=_REPLY_ROOTS
            )
        except TypeError:
            self._send_reply([peer], msg_id, result)  # encodes again, for the error's path
            return
        if len(body) > self._max_message_size:
            self._send_reply([peer], msg_id, result)
            return
        try:
            _send_frame(sock, peer, _SNDMORE_NOBLOCK)  # a full or unknown peer fails here
        except zmq.Again:  # the peer does not read: hold it
            self._backlog.add([peer], body)
            return
        except zmq.ZMQError as exc:
            logger.debug("reply dropped: %s", exc)
            return
        try:
            _send_frame(sock, body, _NOBLOCK)  # a message goes whole once its first frame went
        except zmq.ZMQError as exc:  # pragma: no cover - the peer was checked above
            logger.debug("reply dropped: %s", exc)
            return
        traffic = self.traffic
        traffic.messages_out += 1
        traffic.bytes_out += len(body)

    def _envelope(self, item: _Plain) -> Envelope[Any]:
        """The envelope `Bridge._handle` would have made for this request."""
        _, _, _, method, args, kwargs, context, deadline = item
        rc = RequestContext.from_wire({} if context is None else context)
        message = ContextProxyCall((method,), tuple(args), kwargs, run_context(rc), deadline)
        return Envelope(message, reply_to=self._future(item, rc.request_id))

    def _future(self, item: _Plain, request_id: str) -> _ReplyFuture | _CastFuture:
        peer, msg_id, name, method = item[:4]
        if peer is None:
            return _CastFuture(self, name, method, request_id, self.view)
        return _ReplyFuture(self, [peer], msg_id, self.view)

    def _due(self) -> float | None:
        """Seconds until held replies are retried or a refusal summary is due (writing it)."""
        due = [log.flush() for log in (self._refusals, self._cast_failures) if log.pending]
        timeout = min((t for t in due if t is not None), default=None)
        if self._backlog.size:
            timeout = _RETRY_S if timeout is None else min(timeout, _RETRY_S)
        return timeout

    def close(self) -> None:
        """Close the socket (on the actor's thread, or once it has stopped)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close(linger=0)
            for item in self._queue:  # read but never started: like a dropped call
                if item.__class__ is tuple:
                    self._future(item, _request_id(item[6])).expired()
                else:
                    expired = getattr(item.reply_to, "expired", None)  # type: ignore[union-attr]
                    if expired is not None:
                        expired()
            self._queue.clear()
        self.closed.set()

    # -- Bridge's request handling, adapted -------------------------------------------------

    def _send(self, routing: list[bytes], body: bytes, *, refusal: bool = False) -> None:
        # The actor's thread owns the socket: no lock, no wake-up of anybody.
        sock = self._sock
        if sock is None:
            logger.debug("actor socket closed; reply dropped")
            return
        backlog = self._backlog
        if backlog.holds(routing[0]) or self._try_send(sock, routing, body) is False:
            backlog.add(routing, body, refusal=refusal)


def _poll_in(fd: int) -> select.poll:
    """A `select.poll` watching `fd` for input."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return poller


def _id_in(run: Callable[..., Any]) -> str:
    """The request id current in a context, given its `run`."""
    rc = run(current_context)
    return "" if rc is None else str(rc.request_id)


def _request_id(context: dict[str, Any] | None) -> str:
    request_id = None if context is None else context.get("request_id")
    return request_id if isinstance(request_id, str) else ""
