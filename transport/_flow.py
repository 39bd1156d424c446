"""Flow control in the bridge: bounded mailboxes and bounded replies to slow readers.

Mailboxes: the bridge counts, per served actor, the requests it has put into
the actor's mailbox (`accepted`, written only by the bridge's I/O thread) and
those the actor has finished with (`finished`, written only by the actor's own
thread, when the request's reply future is set). Their difference is what the
mailbox holds from the bridge, including the request being handled. Past the
bound a call is refused with `overloaded` and a cast is dropped and counted.
One writer per counter: no lock on the hot path.

Replies: the bridge's ROUTER socket keeps at most `reply_hwm` replies queued
toward each peer (ZeroMQ's send high-water mark) and, with
``ZMQ_ROUTER_MANDATORY``, reports a full queue instead of dropping the reply.
Such a reply goes into that peer's `Backlog`, which the I/O thread retries
every few milliseconds until the peer reads again (a burst faster than
ZeroMQ's I/O thread drains also lands there briefly). While a peer's backlog
holds `backlog_bytes` or more, its new calls are refused with `overloaded`
(the refusals queue behind the backlog, up to a cap; past it a call is dropped
and counted: its caller times out and it never ran). So a peer that stops
reading costs at most `reply_hwm` replies inside ZeroMQ, `backlog_bytes` plus
the replies to its calls in flight (bounded by the mailboxes) and the capped
refusals; no accepted call's reply is dropped while the peer is connected.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    import pykka

__all__ = [
    "DEFAULT_BACKLOG_BYTES",
    "DEFAULT_MAILBOX_LIMIT",
    "DEFAULT_REPLY_HWM",
    "Backlog",
    "MailboxView",
]

DEFAULT_MAILBOX_LIMIT = 1000
DEFAULT_REPLY_HWM = 256
DEFAULT_BACKLOG_BYTES = 16 * 1024 * 1024
REFUSAL_CAP = 1000
"""Refusals a backlogged peer may have queued; calls beyond it are dropped."""


class MailboxView:
    """The bridge's view of one served actor's mailbox (shared by all its names)."""

    __slots__ = ("accepted", "finished", "inbox", "limit", "ref")

    def __init__(self, ref: pykka.ActorRef[Any], limit: int) -> None:
        if limit < 1:
            raise ValueError(f"mailbox limit must be at least 1, not {limit}")
        self.ref = ref
        self.inbox = ref.actor_inbox
        self.limit = limit
        self.accepted = 0  # written by the I/O thread only
        self.finished = 0  # written by the actor's thread only

    @property
    def depth(self) -> int:
        """Requests from the bridge in the mailbox now, the one being handled included."""
        return self.accepted - self.finished

    def full(self) -> bool:
        """Whether the bound is reached (read on the I/O thread)."""
        return self.accepted - self.finished >= self.limit


class _PeerQueue:
    __slots__ = ("items", "nbytes", "refusals")

    def __init__(self) -> None:
        self.items: deque[tuple[list[bytes], bytes, bool]] = deque()
        self.refusals = 0
        self.nbytes = 0


class Backlog:
    """Replies ZeroMQ could not queue yet, per peer, in order (callers hold the socket lock)."""

    def __init__(self) -> None:
        self._peers: dict[bytes, _PeerQueue] = {}
        self.size = 0
        """Replies held, over all peers."""
        self.nbytes = 0
        """Bytes of replies held, over all peers."""

    def __bool__(self) -> bool:
        return bool(self._peers)

    def holds(self, peer: bytes) -> bool:
        """Whether `peer` has replies waiting (its replies must queue behind them)."""
        return peer in self._peers

    def held(self, peer: bytes) -> int:
        """How many bytes of replies `peer` has waiting."""
        queue = self._peers.get(peer)
        return 0 if queue is None else queue.nbytes

    def refusals_room(self, peer: bytes) -> bool:
        """Whether one more refusal may queue for `peer`."""
        queue = self._peers.get(peer)
        return queue is None or queue.refusals < REFUSAL_CAP

    def add(self, routing: list[bytes], body: bytes, *, refusal: bool = False) -> None:
        """Queue a reply behind `routing[0]`'s others."""
        queue = self._peers.get(routing[0])
        if queue is None:
            queue = self._peers[routing[0]] = _PeerQueue()
        queue.items.append((routing, body, refusal))
        queue.refusals += refusal
        queue.nbytes += len(body)
        self.size += 1
        self.nbytes += len(body)

    def flush(self, send: Callable[[list[bytes], bytes], bool | None]) -> None:
        """Send what each peer can take now, in order.

        `send` returns True when sent, False when the peer's queue is full (try
        later), None when the peer is gone (its replies are dropped).
        """
        for peer in list(self._peers):
            queue = self._peers[peer]
            items = queue.items
            while items:
                routing, body, refusal = items[0]
                sent = send(routing, body)
                if sent is False:
                    break
                items.popleft()
                queue.refusals -= refusal
                queue.nbytes -= len(body)
                self.size -= 1
                self.nbytes -= len(body)
                if sent is None:  # gone: nobody will read the rest either
                    self.size -= len(items)
                    self.nbytes -= queue.nbytes
                    items.clear()
            if not items:
                del self._peers[peer]
