"""The mailbox: one thread per actor, one message at a time, and survival.

`ResilientActor` is a `pykka.ThreadingActor` with two changes that every
actor of this runtime needs:

* Its inbox is a `queue.SimpleQueue`, which is measurably cheaper per message
  than pykka's default `queue.Queue`.
* A handler that raises an `Exception` never stops the actor. For a *call*
  (`proxy.method()`, `ref.ask()`) the caller's future gets the exception; for a
  *cast* (`proxy.method.defer()`, `ref.tell()`) the exception is logged with its
  traceback. pykka's default would stop the actor on a failing cast. A
  `BaseException` (``SystemExit``, ``KeyboardInterrupt``, ...) still stops the
  actor, as in pykka, but only this actor, not every actor in the process.

A failure that stops the actor (a `BaseException` in a handler, a failing
``on_start``) is reported to its `supervisor` callback, if it has one, after the
actor has stopped: that is how a service notices a dead manager and restarts it.

A message may carry a :class:`contextvars.Context` in a ``context`` attribute
(the transport does this to make the caller's request context current); the
handler then runs inside that context. It may also carry a ``deadline``
(`time.monotonic()` seconds, or None): when the actor takes such a message
from its mailbox after the deadline, it does not handle it and calls its reply
future's ``expired()`` (the transport's futures count it and send nothing: the
caller has given up), or fails the future with `pykka.Timeout` if it has no
such method.

An actor's `mailbox_probe`, when set (a service sets it when the node exports
metrics or traces), runs each message's handler instead of the loop, to time,
count or trace it; without one the loop pays a single attribute check.

Everything that reaches an actor goes through its inbox, so nothing in one
actor ever runs concurrently with anything else in the same actor.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import sys
import time
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import pykka
from pykka import messages

from _pykka_adapter import AttachSource, DetachSource
from actors._awaitable import AwaitableFuture

if TYPE_CHECKING:
    import contextvars
    from collections.abc import Callable
    from types import TracebackType

    from _pykka_adapter import Envelope, MessageSource

__all__ = ["MailboxProbe", "ResilientActor", "Supervisor"]

logger = logging.getLogger(__name__)


def describe(message: Any) -> str:
    """Name a message for a log line: the method for proxy calls."""
    if isinstance(message, messages.ProxyCall):
        return ".".join(message.attr_path) + "()"
    return type(message).__name__


class _Inbox(queue.SimpleQueue):  # type: ignore[type-arg]
    """A `queue.SimpleQueue` whose `put` may be replaced per instance (see `_serve_source`)."""


_WAKE = (1).to_bytes(8, sys.byteorder)


class Supervisor(Protocol):
    """Told, in the dead actor's thread, that an actor stopped because of a failure."""

    def __call__(self, actor: pykka.ActorRef[Any], failure: BaseException | None) -> None: ...


class MailboxProbe(Protocol):
    """Runs each message's handler in an actor's thread, observing it on the way."""

    def run(
        self,
        handle: Callable[[Any], Any],
        message: Any,
        reply_to: pykka.Future[Any] | None,
        context: contextvars.Context | None,
    ) -> Any:
        """Return ``handle(message)`` (inside `context`, if any); raise what it raises."""

    def failed(self) -> None:
        """Told, in the actor's thread, that the handler `run` just ran raised an `Exception`."""

    def task_ran(self, name: str, *, failed: bool) -> None:
        """Told, in the actor's thread, that periodic task `name` ran (and whether it raised)."""


class ResilientActor(pykka.ThreadingActor):
    """A pykka thread actor whose handlers may fail without stopping it.

    Subclasses that need to wake up without a message (a timer) override
    `_mailbox_timeout` and `_mailbox_idle` and set `_mailbox_timed = True`.
    """

    _mailbox_timed: ClassVar[bool] = False
    supervisor: Supervisor | None = None
    """Called once the actor has stopped because of a failure (not on a requested stop)."""
    _failure: BaseException | None = None
    _failed = False
    mailbox_probe: MailboxProbe | None = None
    """Runs every handler when set (through the actor's proxy, so in its own thread)."""

    def _handle_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._failed = True
        self._failure = exception_value
        super()._handle_failure(exception_type, exception_value, traceback)

    def _actor_loop(self) -> None:
        try:
            super()._actor_loop()
        finally:
            supervisor = self.supervisor
            if self._failed and supervisor is not None:
                try:
                    supervisor(self.actor_ref, self._failure)
                except Exception:
                    logger.exception("%s: its supervisor failed", self)

    @staticmethod
    def _create_actor_inbox() -> queue.SimpleQueue[Envelope[Any]]:
        return _Inbox()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return AwaitableFuture()  # `await` on a call never blocks an event loop

    def _mailbox_timeout(self) -> float | None:
        """Seconds to wait for a message before `_mailbox_idle` runs (timed actors)."""
        return None

    def _mailbox_idle(self) -> None:
        """Run when `_mailbox_timeout` passed with no message (timed actors)."""

    def _actor_loop_running(self) -> None:
        # The hot path of every call: keep it free of anything that need not be here.
        get = self.actor_inbox.get
        is_stopped = self.actor_stopped.is_set
        dispatch = self._dispatch
        timed = self._mailbox_timed
        while not is_stopped():
            if timed:
                try:
                    envelope = get(timeout=self._mailbox_timeout())  # type: ignore[call-arg]
                except queue.Empty:
                    self._run_idle()
                    continue
            else:
                envelope = get()
            if envelope.message.__class__ is AttachSource:
                self._serve_source(envelope.message.source)
            elif not dispatch(envelope):
                return

    def _dispatch(self, envelope: Envelope[Any]) -> bool:
        """Handle one message (local or from a source); False once the actor must stop."""
        message = envelope.message
        reply_to = envelope.reply_to
        deadline = getattr(message, "deadline", None)
        if deadline is not None and time.monotonic() >= deadline:
            self._expire(message, reply_to)
            return True
        probe = self.mailbox_probe
        try:
            context = getattr(message, "context", None)
            handle = self._handle_receive
            if probe is not None:
                response = probe.run(handle, message, reply_to, context)
            else:
                response = handle(message) if context is None else context.run(handle, message)
        except Exception:
            if probe is not None:
                probe.failed()
            if reply_to is None:
                logger.exception("%s: cast %s failed", self, describe(message))
            else:
                self._reply_exception(reply_to)
            return True
        except BaseException:  # noqa: BLE001  (stops this actor, as pykka does)
            self._handle_failure(*sys.exc_info())  # marks it stopped before the reply
            if reply_to is not None:
                self._reply_exception(reply_to)
            try:
                self.on_failure(*sys.exc_info())
            except Exception:
                logger.exception("%s: on_failure failed", self)
            return False
        if reply_to is not None:
            try:
                reply_to.set(response)
            except queue.Full:
                logger.warning("%s: reply to %s was already set", self, describe(message))
        return True

    def _serve_source(self, source: MessageSource) -> None:
        """Serve `source` and the inbox from this thread until detached or stopped.

        One wait covers both: `poll` on the source's descriptor and on an
        eventfd that a `put` into the inbox signals only while this thread is
        about to block (so a local message costs no system call while the
        actor is busy). Local and remote messages alternate, one each, so
        neither starves the other; each side keeps its own order.
        """
        inbox = self.actor_inbox
        if not isinstance(inbox, _Inbox):  # pragma: no cover - a subclass's own inbox
            logger.error("%s: cannot serve a socket with inbox %r", self, inbox)
            source.close()
            return
        wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        raw_put = queue.SimpleQueue.put.__get__(inbox)
        waiting = [False]
        write = os.write

        def put(item: Envelope[Any], block: bool = True, timeout: float | None = None) -> None:
            raw_put(item)
            if waiting[0]:
                write(wake_fd, _WAKE)

        poller = select.poll()
        poller.register(source.fileno(), select.POLLIN)
        poller.register(wake_fd, select.POLLIN)
        get = inbox.get_nowait
        take = source.take
        is_stopped = self.actor_stopped.is_set
        timed = self._mailbox_timed
        inbox.put = put  # type: ignore[method-assign]
        try:
            while not is_stopped():
                try:
                    envelope: Envelope[Any] | None = get()
                except queue.Empty:
                    envelope = None
                if envelope is not None:
                    message = envelope.message
                    if message.__class__ is DetachSource and message.source is source:
                        return
                    if not self._dispatch(envelope):
                        return
                remote = take()
                if remote is not None:
                    if not self._dispatch(remote):
                        return
                    continue
                if envelope is not None:
                    continue
                if self._wait(source, poller, wake_fd, waiting, inbox.empty) and timed:
                    self._run_idle()
        finally:
            del inbox.put
            source.close()
            os.close(wake_fd)

    def _wait(
        self,
        source: MessageSource,
        poller: select.poll,
        wake_fd: int,
        waiting: list[bool],
        empty: Callable[[], bool],
    ) -> bool:
        """Block until the source or the inbox has something; True when it timed out idle."""
        timeout = source.timeout()
        if self._mailbox_timed:
            mine = self._mailbox_timeout()
            if mine is not None:
                timeout = mine if timeout is None else min(timeout, mine)
        waiting[0] = True
        events = [] if not empty() else poller.poll(None if timeout is None else timeout * 1000)
        waiting[0] = False
        for fd, _ in events:
            if fd == wake_fd:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_fd, 8)
        return not events and empty()

    def _expire(self, message: Any, reply_to: pykka.Future[Any] | None) -> None:
        expired = getattr(reply_to, "expired", None)
        if expired is not None:
            expired()
        elif reply_to is not None:
            exc = pykka.Timeout(f"the caller's deadline passed before {describe(message)} started")
            reply_to.set_exception((pykka.Timeout, exc, None))

    def _reply_exception(self, reply_to: pykka.Future[Any]) -> None:
        try:
            reply_to.set_exception()
        except queue.Full:
            logger.warning("%s: reply was already set", self)

    def _run_idle(self) -> None:
        try:
            self._mailbox_idle()
        except Exception:
            logger.exception("%s: idle work failed", self)
