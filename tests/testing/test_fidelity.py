"""Fidelity: what holds on real threads holds in the simulation, and outcomes agree."""

from __future__ import annotations

import functools
import socket
import threading
from pathlib import Path
from typing import Any

import pykka
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import transport
from actors import Directory, Manager, ManualClock, Service, TimerActor
from actors.db import Database
from actors.testing import Schedule, Simulation, schedules
from actors.testing._actors import SimFuture
from tests.test_ordering import OPS
from tests.testing._demo import check_invariant, run_demo
from tests.testing._systems import Store, Ticker


class Ledger(Store):
    """tests/test_ordering.py's ledger without wall-clock intervals (the simulator forbids them)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.per_sender: dict[int, int] = {}
        self.active = 0
        self.overlaps = 0

    def apply(self, sender: int, seq: int) -> int:
        self.active += 1
        if self.active != 1:
            self.overlaps += 1
        self.log.append((sender, seq))
        self.per_sender[sender] = self.per_sender.get(sender, 0) + 1
        self.active -= 1
        return self.per_sender[sender]


class Client(Store):
    """One sender of tests/test_ordering.py: calls, deferred calls and casts in its plan's order."""

    def play(self, ledger: pykka.ActorRef[Any], me: int, ops: list[str]) -> list[str]:
        proxy = ledger.proxy()
        problems = []
        later: list[tuple[int, Any]] = []
        for seq, op in enumerate(ops):
            if op == "cast":
                proxy.apply.defer(me, seq)
                continue
            future = proxy.apply(me, seq)
            later.append((seq, future.get() if op == "call" else future))
        for seq, result in later:
            applied = result if isinstance(result, int) else result.get()
            if applied != seq + 1:
                problems.append(f"sender {me} call {seq} saw {applied} applied")
        return problems


@settings(max_examples=150)
@given(
    plans=st.lists(st.lists(OPS, min_size=1, max_size=25), min_size=1, max_size=4),
    schedule=schedules(),
)
def test_the_ordering_property_holds_under_the_simulator(
    plans: list[list[str]], schedule: Schedule
) -> None:
    with Simulation(schedule) as sim:
        ledger = sim.start(Ledger, host="h")
        clients = [sim.start(Client, host=f"c{i}") for i in range(len(plans))]
        futures = [
            c.proxy().play(ledger, i, ops)
            for i, (c, ops) in enumerate(zip(clients, plans, strict=True))
        ]
        sim.run()
        assert [f.get() for f in futures] == [[] for _ in plans]
        log = ledger.proxy().log.get()
        for sender, ops in enumerate(plans):
            assert [seq for s, seq in log if s == sender] == list(range(len(ops)))
        assert len(log) == sum(map(len, plans))
        assert ledger.proxy().overlaps.get() == 0


# -- the same scenario on real threads and in the simulation ----------------------------------


def _calls_and_errors(start: Any) -> list[Any]:
    store = start(Store).proxy()
    store.set.defer(3)
    out: list[Any] = [store.get().get(timeout=10)]
    try:
        store.set(1, 2).get(timeout=10)
    except TypeError as exc:
        out.append(type(exc).__name__)
    store.record.defer("a", 0)
    out.append(store.record("a", 1).get(timeout=10))
    return out


def test_calls_casts_and_errors_agree() -> None:
    refs: list[pykka.ActorRef[Any]] = []

    def real(cls: type[Manager]) -> pykka.ActorRef[Any]:
        ref: pykka.ActorRef[Any] = cls.start(host="h")
        refs.append(ref)
        return ref

    try:
        on_threads = _calls_and_errors(real)
    finally:
        for ref in refs:
            ref.stop()
    with Simulation(seed=1) as sim:
        simulated = _calls_and_errors(functools.partial(sim.start, host="h"))
    assert simulated == on_threads == [3, "TypeError", 2]


def test_periodic_tasks_agree() -> None:
    clock = ManualClock(start=0.0)
    ticker = Ticker.start(host="h", clock=clock)
    timer = TimerActor.start(clock=clock)
    try:
        timer.proxy().register(ticker, initial_delay=0.0).get(timeout=10)
        timer.proxy().advance(95).get(timeout=30)
        on_threads = ticker.proxy().runs.get(timeout=10)
    finally:
        timer.stop()
        ticker.stop()
    with Simulation(seed=2) as sim:
        proxy = sim.start(Ticker, host="h").proxy()
        sim.advance(95)
        simulated = proxy.runs.get()
    assert simulated == on_threads == [float(t) for t in range(0, 95, 10)]


def test_remote_errors_and_timeouts_agree() -> None:
    store = Store.start(host="h")
    try:
        with transport.Bridge("tcp://127.0.0.1:0") as bridge:
            bridge.expose("store", store)
            with transport.connect(bridge.endpoint, timeout=5) as conn:
                proxy = conn.proxy("store")
                real = _remote(proxy)
                bridge.unexpose("store")
                real.append(_error_of(lambda: proxy.get().get(timeout=5)))  # gone: UnknownActor
        # a peer that never answers (nothing listens there): the call's deadline passes
        with transport.connect(f"tcp://127.0.0.1:{_free_port()}", timeout=0.3) as silent:
            real.append(_error_of(lambda: silent.proxy("store").get().get()))
    finally:
        store.stop()
    with Simulation(seed=3) as sim:
        ref = sim.start(Store, host="h2")
        sim.expose("store", ref)
        sim_proxy = sim.connect("h2", timeout=5).proxy("store")
        simulated = _remote(sim_proxy)
        sim.network.host("h2").bridge.unexpose("store")
        simulated.append(_error_of(lambda: sim_proxy.get().get(timeout=5)))
        sim.partition("test", "h2")
        simulated.append(_error_of(lambda: sim.connect("h2", timeout=0.3).proxy("s").get().get()))
    assert simulated == real
    assert real[-2:] == ["UnknownActor", "MessagingTimeout"]


def _error_of(call: Any) -> str:
    try:
        call()
    except Exception as exc:
        return type(exc).__name__
    return "no error"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _remote(proxy: Any) -> list[Any]:
    out: list[Any] = []
    proxy.set.defer(4)
    out.append(proxy.get().get(timeout=5))
    for method, args in (("set", (1, 2)), ("nope", ()), ("_hidden", ())):
        try:
            getattr(proxy, method)(*args).get(timeout=5)
        except Exception as exc:
            out.append(type(exc).__name__)
    return out


def test_a_node_going_down_and_up_agrees_with_the_services_table(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'real.db'}")
    clock = ManualClock()
    timer = TimerActor.start(clock=clock)
    service = Service(Ticker, host="n1", db=db, timer=timer, topic="ticker",
                      periodic_fuzzy_delay=0, clock=clock)  # fmt: skip
    directory = Directory(db, clock=clock)
    try:
        service.start()
        timer.proxy().advance(10).get(timeout=30)
        on_threads = [directory.is_up(directory.services("ticker")[0])]
        service.stop()  # the node goes down: no more heartbeats
        timer.proxy().advance(61).get(timeout=30)
        on_threads.append(directory.is_up(directory.services("ticker")[0]))
        service.start()  # and up again: the start order runs again
        timer.proxy().advance(10).get(timeout=30)
        on_threads.append(directory.is_up(directory.services("ticker")[0]))
    finally:
        service.stop()
        timer.stop()
        directory.close()
        db.dispose()
    with Simulation(seed=4) as sim:
        sim.service(Ticker, host="n1", topic="ticker")
        sim.advance(10)
        directory = sim.directory("client")
        seen = [directory.is_up(directory.services("ticker")[0])]
        sim.crash("n1")
        sim.advance(61)
        seen.append(directory.is_up(directory.services("ticker")[0]))
        sim.restart("n1")
        sim.advance(10)
        seen.append(directory.is_up(directory.services("ticker")[0]))
    assert seen == on_threads == [True, False, True]


@pytest.mark.parametrize("seed", range(12))
def test_the_demo_keeps_its_invariant_with_faults_on(seed: int) -> None:
    with Simulation(seed=seed, faults=True, database="sqlite://") as sim:
        check_invariant(run_demo(sim))


# -- remote proxies: transport's surface, real bridge vs simulated bridge -------------------------


class Held(Store):
    """A store whose `hold()` keeps its mailbox busy until the test opens the gate."""

    def __init__(self, gate: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._gate = gate

    def hold(self) -> str:
        self._gate.wait()
        return "held"


class _Event:
    """The real-thread gate: a `threading.Event` (bounded wait)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def wait(self) -> None:
        assert self._event.wait(10)

    def open(self) -> None:
        self._event.set()


class _SimGate:
    """The simulated gate: a future of the simulation that the test resolves."""

    def __init__(self, sim: Simulation) -> None:
        self._future = SimFuture(sim.scheduler)

    def wait(self) -> None:
        self._future.get()

    def open(self) -> None:
        self._future.set(None)


def _surface(conn: Any) -> list[Any]:
    """What a caller sees of a served `Held` through a remote proxy."""
    out: list[Any] = []
    proxy = conn.proxy("store")
    out.append(repr(proxy).split(" at ")[0])
    out.append([n for n in dir(proxy) if not n.startswith("_")])
    out.append(proxy.value.get(timeout=5))  # an attribute: read inside the mailbox
    proxy.value = 5  # set inside the mailbox; returns once set
    out.append(proxy.get().get(timeout=5))
    for name in ("nope", "init_host", "_hidden"):  # unknown, RPC_PRIVATE, private
        for use in (lambda m: m(), lambda m: m.defer()):
            out.append(_error_of(lambda name=name, use=use: use(getattr(proxy, name))))
    out.append(_error_of(lambda: setattr(proxy, "fresh", 1)))  # never adds attributes
    try:
        conn.proxy("nobody")
    except transport.UnknownActor as exc:
        out.append(("UnknownActor", isinstance(exc, pykka.ActorDeadError)))
    return out


def test_remote_proxies_agree_on_their_surface() -> None:
    ref = Held.start(host="h")
    try:
        with transport.Bridge("tcp://127.0.0.1:0") as bridge:
            bridge.expose("store", ref)
            with transport.connect(bridge.endpoint, timeout=5) as conn:
                real = _surface(conn)
    finally:
        ref.stop()
    with Simulation(seed=5) as sim:
        sim.expose("store", sim.start(Held, host="h2"))
        simulated = _surface(sim.connect("h2", timeout=5))
    assert simulated == real
    assert real[0] == "<RemoteProxy Held 'store'"
    assert real[2:4] == [0, 5]
    assert real[4:10] == ["NoSuchMethod"] * 4 + ["AttributeError"] * 2
    assert real[10:] == ["NoSuchMethod", ("UnknownActor", True)]


def _overloaded(conn: Any, gate: Any) -> list[Any]:
    """A full mailbox refuses calls (Overloaded) and drops casts, as the bridge's bound says."""
    proxy = conn.proxy("store")
    held = proxy.hold()  # the only bridge request its mailbox may hold (bound 1), until opened
    out: list[Any] = [_error_of(lambda: proxy.set(7).get(timeout=5))]
    proxy.set.defer(8)  # dropped: the mailbox is full
    # refused too, so the cast before it (same connection, in order) met a full mailbox
    out.append(_error_of(lambda: proxy.get().get(timeout=5)))
    gate.open()
    out.append(held.get(timeout=5))
    out.append(proxy.get().get(timeout=5))  # neither 7 nor 8 was applied
    return out


def _expired(conn: Any, gate: Any) -> list[Any]:
    """A call taken from the mailbox after its caller gave up is not run."""
    proxy = conn.proxy("store")
    held = proxy.hold()
    late = conn.proxy("store", timeout=0.2).set(7)
    out: list[Any] = [_error_of(late.get)]  # its 0.2 s deadline passes
    # and a later one's (0.3 s more), so the bridge's deadline of `late` (its TTL from
    # arrival) has certainly passed too before the gate opens
    out.append(_error_of(lambda: conn.proxy("store", timeout=0.3).get().get()))
    gate.open()
    out.append(held.get(timeout=5))
    out.append(proxy.get().get(timeout=5))  # neither ran
    return out


@pytest.mark.parametrize("scenario", [_overloaded, _expired])
def test_mailbox_bounds_and_deadlines_agree(scenario: Any) -> None:
    gate = _Event()
    ref = Held.start(host="h", gate=gate)
    try:
        with transport.Bridge("tcp://127.0.0.1:0") as bridge:
            bridge.expose("store", ref, mailbox_limit=1 if scenario is _overloaded else None)
            with transport.connect(bridge.endpoint, timeout=5) as conn:
                real = scenario(conn, gate)
    finally:
        ref.stop()
    with Simulation(seed=6) as sim:
        sim_gate = _SimGate(sim)
        sim.expose("store", sim.start(Held, host="h2", gate=sim_gate),
                   mailbox_limit=1 if scenario is _overloaded else None)  # fmt: skip
        simulated = scenario(sim.connect("h2", timeout=5), sim_gate)
    assert simulated == real
    expected = {
        _overloaded: ["Overloaded", "Overloaded", "held", 0],
        _expired: ["MessagingTimeout", "MessagingTimeout", "held", 0],
    }
    assert real == expected[scenario]
