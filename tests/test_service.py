"""Service: start order, heartbeat rules, cluster bookkeeping, drain on stop, restarts."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import transport
from actors import Manager, ManualClock, Service, TimerActor
from actors.db import Database, ServiceRecord


class Journal(Manager):
    TOPIC = "journal"
    RPC_API_VERSION = "1.4"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events: list[Any] = []
        self.working = True
        self.gate: threading.Event | None = None

    def init_host(
        self, service_id: int | None = None, added_to_cluster: bool | None = None
    ) -> None:
        with self.db.session() as session:
            row = session.get(ServiceRecord, service_id)
        self.events.append(("init_host", service_id, added_to_cluster, row is not None))
        if self.gate is not None:
            assert self.gate.wait(timeout=30)

    def init_host_with_rpc(self) -> None:
        self.events.append(("init_host_with_rpc",))

    def is_working(self) -> bool:
        return self.working

    def set_working(self, working: bool) -> None:
        self.working = working

    def note(self, value: Any) -> int:
        self.events.append(("note", value))
        return len(self.events)

    def slow_note(self, value: Any, release: threading.Event) -> None:
        assert release.wait(timeout=30)
        self.events.append(("note", value))

    def history(self) -> list[Any]:
        return list(self.events)

    def explode(self) -> None:
        raise SystemExit("manager down")


@pytest.fixture
def db(tmp_path: Path) -> Any:
    database = Database(f"sqlite:///{tmp_path / 'services.sqlite3'}")
    yield database
    database.dispose()


@pytest.fixture
def bridge() -> Any:
    bridge = transport.Bridge("tcp://127.0.0.1:*")
    bridge.start()
    yield bridge
    bridge.stop()


@pytest.fixture
def timer(clock: ManualClock) -> Any:
    return TimerActor.start(clock=clock)


def make_service(
    db: Database, timer: Any, clock: ManualClock, bridge: Any = None, **kw: Any
) -> Service:
    kw.setdefault("report_interval", 10)
    kw.setdefault("periodic_fuzzy_delay", 0)
    kw.setdefault("heartbeat_wait", 30)  # these tests read the row right after a beat
    host = kw.pop("host", "node-1")
    return Service(Journal, host=host, db=db, timer=timer, bridge=bridge, clock=clock, **kw)


def row_of(db: Database, service: Service) -> ServiceRecord:
    with db.session() as session:
        row = session.get(ServiceRecord, service.service_id)
    assert row is not None
    return row


def disconnected(service: Service) -> bool:
    return service.model_disconnected


def test_start_order_and_no_remote_message_before_init_host(
    db: Database, timer: Any, clock: ManualClock, bridge: Any
) -> None:
    gate = threading.Event()
    service = make_service(db, timer, clock, bridge, manager_kwargs={})
    starter_error: list[BaseException] = []

    original = Journal.__init__

    def gated_init(self: Journal, **kwargs: Any) -> None:
        original(self, **kwargs)
        self.gate = gate

    Journal.__init__ = gated_init  # type: ignore[method-assign]
    try:
        def run() -> None:
            try:
                service.start()
            except BaseException as exc:  # pragma: no cover - reported below
                starter_error.append(exc)

        starter = threading.Thread(target=run)
        starter.start()
        conn = transport.connect(bridge.endpoint, timeout=5)
        # init_host is running (held by the gate): the bridge does not know the manager yet
        with pytest.raises(transport.UnknownActor):
            conn.proxy("journal.node-1").note("too early").get(timeout=5)
        gate.set()
        starter.join(timeout=30)
        assert not starter.is_alive()
        assert starter_error == []
        assert conn.proxy("journal.node-1").note("in time").get(timeout=5) == 3
        history = service.proxy.history().get(timeout=5)
        assert history == [
            ("init_host", service.service_id, False, True),  # the row existed already
            ("init_host_with_rpc",),
            ("note", "in time"),
        ]
        conn.close()
    finally:
        Journal.__init__ = original  # type: ignore[method-assign]
        service.stop()


def test_registration_row(db: Database, timer: Any, clock: ManualClock, bridge: Any) -> None:
    service = make_service(db, timer, clock, bridge)
    service.start()
    row = row_of(db, service)
    assert (row.host, row.binary, row.topic) == ("node-1", "actors-journal", "journal")
    assert row.endpoint == bridge.endpoint
    assert row.rpc_version == "1.4"
    assert row.report_count == 0  # no periodic heartbeat yet...
    assert row.updated_at == clock.utcnow()  # ...but marked up when start returned
    assert row.stopped_at is None
    assert row.down_time == service.service_down_time  # its liveness rule, for every reader
    service.stop()


def test_added_to_cluster_as_cinder_computes_it(
    db: Database, timer: Any, clock: ManualClock
) -> None:
    def start(cluster: str | None) -> bool | None:
        service = make_service(db, timer, clock, cluster=cluster)
        service.start()
        history = service.proxy.history().get(timeout=5)
        service.stop()
        assert history[0][2] == service.added_to_cluster
        return service.added_to_cluster

    assert start(None) is False  # new row, no cluster
    assert start("c1") is True  # existing row without a cluster, now clustered
    assert start("c1") is False  # already in the cluster
    with db.begin() as session:
        for row in session.scalars(select(ServiceRecord)):
            session.delete(row)
    assert start("c2") is True  # a new row in a cluster


def test_heartbeat_when_working(db: Database, timer: Any, clock: ManualClock) -> None:
    service = make_service(db, timer, clock)
    service.start()
    proxy = timer.proxy()
    proxy.advance(9.5).get(timeout=10)
    assert row_of(db, service).report_count == 0  # first beat at report_interval
    proxy.advance(0.5).get(timeout=10)
    row = row_of(db, service)
    assert row.report_count == 1
    assert row.updated_at == clock.utcnow()
    proxy.advance(30).get(timeout=10)
    row = row_of(db, service)
    assert row.report_count == 4  # exactly one per interval
    assert row.updated_at == clock.utcnow()
    service.stop()


def test_no_heartbeat_when_not_working(
    db: Database, timer: Any, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    service = make_service(db, timer, clock)
    service.start()
    timer.proxy().advance(10).get(timeout=10)
    before = row_of(db, service)
    service.proxy.set_working(False).get(timeout=5)
    timer.proxy().advance(50).get(timeout=10)
    after = row_of(db, service)
    assert (after.report_count, after.updated_at) == (before.report_count, before.updated_at)
    assert "not sending heartbeat" in caplog.text
    service.proxy.set_working(True).get(timeout=5)
    timer.proxy().advance(10).get(timeout=10)
    assert row_of(db, service).report_count == before.report_count + 1
    service.stop()


def test_failing_database_is_flagged_and_recovered(
    db: Database, timer: Any, clock: ManualClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    service = make_service(db, timer, clock)
    service.start()

    def beat() -> None:  # during an outage the mailbox does not wait for the write
        timer.proxy().advance(10).get(timeout=10)
        assert service.wait_for_heartbeat_write(timeout=30)

    beat()
    other = sqlite3.connect(tmp_path / "services.sqlite3")
    other.execute("ALTER TABLE services RENAME TO services_away")  # a real failure
    other.commit()
    beat()
    assert disconnected(service) is True
    assert "model server went away" in caplog.text
    beat()  # still failing: logged once
    assert caplog.text.count("model server went away") == 1
    other.execute("ALTER TABLE services_away RENAME TO services")
    other.commit()
    other.close()
    beat()
    assert disconnected(service) is False
    assert "Recovered model server connection!" in caplog.text
    assert row_of(db, service).report_count == 2
    assert service.proxy.actor_ref.is_alive()
    service.stop()


def test_deleted_row_is_recreated(db: Database, timer: Any, clock: ManualClock) -> None:
    service = make_service(db, timer, clock)
    service.start()
    old_id = service.service_id
    with db.begin() as session:
        session.delete(session.get(ServiceRecord, old_id))
    timer.proxy().advance(10).get(timeout=10)
    row = row_of(db, service)
    assert (row.host, row.topic, row.report_count) == ("node-1", "journal", 1)
    service.stop()


def test_service_down_time_is_corrected(db: Database, timer: Any, clock: ManualClock) -> None:
    service = make_service(db, timer, clock, report_interval=10, service_down_time=10)
    assert service.service_down_time == 25
    fine = make_service(db, timer, clock, report_interval=10, service_down_time=60)
    assert fine.service_down_time == 60


def test_stop_drains_the_mailbox_then_refuses(
    db: Database, timer: Any, clock: ManualClock, bridge: Any
) -> None:
    service = make_service(db, timer, clock, bridge)
    service.start()
    release = threading.Event()
    proxy = service.proxy
    proxy.slow_note.defer("first", release)
    for i in range(20):
        proxy.note.defer(i)
    stopper = threading.Thread(target=service.stop)
    stopper.start()
    conn = transport.connect(bridge.endpoint, timeout=5)
    with pytest.raises(transport.UnknownActor):  # no longer taking messages
        conn.proxy("journal.node-1").note("late").get(timeout=5)
    release.set()
    stopper.join(timeout=30)
    assert not stopper.is_alive()
    assert service.manager_ref is not None
    assert not service.manager_ref.is_alive()
    assert timer.proxy().registered().get(timeout=5) == 0
    conn.close()


def test_dead_manager_is_restarted(
    db: Database, timer: Any, clock: ManualClock, bridge: Any, caplog: pytest.LogCaptureFixture
) -> None:
    service = make_service(db, timer, clock, bridge, restart_backoff=(0.01, 0.05))
    service.start()
    first = service.manager_ref
    conn = transport.connect(bridge.endpoint, timeout=5)
    remote = conn.proxy("journal.node-1")
    assert remote.note("before").get(timeout=5) == 3
    with pytest.raises(transport.RemoteError, match="SystemExit"):
        remote.explode().get(timeout=5)
    assert service.wait_for_restart(1, timeout=10)
    assert service.manager_ref is not first
    assert remote.note("after").get(timeout=5) == 3  # a fresh manager behind the same name
    assert "manager died" in caplog.text
    timer.proxy().advance(10).get(timeout=10)
    assert row_of(db, service).report_count == 1  # the fresh one heartbeats
    conn.close()
    service.stop()


def test_service_forwards_unknown_names_to_its_manager(
    db: Database, timer: Any, clock: ManualClock
) -> None:
    service = make_service(db, timer, clock)
    service.start()
    assert service.note("via the service").get(timeout=5) == 3
    assert service.topic == "journal"  # its own attributes win
    service.stop()


def test_heartbeat_timestamps_follow_the_clock(
    db: Database, timer: Any, clock: ManualClock
) -> None:
    service = make_service(db, timer, clock, report_interval=5)
    service.start()
    start = clock.utcnow()
    timer.proxy().advance(5).get(timeout=10)
    assert row_of(db, service).updated_at == start + dt.timedelta(seconds=5)
    service.stop()


def test_stop_during_a_restart_leaves_no_manager_behind(
    db: Database, timer: Any, clock: ManualClock, bridge: Any
) -> None:
    """stop() while the restarted manager is in init_host: nothing stays exposed or ticked."""
    gate = threading.Event()
    in_init_host = threading.Event()
    starts: list[Journal] = []
    original = Journal.__init__

    def gated_on_restart(self: Journal, **kwargs: Any) -> None:
        original(self, **kwargs)
        starts.append(self)
        if len(starts) > 1:  # the restarted one holds in init_host until the test lets go
            self.gate = gate
            in_init_host.set()

    service = make_service(db, timer, clock, bridge, restart_backoff=(0.01, 0.05))
    Journal.__init__ = gated_on_restart  # type: ignore[method-assign]
    try:
        service.start()
        first = service.manager_ref
        assert first is not None
        service.proxy.explode.defer()  # a BaseException: the manager dies, a restart begins
        assert in_init_host.wait(timeout=10)
        stopper = threading.Thread(target=service.stop, kwargs={"timeout": 20})
        stopper.start()
        stopper.join(timeout=0.2)  # stop() may wait for the restart, or (the bug) return
        gate.set()
        stopper.join(timeout=30)
        assert not stopper.is_alive()
        restarter = [t for t in threading.enumerate() if t.name == "restart-journal.node-1"]
        for thread in restarter:
            thread.join(timeout=30)
            assert not thread.is_alive()
    finally:
        gate.set()
        Journal.__init__ = original  # type: ignore[method-assign]
    second = service.manager_ref
    assert second is not None
    assert second is not first
    assert not second.is_alive()
    conn = transport.connect(bridge.endpoint, timeout=5)
    with pytest.raises(transport.UnknownActor):
        conn.proxy("journal.node-1").note("after stop").get(timeout=5)
    conn.close()
    assert timer.proxy().registered().get(timeout=5) == 0


def test_stop_ends_the_heartbeat_thread(db: Database, timer: Any, clock: ManualClock) -> None:
    service = make_service(db, timer, clock)
    service.start()
    timer.proxy().advance(10).get(timeout=10)
    assert row_of(db, service).report_count == 1
    assert any(t.name == "heartbeat-journal.node-1" for t in threading.enumerate())
    service.stop()
    assert not any(t.name == "heartbeat-journal.node-1" for t in threading.enumerate())
