"""The timer actor: one per node, it tells managers when to run their periodic work.

It sends each registered actor a `Tick`; the actor runs its due periodic tasks
inside its own mailbox and answers with the seconds it may idle. Unlike
Cinder's fixed ``periodic_interval``, the timer honours that answer, so a task
with spacing 5 runs every 5 s, not every 60.

* **No pile-up.** An actor gets no second tick while its first is still queued
  or running; a slow manager delays only itself.
* **Fuzzy start.** The first tick can be delayed by a random amount in
  ``[0, fuzzy_delay]`` to avoid stampedes (Cinder's ``periodic_fuzzy_delay``).
* **Survival.** A failing tick is logged and retried after `default_interval`;
  a dead actor is dropped. The timer itself never stops because of a manager.
* **Manual time.** With a `ManualClock`, time moves only through `advance`,
  which runs everything that became due, in order, and waits for it.

Example:
    >>> from actors import ManualClock, Manager, TimerActor, periodic_task
    >>> class Counter(Manager):
    ...     runs = 0
    ...     @periodic_task(spacing=5)
    ...     def count(self, context):
    ...         self.runs += 1
    >>> clock = ManualClock()
    >>> counter = Counter.start(host="h", clock=clock)
    >>> timer = TimerActor.start(clock=clock).proxy()
    >>> timer.register(counter).get()
    >>> timer.advance(20).get()
    5
    >>> counter.proxy().runs.get()
    4
    >>> _ = timer.stop(), counter.stop()
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import random
import threading
from time import perf_counter
from typing import Any, NamedTuple

import pykka
from pykka import ActorDeadError, ThreadingFuture

from _pykka_adapter import Envelope
from actors._clock import DEFAULT_CLOCK, Clock, ManualClock
from actors._mailbox import ResilientActor

AnyRef = pykka.ActorRef[Any]

__all__ = ["Tick", "TimerActor"]

logger = logging.getLogger(__name__)

_MIN_IDLE = 1e-3  # never reschedule closer than this: a zero idle must not spin


class Tick(NamedTuple):
    """The timer's message: run your due periodic work now.

    An actor that receives it answers (returns from ``on_receive``) the number
    of seconds it may idle before the next tick. Every `Manager` does.
    """


class _Drain(NamedTuple):
    """Collect the tick answers that arrived since the last drain."""


class _TickFuture(ThreadingFuture[float]):
    """A tick's reply: besides resolving, it records itself with the timer's answers."""

    message_kind = "tick"  # what a mailbox probe counts it as

    def __init__(self, answers: _Answers, key: str) -> None:
        super().__init__()
        self.queued_at = perf_counter()
        self.key = key
        self.finished = False  # guarded by answers.cond
        self.awaited = False  # guarded by answers.cond
        self._answers = answers

    def set(self, value: Any | None = None) -> None:
        super().set(value)
        self._answers.add(self)

    def set_exception(self, exc_info: Any = None) -> None:
        super().set_exception(exc_info)
        self._answers.add(self)


class _Answers:
    """Tick answers, collected so that a burst of them wakes the timer once, not per answer.

    The answering actor's thread records each answer here. The first answer
    after a drain sends the timer a single `_Drain` message; `advance` instead
    waits on the condition until the answers it expects have all arrived.
    """

    def __init__(self, timer: AnyRef) -> None:
        self.cond = threading.Condition(threading.Lock())
        self._arrived: list[_TickFuture] = []
        self._awaited = 0
        self._drain_sent = False
        self._timer = timer

    def add(self, future: _TickFuture) -> None:
        with self.cond:
            future.finished = True
            self._arrived.append(future)
            if future.awaited:
                self._awaited -= 1
                if self._awaited == 0:
                    self.cond.notify()
            if self._drain_sent:
                return
            self._drain_sent = True
        with contextlib.suppress(ActorDeadError):
            self._timer.tell(_Drain())

    def take(self) -> list[_TickFuture]:
        with self.cond:
            arrived, self._arrived = self._arrived, []
            self._drain_sent = False
        return arrived

    def wait_for(self, futures: list[_TickFuture], timeout: float) -> None:
        with self.cond:
            for future in futures:
                if not future.finished:
                    future.awaited = True
                    self._awaited += 1
            self.cond.wait_for(lambda: self._awaited == 0, timeout)
            for future in futures:
                future.awaited = False
            self._awaited = 0


class _Entry:
    __slots__ = ("due", "generation", "in_flight", "ref")

    def __init__(self, ref: AnyRef, due: float) -> None:
        self.ref = ref
        self.due = due
        self.generation = 0
        self.in_flight: _TickFuture | None = None


class TimerActor(ResilientActor):
    """Sends `Tick` messages to registered actors when their periodic work is due.

    Args:
        clock: where time comes from (default: the monotonic clock).
        default_interval: seconds to wait after a failed tick (Cinder's 60).
        fuzzy_delay: default upper bound of the random first-tick delay.
        rng: the randomness for fuzzy delays (seed it for repeatable tests).
        sweep_interval: how often to drop actors that died with a tick in flight.
    """

    _mailbox_timed = True

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        default_interval: float = 60.0,
        fuzzy_delay: float = 0.0,
        rng: random.Random | None = None,
        sweep_interval: float = 60.0,
    ) -> None:
        super().__init__()
        self.clock = clock or DEFAULT_CLOCK
        self.default_interval = default_interval
        self.fuzzy_delay = fuzzy_delay
        self._rng = rng or random.Random()
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, str, int]] = []
        self._order = itertools.count()
        self._answers = _Answers(self.actor_ref)
        self._sweep_interval = sweep_interval
        self._next_sweep = self.clock.monotonic() + sweep_interval

    # -- the public API (call through a proxy) ---------------------------------

    def register(
        self,
        actor: AnyRef,
        *,
        initial_delay: float | None = None,
        fuzzy_delay: float | None = None,
    ) -> None:
        """Start ticking `actor`.

        Args:
            actor: the ref of an actor that answers `Tick` (every `Manager`).
            initial_delay: seconds before the first tick; default: a random
                delay in ``[0, fuzzy_delay]`` (0 when there is no fuzzy delay).
            fuzzy_delay: overrides the timer's default fuzzy delay for this actor.
        """
        if initial_delay is None:
            fuzz = self.fuzzy_delay if fuzzy_delay is None else fuzzy_delay
            initial_delay = self._rng.uniform(0, fuzz) if fuzz > 0 else 0.0
        key = actor.actor_urn
        self._drop(key)
        entry = _Entry(actor, self.clock.monotonic() + initial_delay)
        self._entries[key] = entry
        self._schedule(key, entry, entry.due)

    def unregister(self, actor: AnyRef) -> bool:
        """Stop ticking `actor`; return whether it was registered."""
        return self._drop(actor.actor_urn)

    def registered(self) -> int:
        """Return how many actors are registered."""
        return len(self._entries)

    def next_due(self) -> float | None:
        """Return the clock reading of the next tick, or ``None`` if none is scheduled."""
        self._discard_stale()
        return self._heap[0][0] if self._heap else None

    def advance(self, seconds: float, *, timeout: float = 10.0) -> int:
        """Move a `ManualClock` forward, running everything that became due.

        Time is stepped to each due point in turn; the ticks sent there are
        waited for (up to `timeout` real seconds per actor; one that takes longer
        stays in flight and is not ticked again until it answers), and their
        answers schedule the next ticks before time moves on.

        Returns:
            The number of ticks sent.

        Raises:
            TypeError: the timer's clock is not a `ManualClock`.
        """
        clock = self.clock
        if not isinstance(clock, ManualClock):
            msg = "advance() needs the timer to run on a ManualClock"
            raise TypeError(msg)
        target = clock.monotonic() + seconds
        sent = 0
        while (due := self.next_due()) is not None and due <= target:
            clock.set(max(due, clock.monotonic()))
            ticks = self._fire_due()
            sent += len(ticks)
            self._answers.wait_for(ticks, timeout)
            for future in ticks:
                if future.finished:
                    self._complete(future)
                else:  # stays in flight: not ticked again until it answers
                    logger.warning("tick to %s still running after %ss", future.key, timeout)
        clock.set(target)
        return sent

    # -- the mailbox -------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        """Collect tick answers; anything else is unexpected."""
        if isinstance(message, _Drain):
            for future in self._answers.take():
                self._complete(future)
            return None
        return super().on_receive(message)

    def _mailbox_timeout(self) -> float | None:
        # Fire what is due before waiting, so a busy inbox cannot starve the ticks.
        try:
            while (due := self.next_due()) is not None:
                wait = self.clock.time_until(due)
                if wait is None or wait > 0:
                    return wait
                self._fire_due()
        except Exception:
            logger.exception("timer bookkeeping failed")
            return _MIN_IDLE
        return None

    def _mailbox_idle(self) -> None:
        self._fire_due()

    # -- bookkeeping ---------------------------------------------------------------

    def _schedule(self, key: str, entry: _Entry, due: float) -> None:
        entry.generation += 1
        entry.due = due
        heapq.heappush(self._heap, (due, next(self._order), key, entry.generation))

    def _drop(self, key: str) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        entry.generation += 1  # invalidates its heap item
        return True

    def _discard_stale(self) -> None:
        heap = self._heap
        while heap:
            _, _, key, generation = heap[0]
            entry = self._entries.get(key)
            if entry is not None and entry.generation == generation and entry.in_flight is None:
                return
            heapq.heappop(heap)

    def _fire_due(self) -> list[_TickFuture]:
        """Tick every actor whose time has come; return the ticks sent."""
        now = self.clock.monotonic()
        if now >= self._next_sweep:
            self._sweep(now)
        sent: list[_TickFuture] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, key, generation = heapq.heappop(heap)
            entry = self._entries.get(key)
            if entry is None or entry.generation != generation or entry.in_flight is not None:
                continue
            future = self._send_tick(key, entry)
            if future is not None:
                sent.append(future)
        return sent

    def _send_tick(self, key: str, entry: _Entry) -> _TickFuture | None:
        ref = entry.ref
        if not ref.is_alive():
            logger.warning("dropping %s from the timer: it is not running", ref)
            self._drop(key)
            return None
        future = _TickFuture(self._answers, key)
        entry.in_flight = future
        ref.actor_inbox.put(Envelope(Tick(), reply_to=future))
        return future

    def _complete(self, future: _TickFuture) -> None:
        key = future.key
        entry = self._entries.get(key)
        if entry is None or entry.in_flight is not future:
            return  # already handled: advance() and the drain both see an answer
        entry.in_flight = None
        try:
            idle = float(future.get(timeout=0))
        except BaseException as exc:
            if not entry.ref.is_alive():
                logger.warning("dropping %s from the timer: it stopped (%r)", entry.ref, exc)
                self._drop(key)
                return
            logger.error("periodic tick of %s failed", entry.ref, exc_info=exc)
            idle = self.default_interval
        self._schedule(key, entry, self.clock.monotonic() + max(idle, _MIN_IDLE))

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self._sweep_interval
        for key, entry in list(self._entries.items()):
            if entry.in_flight is not None and not entry.ref.is_alive():
                logger.warning("dropping %s from the timer: it died during a tick", entry.ref)
                self._drop(key)

