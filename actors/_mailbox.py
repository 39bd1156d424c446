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
import sys
import threading
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


class _SourceWait:
    """One wait for an actor serving a source: the source and its inbox together.

    `put` replaces the inbox's own while the source is served: it signals an
    eventfd only while the actor's thread is about to block (so a local message
    costs no system call while the actor is busy); the source's `wait` watches
    that eventfd beside its own messages.
    """

    def __init__(self, inbox: _Inbox, source: MessageSource, actor: ResilientActor) -> None:
        self._raw_put = queue.SimpleQueue.put.__get__(inbox)
        self._empty = inbox.empty
        self._source_wait = source.wait
        self._actor = actor
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._waiting = False
        self._signalled = False  # a put wrote to the eventfd during this wait
        self._closed = False
        self._lock = threading.Lock()  # a put that saw `_waiting` never writes to a closed fd

    def put(self, item: Envelope[Any], block: bool = True, timeout: float | None = None) -> None:
        """Put `item` into the inbox; wake the actor if it waits (any thread)."""
        self._raw_put(item)
        if self._waiting:
            # The actor may wake for another reason meanwhile, take this item
            # (a detach), stop serving and close the eventfd, whose number may
            # then belong to another descriptor: hence the lock.
            with self._lock:
                if not self._closed:
                    os.write(self._fd, _WAKE)
                    self._signalled = True

    def fired(self) -> bool:
        """Whether the source has a message now (never blocks)."""
        return self._source_wait(None, 0.0)[0]

    def wait(self, timeout: float | None) -> bool | None:
        """Block up to `timeout` seconds (None: no limit) unless the inbox has something.

        The source may handle the message that woke it before returning (see
        `MessageSource.wait`); a put meanwhile still signals the eventfd,
        which is then read here, not by a needless wake-up.

        Returns:
            True when the source has work, False when it has not, None when
            the time ran out with nothing anywhere (a timed actor's idle work).
        """
        self._waiting = True
        if not self._empty():
            self._waiting = False
            return False  # the loop asks the source after the local message
        ready, woken = self._source_wait(self._fd, timeout, self._actor)
        self._waiting = False
        if woken or self._signalled:
            self._signalled = False
            with contextlib.suppress(BlockingIOError):
                os.read(self._fd, 8)
        elif not ready and self._empty():
            return None
        return ready

    def close(self) -> None:
        """Close the eventfd (on the actor's thread, once `put` is no longer the inbox's)."""
        with self._lock:
            self._closed = True
            os.close(self._fd)


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
            return self._stop_on_failure(reply_to)
        if reply_to is not None:
            try:
                reply_to.set(response)
            except queue.Full:
                logger.warning("%s: reply to %s was already set", self, describe(message))
        return True

    def _stop_on_failure(self, reply_to: pykka.Future[Any] | None) -> bool:
        """A handler raised the `BaseException` being handled: stop this actor; return False.

        Called inside the ``except`` block (by `_dispatch`, and by a message
        source that runs a request itself): the failure is recorded (the actor
        is marked stopped) before `reply_to` gets the exception, then
        `on_failure` runs; the supervisor hears of it once the loop has ended.
        """
        self._handle_failure(*sys.exc_info())  # marks it stopped before the reply
        if reply_to is not None:
            self._reply_exception(reply_to)
        try:
            self.on_failure(*sys.exc_info())
        except Exception:
            logger.exception("%s: on_failure failed", self)
        return False

    def _serve_source(self, source: MessageSource) -> None:
        """Serve `source` and the inbox from this thread until detached or stopped.

        One wait covers both: `poll` on the source's descriptor and on an
        eventfd that a `put` into the inbox signals only while this thread is
        about to block (so a local message costs no system call while the
        actor is busy). Local and remote messages alternate, one each, so
        neither starves the other; each side keeps its own order. Once the
        source's `step` found nothing, it is asked again only when its
        descriptor fired (seen by that wait, or by a poll without waiting
        after each local message) or a wait timed out (its retries).
        """
        inbox = self.actor_inbox
        if not isinstance(inbox, _Inbox):  # pragma: no cover - a subclass's own inbox
            logger.error("%s: cannot serve a socket with inbox %r", self, inbox)
            source.close()
            return
        waiter = _SourceWait(inbox, source, self)
        empty = inbox.empty
        get = inbox.get_nowait
        step = source.step
        fired = waiter.fired
        wait = waiter.wait
        timed = self._mailbox_timed
        is_stopped = self.actor_stopped.is_set
        dispatch = self._dispatch
        inbox.put = waiter.put  # type: ignore[method-assign]
        ready: bool | None = True  # whether the source may have work (it said so in a wait)
        try:
            # The actor stops only in a handler: a local message (checked after
            # each), or a remote request's BaseException (step returns False).
            while not is_stopped():
                local = not empty()  # only this thread takes from the inbox: get() succeeds
                if local:
                    envelope: Envelope[Any] = get()
                    message = envelope.message
                    if message.__class__ is DetachSource and message.source is source:
                        return
                    if not dispatch(envelope) or is_stopped():
                        return
                    ready = ready or fired()
                while ready:
                    handled = step(self)
                    if handled is False:
                        return
                    if not handled:
                        ready = False  # nothing known: its wait looks before blocking
                    elif not empty():
                        break  # local and remote messages alternate
                if not local:
                    if not timed:
                        ready = wait(None)
                    elif (ready := wait(self._mailbox_timeout())) is None:
                        self._run_idle()
        finally:
            del inbox.put
            source.close()
            waiter.close()

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
