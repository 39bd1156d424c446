"""The deterministic scheduler: one handler at a time, on the test's thread, on virtual time.

Every simulated actor (a `Proc`) has one FIFO channel per sender. Each step the
scheduler lists what could happen now (an actor's start, the head of a channel
of an idle actor, a blocked handler whose future resolved or whose deadline
passed, a due timer, a network packet) in plain arrival order, and the chooser
picks one. Handlers run in greenlets: a handler that waits on a future switches
back to the scheduler, its manager stays busy, and it resumes whenever the
chooser picks it, in any order relative to other waiting handlers. When nothing
can happen, virtual time jumps to the next due point.
"""

from __future__ import annotations

import contextlib
import enum
import heapq
import logging
import queue
import sys
from collections import deque
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Protocol

import greenlet
import pykka
from pykka import ActorRegistry, messages

from actors._mailbox import ResilientActor
from actors._timer import TimerActor
from actors.testing._actors import CachingRef, SimFuture, SimInbox, sim_class
from actors.testing._errors import Deadlock, SimulationError
from actors.testing._trace import Trace, describe_message, summarize

if TYPE_CHECKING:
    from collections.abc import Callable

    from _pykka_adapter import Envelope
    from actors._clock import ManualClock
    from actors.testing._choices import Chooser

__all__ = ["Proc", "Scheduler", "State"]

logger = logging.getLogger(__name__)

_BLOCKED = object()
_DONE = object()
_START = object()

START, DELIVER, RESUME, FIRE, NET, LATER = range(6)
_KEY = itemgetter(0)


class State(enum.IntEnum):
    """Where a simulated actor is."""

    NEW = 0
    IDLE = 1
    RUNNING = 2
    BLOCKED = 3
    STOPPED = 4


class Msg:
    """A message in a channel."""

    __slots__ = ("envelope", "label", "sender", "seq")

    def __init__(self, seq: int, sender: str, envelope: Envelope[Any], label: str) -> None:
        self.seq = seq
        self.sender = sender
        self.envelope = envelope
        self.label = label


class Proc:
    """One simulated actor: its channels, its state, its suspended handler."""

    def __init__(self, index: int, name: str, host: str, actor: pykka.Actor, key: int) -> None:
        self.index = index
        self.name = name
        self.host = host
        self.actor = actor
        self.ref: pykka.ActorRef[Any] = actor.actor_ref
        self.channels: dict[int, deque[Msg]] = {}
        self.queued = 0
        self.state = State.NEW
        self.greenlet: greenlet.greenlet | None = None
        self.blocked_on: SimFuture | None = None
        self.deadline: float | None = None
        self.resume_key = 0
        self.start_key = key
        self.doing = "on_start()"
        self.envelope: Any = None
        self.resilient = isinstance(actor, ResilientActor)
        self.is_timer = isinstance(actor, TimerActor)

    def __repr__(self) -> str:
        return f"<Proc {self.name} {self.state.name}>"


class Network(Protocol):
    """What the scheduler asks of the simulated network."""

    def candidates(self, now: float, out: list[tuple[int, int, Any, Any]], key: int) -> None:
        """Append the packets and call deadlines that can be handled now."""
        ...

    def deliver(self, item: Any) -> None:
        """Handle one packet or deadline."""
        ...

    def next_due(self) -> float | None:
        """The next time something on the network becomes due."""
        ...

    def pending(self) -> bool:
        """Whether anything is in flight."""
        ...


class Scheduler:
    """The engine under `actors.testing.Simulation`.

    Args:
        chooser: where decisions come from.
        clock: the virtual clock (the scheduler moves it).
        stall_percent: how often time may jump to the next timer while work is
            pending (a "delay" fault; 0 when faults are off).
        max_wait: virtual seconds the test may wait for something before the
            wait is reported as stuck.
        max_steps: steps after which the run is stopped with `SimulationError`
            (actors that message each other forever never settle).
    """

    def __init__(
        self,
        chooser: Chooser,
        clock: ManualClock,
        *,
        stall_percent: int = 0,
        max_wait: float = 24 * 3600.0,
        max_steps: int = 1_000_000,
    ) -> None:
        self.chooser = chooser
        self.max_steps = max_steps
        self.clock = clock
        self.trace = Trace(chooser.recorded)
        self.stall_percent = stall_percent
        self.max_wait = max_wait
        self.network: Network | None = None
        self.node_faults: Callable[[], bool] | None = None
        self.service_died: Callable[[Any, Proc], None] | None = None
        """Told when a manager run by a `Service` dies (the simulation restarts it)."""
        self._later: list[tuple[float, int, str, Callable[[], None]]] = []
        self.steps = 0
        self.escape: BaseException | None = None
        self.host_context: str | None = None
        self.constructing = 0
        self._main = greenlet.getcurrent()
        self._procs: list[Proc] = []
        self._live: list[Proc] = []
        self._names: dict[str, int] = {}
        self._by_greenlet: dict[greenlet.greenlet, Proc] = {}
        self._current: Proc | None = None
        self._seq = 0
        self._time_key = 0
        self._classes: dict[type, type] = {}

    # -- identities ------------------------------------------------------------------

    def next_seq(self) -> int:
        """A fresh number of the global arrival order."""
        self._seq += 1
        return self._seq

    @property
    def current(self) -> Proc | None:
        """The actor whose code runs now (``None``: the test's code)."""
        return self._current

    @property
    def in_user_code(self) -> bool:
        """Whether actor code (a handler or a constructor) runs now."""
        return self._current is not None or self.constructing > 0

    def sender_name(self) -> str:
        """The name of whoever sends now."""
        proc = self._current
        return "test" if proc is None else proc.name

    def simulated(self, cls: type[Any]) -> type[Any]:
        """The simulated subclass of actor class `cls` (made once per simulation)."""
        if getattr(cls, "_simulated_class", None) is not None and cls in self._classes.values():
            return cls
        sim_cls = self._classes.get(cls)
        if sim_cls is None:
            sim_cls = self._classes[cls] = sim_class(self, cls)
        return sim_cls

    def procs(self) -> list[Proc]:
        """Every simulated actor, in start order."""
        return list(self._procs)

    def proc_of(self, ref: pykka.ActorRef[Any]) -> Proc | None:
        """The simulated actor behind `ref`."""
        inbox = ref.actor_inbox
        return inbox.proc if isinstance(inbox, SimInbox) else None

    def adopt(self, actor: pykka.Actor) -> None:
        """Take a freshly started actor under the scheduler (pykka's loop start)."""
        host = self.host_context or getattr(actor, "host", None) or "local"
        base = f"{host}/{type(actor).__name__}"
        count = self._names.get(base, 0) + 1
        self._names[base] = count
        name = base if count == 1 else f"{base}#{count}"
        urn = f"urn:sim:{name}"  # deterministic, so traces and timer keys are too
        actor.actor_urn = urn
        actor.actor_ref.actor_urn = urn
        actor.actor_ref.__class__ = CachingRef
        proc = Proc(len(self._procs), name, host, actor, self.next_seq())
        self._procs.append(proc)
        self._live.append(proc)
        inbox = actor.actor_inbox
        if not isinstance(inbox, SimInbox):
            msg = f"{actor} was not made by this simulation"
            raise SimulationError(msg)
        inbox.proc = proc
        while inbox.early:
            self.enqueue(proc, inbox.early.popleft())

    # -- messages ----------------------------------------------------------------------

    def enqueue(
        self,
        proc: Proc,
        envelope: Envelope[Any],
        *,
        sender: Proc | None = None,
        explicit: bool = False,
        path: int = 0,
        label: str | None = None,
    ) -> None:
        """Queue `envelope` for `proc` in its sender's channel.

        Args:
            proc: the receiver.
            envelope: the message.
            sender: the sender, when `explicit` (else whoever runs now).
            explicit: take `sender` as given (``None`` then means the test).
            path: 0 for local sends, 1 for the simulated bridge (own FIFO).
            label: what the trace shows (default: a summary of the message).
        """
        who = sender if explicit else self._current
        key = -2 - path if who is None else who.index * 2 + path
        text = label or describe_message(envelope.message)
        reply_to = envelope.reply_to
        if isinstance(reply_to, SimFuture):
            reply_to.target = proc
            reply_to.label = f"{proc.name}.{text}"
        if proc.state is State.STOPPED:
            self._refuse_dead(proc, envelope)
            return
        channel = proc.channels.get(key)
        if channel is None:
            channel = proc.channels[key] = deque()
        channel.append(Msg(self.next_seq(), "test" if who is None else who.name, envelope, text))
        proc.queued += 1

    @staticmethod
    def _refuse_dead(proc: Proc, envelope: Envelope[Any]) -> None:
        reply_to = envelope.reply_to
        if reply_to is None:
            return
        try:
            if isinstance(envelope.message, messages._ActorStop):
                reply_to.set(None)
            else:
                error = pykka.ActorDeadError(f"{proc.name} stopped before handling the message")
                reply_to.set_exception((pykka.ActorDeadError, error, None))
        except queue.Full:
            pass

    # -- futures -----------------------------------------------------------------------

    def resolved(self, future: SimFuture) -> None:
        """A future got its value: its waiting handlers may resume."""
        if future.waiters:
            key = self.next_seq()
            for proc in future.waiters:
                if proc.blocked_on is future:
                    proc.resume_key = key
            future.waiters.clear()

    def wait(self, future: SimFuture, timeout: float | None) -> None:
        """Wait until `future` resolves: suspend the handler, or run the simulation for the test.

        Raises:
            pykka.Timeout: (or the future's own timeout error) after `timeout`
                virtual seconds.
            Deadlock: the test waits for something that can never come.
        """
        here = greenlet.getcurrent()
        proc = self._by_greenlet.get(here)
        now = self.clock.monotonic()
        deadline = None if timeout is None else now + timeout
        if proc is None:
            if here is not self._main or self._current is not None:
                msg = "a simulated future was waited on outside the simulation's thread of control"
                raise SimulationError(msg)
            self.drive(lambda: future.done, deadline, what=future.label)
            if not future.done:
                msg = f"{timeout} seconds (virtual) waiting for {future.label}"
                raise future.timeout_error(msg)
            return
        proc.state = State.BLOCKED
        proc.blocked_on = future
        proc.deadline = deadline
        future.waiters.append(proc)
        self._main.switch(_BLOCKED)
        proc.blocked_on = None
        proc.deadline = None
        if not future.done:
            if proc in future.waiters:
                future.waiters.remove(proc)
            msg = f"{timeout} seconds (virtual) waiting for {future.label}"
            raise future.timeout_error(msg)

    # -- running -------------------------------------------------------------------------

    def drive(
        self, until: Callable[[], bool], limit: float | None, *, what: str = "the simulation"
    ) -> bool:
        """Run steps, jumping time when idle, until `until()` or virtual time `limit`.

        Returns:
            whether `until()` became true (else the clock stands at `limit`).

        Raises:
            Deadlock: a cycle of waits, or nothing due before the horizon when
                there is no `limit`.
        """
        horizon = limit if limit is not None else self.clock.monotonic() + self.max_wait
        while not until():
            if self.step():
                continue
            self.check_cycles()
            due = self.next_due()
            if due is None or due > horizon:
                if limit is not None:
                    self.jump(max(limit, self.clock.monotonic()))
                    return until()
                raise self.stuck(what)
            self.jump(due)
        return True

    def step(self) -> bool:
        """Run one step; return ``False`` when nothing can happen at the current time."""
        candidates = self.candidates()
        if not candidates:
            return False
        if (self.stall_percent and self._stall()) or (
            self.node_faults is not None and self.node_faults()
        ):
            candidates = self.candidates()
            if not candidates:
                return True
        if len(candidates) == 1:
            chosen = candidates[0]
        else:
            candidates.sort(key=_KEY)
            chosen = candidates[self.chooser.choose(len(candidates))]
        self._run(chosen)
        self.steps += 1
        if self.steps >= self.max_steps:
            msg = f"the simulation ran {self.steps} steps without settling (max_steps)"
            raise SimulationError(msg)
        if self.escape is not None:
            raise self.escape
        return True

    def _stall(self) -> bool:
        now = self.clock.monotonic()
        due = None
        for proc in self._live:
            if proc.is_timer and proc.state is State.IDLE:
                nd = proc.actor.next_due()  # type: ignore[attr-defined]
                if nd is not None and nd > now and (due is None or nd < due):
                    due = nd
        if due is None or not self.chooser.fault(self.stall_percent):
            return False
        self.jump(due)
        self.trace.add(due, "FAULT", f"delay: pending messages wait while time moves to {due:g}")
        return True

    def candidates(self) -> list[tuple[int, int, Any, Any]]:
        """Everything that can happen now: ``(arrival key, kind, proc, detail)``."""
        now = self.clock.monotonic()
        out: list[tuple[int, int, Any, Any]] = []
        for proc in self._live:
            state = proc.state
            if state is State.IDLE:
                if proc.queued:
                    for channel in proc.channels.values():
                        if channel:
                            out.append((channel[0].seq, DELIVER, proc, channel))
                if proc.is_timer:
                    due = proc.actor.next_due()  # type: ignore[attr-defined]
                    if due is not None and due <= now:
                        out.append((self._time_key, FIRE, proc, None))
            elif state is State.BLOCKED:
                future = proc.blocked_on
                assert future is not None
                if future.done:
                    out.append((proc.resume_key, RESUME, proc, None))
                elif proc.deadline is not None and proc.deadline <= now:
                    out.append((self._time_key, RESUME, proc, None))
            elif state is State.NEW:
                out.append((proc.start_key, START, proc, None))
        if self._later and self._later[0][0] <= now:
            out.append((self._time_key, LATER, None, None))
        if self.network is not None:
            self.network.candidates(now, out, self._time_key)
        return out

    def later(self, when: float, label: str, action: Callable[[], None]) -> None:
        """Run `action` (from the scheduler, as the test's code) at virtual time `when`."""
        heapq.heappush(self._later, (when, self.next_seq(), label, action))

    def next_due(self) -> float | None:
        """The next virtual time at which something becomes possible."""
        due: float | None = None
        for proc in self._live:
            nd: float | None = None
            if proc.is_timer and proc.state is State.IDLE:
                nd = proc.actor.next_due()  # type: ignore[attr-defined]
            elif proc.state is State.BLOCKED:
                nd = proc.deadline
            if nd is not None and (due is None or nd < due):
                due = nd
        if self._later and (due is None or self._later[0][0] < due):
            due = self._later[0][0]
        if self.network is not None:
            nd = self.network.next_due()
            if nd is not None and (due is None or nd < due):
                due = nd
        return due

    def jump(self, when: float) -> None:
        """Move virtual time to `when`."""
        if when > self.clock.monotonic():
            self.clock.set(when)
        self._time_key = self.next_seq()

    def busy(self) -> bool:
        """Whether any message, handler or packet is still pending."""
        for proc in self._live:
            if proc.queued or proc.state in (State.BLOCKED, State.NEW):
                return True
        return bool(self._later) or (self.network is not None and self.network.pending())

    # -- one step ----------------------------------------------------------------------------

    def _run(self, chosen: tuple[int, int, Any, Any]) -> None:
        _, kind, proc, detail = chosen
        now = self.clock.monotonic()
        if kind == DELIVER:
            msg: Msg = detail.popleft()
            proc.queued -= 1
            proc.doing = msg.label
            proc.envelope = msg.envelope
            self.trace.add(now, f"{proc.name} <- {msg.sender}", msg.label)
            self._spawn(proc, msg.envelope)
        elif kind == RESUME:
            future = proc.blocked_on
            how = "resumes" if future is not None and future.done else "times out"
            self.trace.add(now, proc.name, f"{how} in {proc.doing}")
            self._switch(proc, proc.greenlet, None)
        elif kind == START:
            self.trace.add(now, proc.name, "on_start()")
            self._spawn(proc, _START)
        elif kind == FIRE:
            self.trace.add(now, proc.name, "fires due ticks")
            self._current = proc
            try:
                proc.actor._fire_due()  # type: ignore[attr-defined,unused-ignore]
            except Exception:
                logger.exception("%s: firing ticks failed", proc.name)
            finally:
                self._current = None
        elif kind == LATER:
            _, _, label, action = heapq.heappop(self._later)
            self.trace.add(now, "later", label)
            action()
        else:
            assert self.network is not None
            self.network.deliver(detail)

    def _spawn(self, proc: Proc, envelope: Any) -> None:
        g = greenlet.greenlet(self._handle, parent=self._main)
        proc.greenlet = g
        self._by_greenlet[g] = proc
        self._switch(proc, g, envelope)

    def _switch(self, proc: Proc, g: greenlet.greenlet | None, arg: Any) -> None:
        assert g is not None
        proc.state = State.RUNNING
        self._current = proc
        try:
            result = g.switch(arg)
        finally:
            self._current = None
        if result is _BLOCKED:
            return
        self._by_greenlet.pop(g, None)
        proc.greenlet = None
        if proc.actor.actor_stopped.is_set():
            self._stopped(proc)
        else:
            proc.state = State.IDLE

    def _handle(self, envelope: Any) -> object:
        proc = self._current
        assert proc is not None
        actor = proc.actor
        if envelope is _START:
            actor._actor_loop_setup()
            return _DONE
        message = envelope.message
        reply_to = envelope.reply_to
        deadline = getattr(message, "deadline", None)
        if deadline is not None and proc.resilient and self.clock.monotonic() >= deadline:
            actor._expire(message, reply_to)  # type: ignore[attr-defined]  # as its loop does
            return _DONE
        try:
            context = getattr(message, "context", None)
            handle = actor._handle_receive
            response = handle(message) if context is None else context.run(handle, message)
        except greenlet.GreenletExit:
            raise
        except Exception as exc:
            self.trace.add(self.clock.monotonic(), proc.name, f"raised {summarize(exc)}")
            if reply_to is not None:
                self._set(reply_to, exc_info=sys.exc_info())
            elif proc.resilient:
                logger.exception("%s: cast %s failed", proc.name, proc.doing)
            else:  # plain pykka: a failing cast stops the actor
                actor._handle_failure(*sys.exc_info())
                self._on_failure(actor)
            return _DONE
        except BaseException as exc:  # noqa: BLE001  (stops this actor, as in the runtime)
            self.trace.add(self.clock.monotonic(), proc.name, f"died: {summarize(exc)}")
            info = sys.exc_info()
            actor._handle_failure(*info)
            if reply_to is not None:
                self._set(reply_to, exc_info=info)
            self._on_failure(actor)
            return _DONE
        if reply_to is not None:
            self._set(reply_to, value=response)
        return _DONE

    @staticmethod
    def _on_failure(actor: pykka.Actor) -> None:
        try:
            actor.on_failure(*sys.exc_info())
        except Exception:
            logger.exception("%s: on_failure failed", actor)

    @staticmethod
    def _set(reply_to: pykka.Future[Any], *, value: Any = None, exc_info: Any = None) -> None:
        try:
            if exc_info is not None:
                reply_to.set_exception(exc_info)
            else:
                reply_to.set(value)
        except queue.Full:
            logger.warning("a reply was already set")

    def _stopped(self, proc: Proc) -> None:
        proc.state = State.STOPPED
        if proc in self._live:
            self._live.remove(proc)
        for channel in proc.channels.values():
            while channel:
                self._refuse_dead(proc, channel.popleft().envelope)
        proc.queued = 0
        actor = proc.actor
        supervisor = getattr(actor, "supervisor", None)
        if proc.resilient and getattr(actor, "_failed", False) and supervisor is not None:
            owner = getattr(supervisor, "__self__", None)
            if type(owner).__name__ == "Service" and self.service_died is not None:
                self.service_died(owner, proc)
                return
            self._current = proc
            try:
                supervisor(proc.ref, getattr(actor, "_failure", None))
            except Exception:
                logger.exception("%s: its supervisor failed", proc.name)
            finally:
                self._current = None

    # -- stopping and crashing ------------------------------------------------------------

    def kill(self, proc: Proc) -> None:
        """Stop `proc` at once, as a crash does: no on_stop, its queue lost."""
        if proc.state is State.STOPPED:
            return
        g = proc.greenlet
        proc.greenlet = None
        if g is not None:
            self._by_greenlet.pop(g, None)
            if not g.dead:
                with contextlib.suppress(greenlet.GreenletExit):
                    g.throw(greenlet.GreenletExit)
        ActorRegistry.unregister(proc.ref)
        proc.actor.actor_stopped.set()
        proc.state = State.STOPPED
        if proc in self._live:
            self._live.remove(proc)
        lost = proc.queued
        running = proc.envelope
        if g is not None and running is not None and running.reply_to is not None:
            self._refuse_dead(proc, running)
        for channel in proc.channels.values():
            while channel:
                self._refuse_dead(proc, channel.popleft().envelope)
        proc.queued = 0
        if lost:
            self.trace.add(self.clock.monotonic(), proc.name, f"lost {lost} queued messages")

    # -- stuck -----------------------------------------------------------------------------

    def check_cycles(self) -> None:
        """Raise `Deadlock` if handlers without deadlines wait on each other in a cycle."""
        for start in self._live:
            if start.state is not State.BLOCKED or start.deadline is not None:
                continue
            seen: list[Proc] = []
            proc: Proc | None = start
            while proc is not None and proc.state is State.BLOCKED and proc.deadline is None:
                if proc in seen:
                    cycle = seen[seen.index(proc) :]
                    chain = [self._waits(p) for p in cycle]
                    msg = "deadlock: " + "; ".join(chain) + " (a cycle of waits)"
                    raise Deadlock(msg, chain)
                seen.append(proc)
                future = proc.blocked_on
                if future is None or future.done:
                    break
                proc = future.target

    @staticmethod
    def _waits(proc: Proc) -> str:
        future = proc.blocked_on
        label = future.label if future is not None else "?"
        return f"{proc.name} in {proc.doing} waits for {label}"

    def stuck(self, what: str) -> Deadlock:
        """The error for a wait that nothing can end."""
        blocked = [self._waits(p) for p in self._live if p.state is State.BLOCKED]
        msg = f"the simulation can never deliver {what}: nothing is due within " + (
            f"{self.max_wait:g} virtual seconds"
        )
        if blocked:
            msg += "; blocked: " + "; ".join(blocked)
        return Deadlock(msg, blocked)

    def close(self) -> None:
        """Stop every simulated actor (``on_stop`` for the idle ones) and forget them."""
        for proc in list(self._live):
            if proc.state is State.IDLE:
                self._current = proc
                try:
                    proc.actor.on_stop()
                except Exception:
                    logger.exception("%s: on_stop failed when the simulation closed", proc.name)
                finally:
                    self._current = None
        for proc in list(self._procs):
            self.kill(proc)
        self._by_greenlet.clear()
