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
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
from time import monotonic
from typing import TYPE_CHECKING, Any

import zmq

from transport._bridge import Bridge
from transport._flow import Backlog, MailboxView
from transport._ratelog import RefusalLog
from transport._stats import BridgeTraffic
from transport._transit import TransitClock

if TYPE_CHECKING:
    import pykka

    from _pykka_adapter import Envelope

__all__ = ["ActorSocket", "own_endpoint"]

logger = logging.getLogger("transport.bridge")

_NOBLOCK = int(zmq.NOBLOCK)
_RETRY_S = 0.005
_DRAIN_EVERY = 0.001  # seconds between two full reads of the socket under load


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

    def __init__(self, bridge: Bridge, ref: pykka.ActorRef[Any], limit: int, endpoint: str) -> None:
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
        self._queue: collections.deque[Envelope[Any]] = collections.deque()
        self._idle = True  # the last take() found nothing: the actor then blocked
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
        self._fd = int(sock.getsockopt(zmq.FD))

    # -- the MessageSource protocol (actors._mailbox), on the actor's thread -----------

    def fileno(self) -> int:
        """The socket's (edge-triggered) descriptor."""
        return self._fd

    def take(self) -> Envelope[Any] | None:
        """The oldest request read (reading what arrived, up to the bound), or None.

        Reading to the end (``Again``) costs ZeroMQ a command round trip per
        message under a flood, so a full drain happens at most every
        `_DRAIN_EVERY` seconds (and before the actor blocks); in between one
        request is read at a time. Every drain stamps what waited in ZeroMQ
        (its time-to-live counts from then) and refuses past the bound.
        """
        queue = self._queue
        sock = self._sock
        if sock is None:
            return None
        if self._backlog:
            self._backlog.flush(functools.partial(self._try_send, sock))
        now = monotonic()
        if self._idle or now - self._drained_at < _DRAIN_EVERY:
            # Woken from a wait (what is there arrived just now), or drained
            # lately: the oldest request already read, else the next one.
            if queue:
                self._idle = False
                return queue.popleft()
            envelope = self._read_one(sock)
            if envelope is not None:
                self._idle = False
                return envelope
            if self._idle:
                return None
        self._read_all(sock)
        self._drained_at = now
        if self._refusals.pending:
            self._refusals.flush()
        if self._cast_failures.pending:
            self._cast_failures.flush()
        if queue:
            self._idle = False
            return queue.popleft()
        self._idle = True
        return None

    def _receive(self, sock: zmq.Socket[bytes]) -> Envelope[Any] | bool | None:
        """Read one message and check it: its envelope, None when refused, False at Again."""
        recv = sock.recv
        try:
            frame = recv(_NOBLOCK, copy=False)
            frames = [frame]
            while frame.more:
                frame = recv(_NOBLOCK, copy=False)
                frames.append(frame)
        except zmq.Again:
            return False
        traffic = self.traffic  # only the actor's thread writes it
        traffic.messages_in += 1
        traffic.bytes_in += len(frames[-1])
        try:
            delivery = self._handle(frames)
        except Exception as exc:  # noqa: BLE001  # pragma: no cover - defensive
            self._refusals.note("malformed", "failed to handle: %r", exc)
            return None
        return None if delivery is None else delivery[1]

    def _read_one(self, sock: zmq.Socket[bytes]) -> Envelope[Any] | None:
        """Read until one request is accepted (refusals answered on the way); None at Again."""
        while True:
            envelope = self._receive(sock)
            if envelope is False:
                return None
            if envelope is not None:
                return envelope  # type: ignore[return-value]  # False is handled above

    def _read_all(self, sock: zmq.Socket[bytes]) -> None:
        """Read everything that arrived into the queue (refusing past the bound)."""
        queue = self._queue
        while (envelope := self._receive(sock)) is not False:
            if envelope is not None:
                queue.append(envelope)  # type: ignore[arg-type]  # False ends the loop

    def timeout(self) -> float | None:
        """Seconds until held replies are retried or a refusal summary is due."""
        due = [log.flush() for log in (self._refusals, self._cast_failures) if log.pending]
        timeout = min((t for t in due if t is not None), default=None)
        if self._backlog:
            timeout = _RETRY_S if timeout is None else min(timeout, _RETRY_S)
        return timeout

    def close(self) -> None:
        """Close the socket (on the actor's thread, or once it has stopped)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close(linger=0)
            for envelope in self._queue:  # read but never started: like a dropped call
                expired = getattr(envelope.reply_to, "expired", None)
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
