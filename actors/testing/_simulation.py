"""`Simulation`: run unmodified managers under the deterministic scheduler.

Example:
    >>> from actors import Manager
    >>> from actors.testing import Simulation
    >>> class Counter(Manager):
    ...     def __init__(self, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.value = 0
    ...     def add(self, n):
    ...         self.value += n
    ...         return self.value
    >>> with Simulation(seed=1) as sim:
    ...     counter = sim.start(Counter, host="h1").proxy()
    ...     counter.add.defer(2)
    ...     counter.add(3).get()
    5
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pykka
from sqlalchemy import event

from actors._clock import ManualClock
from actors._dependencies import check_manager
from actors._discovery import RemotePublisher
from actors._manager import Manager
from actors._service import Service
from actors._timer import TimerActor
from actors.testing._choices import Chooser, RandomChooser, ReplayChooser, decode_token
from actors.testing._errors import SimulationError
from actors.testing._escapes import guard
from actors.testing._network import (
    Faults,
    InlineHeartbeats,
    SimConnection,
    SimDirectory,
    SimNetwork,
    service_of,
)
from actors.testing._scheduler import Scheduler, State

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import TracebackType

    from actors.db import Database
    from actors.testing._strategies import Schedule
    from actors.testing._trace import Trace

__all__ = ["Simulation"]

logger = logging.getLogger(__name__)

A = TypeVar("A", bound=pykka.Actor)


def _no_fsync(dbapi_connection: Any, _record: Any) -> None:
    """A simulation needs no durability: commits skip fsync (a real file all the same)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()


class _LazyDatabase:
    """The simulation's database, opened only when a manager first uses it."""

    def __init__(self, sim: Simulation) -> None:
        self._sim = sim

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sim.db, name)


class _Start:
    """A host's record of one `Simulation.start`, re-run when the host restarts."""

    def __init__(self, cls: type[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.cls = cls
        self.args = args
        self.kwargs = kwargs
        self.ref: pykka.ActorRef[Any] | None = None


class Simulation:
    """A deterministic run of actors: one scheduler, virtual time, simulated hosts.

    Give it exactly one source of decisions: a hypothesis `Schedule` (from
    `actors.testing.schedules()`), a `seed`, or a `replay` token printed by a
    failing run. With none, it runs in plain arrival order (seed 0).

    Args:
        schedule: decisions drawn by hypothesis (shrinks toward plain order).
        seed: decisions from a seeded random generator.
        replay: a replay token (``sim.trace.token``) to repeat a run exactly.
        faults: ``True`` for the default `Faults`, a `Faults`, or ``False``.
        start_time: the virtual clock's first reading.
        database: a SQLAlchemy URL for `db`, or ``None`` for a SQLite file in
            a temporary directory (made when first needed).
        max_wait: virtual seconds the test may wait before a wait counts as stuck.
        max_steps: the most steps a run may take before it fails (a livelock guard).
    """

    def __init__(
        self,
        schedule: Schedule | None = None,
        *,
        seed: int | None = None,
        replay: str | None = None,
        faults: bool | Faults | None = None,
        start_time: float = 0.0,
        database: str | None = None,
        max_wait: float = 24 * 3600.0,
        max_steps: int = 1_000_000,
    ) -> None:
        given = [x for x in (schedule, seed, replay) if x is not None]
        if len(given) > 1:
            msg = "give a Simulation one of schedule, seed or replay"
            raise ValueError(msg)
        chooser: Chooser
        if schedule is not None:
            chooser = schedule.chooser()
            if faults is None:
                faults = schedule.faults
        elif replay is not None:
            chooser = ReplayChooser(decode_token(replay))
        else:
            chooser = RandomChooser(seed or 0)
        if faults is True:
            faults = Faults()
        elif not faults:
            faults = Faults.none()
        assert isinstance(faults, Faults)
        self.faults = faults
        self.clock = ManualClock(start=start_time)
        self.scheduler = Scheduler(chooser, self.clock, stall_percent=faults.stall,
                                   max_wait=max_wait, max_steps=max_steps)  # fmt: skip
        self.network = SimNetwork(self.scheduler, faults)
        self.scheduler.network = self.network
        if faults.node:
            self.scheduler.node_faults = self._node_fault
        self.scheduler.service_died = self._service_died
        self._schedule = schedule
        self._database_url = database
        self._db: Database | None = None
        self._tmpdir: Path | None = None
        self._directories: dict[str, SimDirectory] = {}
        self._lazy_db = _LazyDatabase(self)
        self._rng = random.Random(0)
        self._closed = False
        self._guard = guard(self.scheduler)
        self._guard.__enter__()

    # -- the public surface ------------------------------------------------------------

    @property
    def trace(self) -> Trace:
        """Every step so far; ``str(sim.trace)`` reads it, ``sim.trace.token`` replays it."""
        return self.scheduler.trace

    @property
    def token(self) -> str:
        """The replay token of the run so far."""
        return self.scheduler.trace.token

    @property
    def now(self) -> float:
        """The virtual time."""
        return self.clock.monotonic()

    @property
    def db(self) -> Database:
        """The simulation's database (a real SQLite file unless a URL was given)."""
        if self._db is None:
            from actors.db import Database  # noqa: PLC0415

            url = self._database_url
            if url is None:
                self._tmpdir = Path(tempfile.mkdtemp(prefix="actors-sim-"))
                url = f"sqlite:///{self._tmpdir / 'sim.db'}"
            self._db = Database(url)
            if url.startswith("sqlite") and url not in ("sqlite://", "sqlite:///:memory:"):
                event.listen(self._db.engine, "connect", _no_fsync)
                self._db.engine.dispose()  # the next connection gets the pragma
        return self._db

    def start(
        self, actor_class: type[A], *args: Any, host: str = "local", **kwargs: Any
    ) -> pykka.ActorRef[A]:
        """Start `actor_class` on `host` under the simulation; return its ordinary `ActorRef`.

        A `Manager` gets what a node gives it, unless `kwargs` replace it: the
        simulation's clock and database, and exactly the dependencies its class
        declares in ``DEPENDENCIES`` (a `Directory` and a `RemotePublisher` over
        the simulated bridge, ``service_down_time`` 60, ``report_interval`` 10,
        ``rpc_timeout`` 60); its periodic tasks are ticked by the host's timer on
        virtual time. Other `kwargs` go to its constructor, as with
        ``cls.start(**kwargs)``.

        Raises:
            actors.ConfigError: it declares a dependency no node provides.
        """
        record = _Start(actor_class, args, dict(kwargs))
        self.network.host(host).starts.append(record)  # type: ignore[union-attr]
        return self._start(record, host)

    def _start(self, record: _Start, host: str) -> pykka.ActorRef[Any]:
        cls = record.cls
        kwargs = dict(record.kwargs)
        is_manager = issubclass(cls, Manager)
        if is_manager:
            kwargs.setdefault("host", host)
            kwargs.setdefault("clock", self.clock)
            kwargs.setdefault("periodic_jitter", self._rng.random)
            kwargs.setdefault("db", self._lazy_db)  # never the process's default database
            check_manager(cls, {}, f"{host}: ")
            kwargs.update(self._dependencies(cls, host, given=kwargs))
        ref = self._construct(cls, host, record.args, kwargs)
        record.ref = ref
        if is_manager:
            proc = self.scheduler.proc_of(ref)
            if proc is not None and getattr(proc.actor, "periodic_spacing", None):
                timer = self._timer(host).actor_inbox.proc.actor  # type: ignore[attr-defined]
                timer.register(ref, initial_delay=0.0)
        return ref

    def _dependencies(
        self,
        cls: type[Manager],
        host: str,
        *,
        given: Mapping[str, Any],
        service_down_time: float = 60.0,
        report_interval: float | None = 10.0,
        rpc_timeout: float = 60.0,
    ) -> dict[str, Any]:
        """The dependencies `cls` declares and `given` lacks, built as a node builds them."""

        def directory() -> SimDirectory:
            return self.directory(host, service_down_time=service_down_time, timeout=rpc_timeout)

        factories: dict[str, Callable[[], Any]] = {
            "directory": directory,
            "publisher": lambda: RemotePublisher(directory()),
            "service_down_time": lambda: service_down_time,
            "report_interval": lambda: report_interval,
            "rpc_timeout": lambda: rpc_timeout,
        }
        return {
            name: factories[name]() for name in cls.declared_dependencies() if name not in given
        }

    def _construct(
        self, cls: type[Any], host: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> pykka.ActorRef[Any]:
        sched = self.scheduler
        sim_cls = sched.simulated(cls)
        before = sched.host_context
        sched.host_context = host
        sched.constructing += 1
        try:
            ref: pykka.ActorRef[Any] = sim_cls.start(*args, **kwargs)
        finally:
            sched.constructing -= 1
            sched.host_context = before
        if sched.escape is not None:
            raise sched.escape
        return ref

    def _timer(self, host: str) -> pykka.ActorRef[Any]:
        node = self.network.host(host)
        if node.timer is None or not node.timer.is_alive():
            node.timer = self._construct(
                TimerActor, host, (), {"clock": self.clock, "rng": random.Random(0)}
            )
        return node.timer

    def service(
        self,
        manager_class: type[Manager],
        *,
        host: str,
        report_interval: float | None = 10.0,
        service_down_time: float = 60.0,
        periodic_fuzzy_delay: float = 0.0,
        rpc_timeout: float = 60.0,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Service:
        """Run `manager_class` as a `Service` on `host`: services row, start order, heartbeats.

        As a node runs it: the service uses the simulation's database, clock,
        host timer and simulated bridge; the manager gets exactly the
        dependencies its class declares (see `start`, built with this service's
        `service_down_time`, `report_interval` and `rpc_timeout`) and the
        `options` of a ``[[services]]`` table, which its class must declare in
        ``OPTIONS``. ``manager_kwargs`` may replace any of them (a test double).
        Other keyword arguments go to `Service` (e.g. ``topic``, ``cluster``).

        Raises:
            actors.ConfigError: an option the class does not declare, or a
                dependency no node provides (the node's one-line message).
        """
        options = dict(options or {})
        check_manager(manager_class, options, f"{host}: ")
        given = dict(kwargs.pop("manager_kwargs", None) or {})
        kwargs["manager_kwargs"] = {
            **self._dependencies(
                manager_class, host, given=given, service_down_time=service_down_time,
                report_interval=report_interval, rpc_timeout=rpc_timeout,
            ),
            **options,
            **given,
        }  # fmt: skip
        kwargs.setdefault("call_timeout", rpc_timeout)
        node = self.network.host(host)
        svc = Service(
            self.scheduler.simulated(manager_class),
            host=host,
            db=self.db,
            timer=self._timer(host),
            bridge=node.bridge,  # type: ignore[arg-type]
            report_interval=report_interval,
            service_down_time=service_down_time,
            periodic_fuzzy_delay=periodic_fuzzy_delay,
            clock=self.clock,
            heartbeat_writer=kwargs.pop("heartbeat_writer", InlineHeartbeats),
            **kwargs,
        )
        svc._rng = random.Random(0)
        node.starts.append(svc)  # type: ignore[union-attr]
        self._start_service(svc, host)
        return svc

    def _start_service(self, svc: Service, host: str) -> None:
        sched = self.scheduler
        before = sched.host_context
        sched.host_context = host
        self.network.restarting = True  # no node fault in the middle of a start order
        try:
            svc.timer = self._timer(host)
            svc.start()
        finally:
            sched.host_context = before
            self.network.restarting = False

    def directory(
        self, host: str = "test", *, service_down_time: float = 60.0, timeout: float = 60.0,
        **kwargs: Any,
    ) -> SimDirectory:  # fmt: skip
        """A `Directory` for code on `host`: the services table, proxies on the simulated bridge."""
        key = f"{host}:{service_down_time}:{timeout}"
        directory = self._directories.get(key)
        if directory is None:
            directory = self._directories[key] = SimDirectory(
                self.network, host, self.db, service_down_time=service_down_time, clock=self.clock,
                timeout=timeout, **kwargs,
            )  # fmt: skip
        return directory

    def expose(
        self, name: str, ref: pykka.ActorRef[Any], *, mailbox_limit: int | None = None
    ) -> None:
        """Serve `ref` as `name` on its host's simulated bridge (like `transport.Bridge.expose`).

        `mailbox_limit` bounds the requests from the bridge its mailbox holds;
        past it calls get `transport.Overloaded` and casts are dropped.
        """
        proc = self.scheduler.proc_of(ref)
        if proc is None:
            msg = f"{ref} is not an actor of this simulation"
            raise SimulationError(msg)
        self.network.host(proc.host).bridge.expose(name, ref, mailbox_limit=mailbox_limit)

    def connect(
        self,
        host: str,
        *,
        origin: str = "test",
        timeout: float = 60.0,
        allowed_exception_modules: tuple[str, ...] = (),
    ) -> SimConnection:
        """A connection to `host`'s simulated bridge (like `transport.connect`), from `origin`."""
        return SimConnection(
            self.network, f"sim://{host}", timeout, frozenset(allowed_exception_modules), origin
        )

    def actors(self, host: str | None = None) -> list[pykka.ActorRef[Any]]:
        """The refs of the running simulated actors (on `host`), in start order."""
        return [
            p.ref
            for p in self.scheduler.procs()
            if p.state is not State.STOPPED and (host is None or p.host == host) and not p.is_timer
        ]

    def run(self) -> None:
        """Run until nothing is pending (messages, handlers, packets), jumping time as needed.

        Periodic ticks alone do not keep it running; use `advance` for them.

        Raises:
            Deadlock: handlers wait in a cycle, or for something that never comes.
        """
        self._check_open()
        self.scheduler.drive(lambda: not self.scheduler.busy(), None, what="pending work")

    def advance(self, seconds: float) -> None:
        """Run for `seconds` of virtual time: ticks, heartbeats and timeouts included."""
        self._check_open()
        target = self.now + seconds
        self.scheduler.drive(lambda: False, target)
        while self.scheduler.step():
            pass

    def run_until(self, predicate: Callable[[], bool], *, timeout: float) -> bool:
        """Run until `predicate()` holds or `timeout` virtual seconds passed; return which."""
        self._check_open()
        return self.scheduler.drive(predicate, self.now + timeout)

    def partition(self, *groups: str | list[str] | tuple[str, ...]) -> None:
        """Cut the network between groups of hosts: ``sim.partition("h1", "h2")``."""
        sets = [[g] if isinstance(g, str) else list(g) for g in groups]
        cut = self.network.partition(sets)
        self.trace.add(self.now, "FAULT", f"partition {', '.join(cut)} (forced)")

    def heal(self) -> None:
        """Remove every partition."""
        self.network.heal()
        self.trace.add(self.now, "FAULT", "heal (forced)")

    def crash(self, host: str) -> None:
        """Crash `host`: its actors stop at once, their queued messages are lost."""
        self._crash(host, "forced")

    def restart(self, host: str) -> None:
        """Restart a crashed `host`: its start order (actors, services) runs again."""
        self._restart(host, "forced")

    def close(self) -> None:
        """Stop every simulated actor and release the database; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.scheduler.close()
            for directory in self._directories.values():
                directory.close()
            if self._db is not None:
                self._db.dispose()
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
        finally:
            self._guard.__exit__(None, None, None)
            if self._schedule is not None:
                self._schedule.finished(self)

    def __enter__(self) -> Simulation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Under hypothesis, the schedule notes the reported example's trace itself.
        if exc is not None and self._schedule is None and not isinstance(exc, KeyboardInterrupt):
            with contextlib.suppress(Exception):
                exc.add_note(self.trace.report())
        self.close()

    def failure_report(self) -> str:
        """The trace and replay token, for a message."""
        return self.trace.report()

    # -- faults --------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            msg = "this simulation is closed"
            raise SimulationError(msg)

    def _crash(self, host: str, why: str) -> None:
        node = self.network.host(host)
        if not node.up:
            return
        node.up = False
        self.trace.add(self.now, "FAULT", f"crash {host} ({why})")
        for proc in self.scheduler.procs():
            if proc.host == host:
                self.scheduler.kill(proc)
        for name in list(node.bridge.actors):
            node.bridge.unexpose(name)
        node.timer = None

    def _restart(self, host: str, why: str) -> None:
        node = self.network.host(host)
        if node.up:
            return
        node.up = True
        self.trace.add(self.now, "FAULT", f"restart {host} ({why})")
        for record in list(node.starts or ()):
            svc = service_of(record)
            if svc is not None:
                self._start_service(svc, host)
            else:
                self._start(record, host)

    def _service_died(self, svc: Service, proc: Any, delay: float | None = None) -> None:
        """A service's manager died: restart it after the service's back-off, as it would."""
        first, longest = svc.restart_backoff
        wait = first if delay is None else delay
        self.trace.add(self.now, proc.name, f"died; {svc} restarts it in {wait:g} s")

        def restart() -> None:
            if not self.network.host(svc.host).up or svc.manager_ref is not proc.ref:
                return  # the host crashed meanwhile (its restart re-runs the start order)
            try:
                self._start_service_manager(svc)
            except Exception:
                logger.exception("%s: restart failed; next try in %ss", svc, wait)
                self._service_died(svc, proc, min(max(wait * 2, 0.1), longest))
                return
            svc.restarts += 1

        self.scheduler.later(self.now + wait, f"{svc} restarts its manager", restart)

    def _start_service_manager(self, svc: Service) -> None:
        sched = self.scheduler
        before = sched.host_context
        sched.host_context = svc.host
        self.network.restarting = True
        try:
            svc._start_manager()
        finally:
            sched.host_context = before
            self.network.restarting = False

    def _node_fault(self) -> bool:
        net = self.network
        faults = self.faults
        if net.restarting or net.node_faults >= faults.max_node_faults or len(net.hosts) < 2:
            return False
        chooser = self.scheduler.chooser
        if not chooser.fault(faults.node):
            return False
        net.node_faults += 1
        hosts = sorted(net.hosts)
        down = [h for h in hosts if not net.hosts[h].up]
        action = chooser.choose(4 if faults.crashes else 2)
        if action == 0 and len(hosts) >= 2:
            a = hosts[chooser.choose(len(hosts))]
            others = [h for h in hosts if h != a]
            b = others[chooser.choose(len(others))] if len(others) > 1 else others[0]
            cut = net.partition([[a], [b]])
            self.trace.add(self.now, "FAULT", f"partition {', '.join(cut)}")
        elif action == 1:
            net.heal()
            self.trace.add(self.now, "FAULT", "heal")
        elif action == 2:
            up = net.crashable()
            if not up:
                return False
            self._crash(up[chooser.choose(len(up))] if len(up) > 1 else up[0], "chosen")
        else:
            if not down:
                return False
            self._restart(down[chooser.choose(len(down))] if len(down) > 1 else down[0], "chosen")
        return True
