"""Simulated actors: the user's classes, with an inbox and futures that belong to the scheduler.

`sim_class` derives, once per simulation, a subclass of an actor class that
overrides only pykka's three engine hooks (inbox, future, start of the loop);
the user's code is not touched. Its `ActorRef` and proxies are pykka's own.
"""

from __future__ import annotations

import queue
import sys
from collections import deque
from typing import TYPE_CHECKING, Any

import pykka

if TYPE_CHECKING:
    from _pykka_adapter import Envelope, OptExcInfo
    from actors.testing._scheduler import Proc, Scheduler

__all__ = ["SimFuture", "SimInbox", "sim_class"]


class SimFuture(pykka.Future[Any]):
    """A future whose `get` lets the scheduler run until it resolves.

    Waited on by a handler, it suspends only that handler (its manager stays
    busy); waited on by the test, it runs the simulation until the value is
    there, on virtual time. ``get(timeout=t)`` raises `pykka.Timeout` after
    `t` virtual seconds.
    """

    timeout_error: type[Exception] = pykka.Timeout

    def __init__(self, scheduler: Scheduler | None = None) -> None:
        super().__init__()
        self._scheduler = scheduler
        self.done = False
        self._value: Any = None
        self._exc_info: OptExcInfo | None = None
        self.waiters: list[Proc] = []
        self.target: Proc | None = None
        """The actor whose handler resolves this future (for deadlock reports)."""
        self.label = "?"
        """What resolves it (``Ledger.apply()``)."""

    def __repr__(self) -> str:
        return f"<SimFuture {'done' if self.done else 'pending'} {self.label}>"

    def get(self, *, timeout: float | None = None) -> Any:
        """Return the value (or raise the exception) once the simulation produced it."""
        if self._get_hook is not None:
            return super().get(timeout=timeout)
        if not self.done:
            if self._scheduler is None:
                msg = "this future belongs to no simulation"
                raise RuntimeError(msg)
            self._scheduler.wait(self, timeout)
        exc_info = self._exc_info
        if exc_info is not None:
            exc_type, exc_value, exc_tb = exc_info
            if exc_value is None:
                assert exc_type is not None
                exc_value = exc_type()
            raise exc_value.with_traceback(exc_tb)
        return self._value

    def set(self, value: Any | None = None) -> None:
        """Resolve with `value`."""
        if self.done or self._get_hook is not None:
            raise queue.Full
        self.done = True
        self._value = value
        if self._scheduler is not None:
            self._scheduler.resolved(self)

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        """Resolve with an exception (default: the one being handled)."""
        if self.done or self._get_hook is not None:
            raise queue.Full
        self.done = True
        self._exc_info = exc_info if exc_info is not None else sys.exc_info()
        if self._scheduler is not None:
            self._scheduler.resolved(self)


class SimInbox:
    """An actor's inbox in a simulation: a put hands the envelope to the scheduler."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self.proc: Proc | None = None
        self.early: deque[Envelope[Any]] = deque()

    def put(self, envelope: Envelope[Any], /) -> None:
        """Queue `envelope` in the sender's channel to this actor."""
        if self.proc is None:
            self.early.append(envelope)
        else:
            self._scheduler.enqueue(self.proc, envelope)

    def get(self) -> Envelope[Any]:
        """Not available: the scheduler alone takes messages out."""
        msg = "a simulated inbox is read by the scheduler only"
        raise RuntimeError(msg)

    def empty(self) -> bool:
        """Whether no message waits for this actor."""
        return self.proc is None or not self.proc.queued

    def qsize(self) -> int:
        """How many messages wait for this actor."""
        return 0 if self.proc is None else self.proc.queued


class CachingRef(pykka.ActorRef[Any]):
    """An `ActorRef` whose `proxy()` is built once.

    pykka introspects the whole actor for every new proxy (milliseconds for a
    manager); one thread runs a simulation, so one proxy per ref is enough.
    """

    _sim_proxy: pykka.ActorProxy[Any] | None = None

    def proxy(self) -> pykka.ActorProxy[Any]:
        """The actor's proxy (the same one each time while it lives)."""
        cached = self._sim_proxy
        if cached is None or not self.is_alive():
            cached = self._sim_proxy = super().proxy()
        return cached


def sim_class(scheduler: Scheduler, cls: type[pykka.Actor]) -> type[pykka.Actor]:
    """Derive the simulated version of actor class `cls` (same name, same behaviour)."""

    def _create_actor_inbox() -> SimInbox:
        return SimInbox(scheduler)

    def _create_future() -> SimFuture:
        return SimFuture(scheduler)

    def _start_actor_loop(self: pykka.Actor) -> None:
        scheduler.adopt(self)

    namespace: dict[str, Any] = {
        "_create_actor_inbox": staticmethod(_create_actor_inbox),
        "_create_future": staticmethod(_create_future),
        "_start_actor_loop": _start_actor_loop,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "_simulated_class": cls,  # private: never part of the remote surface
    }
    return type(cls.__name__, (cls,), namespace)
