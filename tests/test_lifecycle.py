"""A clean lifecycle: ready means discoverable, a stop is seen at once, each node's own rule.

In process, with real sockets and a real SQLite file; `tests/test_two_nodes.py` does the
same with real node processes.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

import transport
from actors import (
    Directory,
    Manager,
    ManualClock,
    Node,
    NodeConfig,
    SchedulerDependentManager,
    Service,
    ServiceUnavailable,
    TimerActor,
)
from actors._config import ServiceSpec
from actors._service import ServiceStartError
from actors.db import Database, ServiceRecord


class Greeter(Manager):
    TOPIC = "greeter"

    def hello(self) -> str:
        return f"hello from {self.host}"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'life.sqlite3'}")
    yield database
    database.dispose()


@pytest.fixture
def parts(db: Database, clock: ManualClock) -> Iterator[dict[str, Any]]:
    bridge = transport.Bridge("tcp://127.0.0.1:*")
    bridge.start()
    timer = TimerActor.start(clock=clock)
    directory = Directory(db, service_down_time=60, clock=clock, timeout=5)
    yield {"bridge": bridge, "timer": timer, "directory": directory}
    directory.close()
    bridge.stop()


def greeter_service(db: Database, clock: ManualClock, parts: dict[str, Any], **kw: Any) -> Service:
    return Service(Greeter, host="node-1", db=db, timer=parts["timer"], bridge=parts["bridge"],
                   clock=clock, report_interval=10, service_down_time=30,
                   periodic_fuzzy_delay=0, **kw)


def row(db: Database) -> ServiceRecord | None:
    with db.session() as session:
        return session.scalars(select(ServiceRecord)).one_or_none()


def test_a_started_service_is_discoverable_when_start_returns(
    db: Database, clock: ManualClock, parts: dict[str, Any]
) -> None:
    service = greeter_service(db, clock, parts)
    service.start()
    directory = parts["directory"]
    assert directory.proxy("greeter", "node-1").hello().get(timeout=5) == "hello from node-1"
    service.stop()
    # a restart long after: the old heartbeat has aged out, yet start() returning means up
    clock.advance(3600)
    service.start()
    assert directory.proxy("greeter", "node-1").hello().get(timeout=5) == "hello from node-1"
    service.stop()


def test_a_registered_but_not_ready_row_is_down(
    db: Database, clock: ManualClock, parts: dict[str, Any]
) -> None:
    service = greeter_service(db, clock, parts)
    service.start()
    service.stop()
    service.service_id, _ = service._register()  # the first step of a restart
    registered = row(db)
    assert registered is not None
    registered.updated_at = clock.utcnow()  # even with a fresh heartbeat...
    assert not parts["directory"].is_up(registered)  # ...it is down until ready


def test_a_stopped_service_is_unavailable_at_once(
    db: Database, clock: ManualClock, parts: dict[str, Any]
) -> None:
    service = greeter_service(db, clock, parts)
    service.start()
    directory = parts["directory"]
    assert directory.proxy("greeter", "node-1").hello().get(timeout=5)
    service.stop()
    stopped = row(db)
    assert stopped is not None
    assert stopped.stopped_at == clock.utcnow()
    # no clock advance: its heartbeat is fresh, but it said it stopped
    with pytest.raises(ServiceUnavailable) as caught:
        directory.proxy("greeter", "node-1")
    assert str(caught.value) == (
        "no 'greeter' service is up on 'node-1' "
        f"(stopped at {clock.utcnow().isoformat(timespec='seconds')})"
    )
    with pytest.raises(ServiceUnavailable):
        directory.proxy("greeter")


def test_on_stop_remove_deletes_the_row(
    db: Database, clock: ManualClock, parts: dict[str, Any]
) -> None:
    service = greeter_service(db, clock, parts, on_stop="remove")
    service.start()
    assert row(db) is not None
    service.stop()
    assert row(db) is None
    with pytest.raises(ValueError, match="on_stop = 'delete'"):
        greeter_service(db, clock, parts, on_stop="delete")


def test_each_row_is_judged_by_its_own_nodes_rule(db: Database, clock: ManualClock) -> None:
    now = clock.utcnow()
    with db.begin() as session:
        # a node configured with a 6 s down time, silent for 10 s: down for everyone
        session.add(ServiceRecord(host="quick", binary="actors-kv", topic="kv", down_time=6,
                                  endpoint="tcp://127.0.0.1:9",
                                  updated_at=now - dt.timedelta(seconds=10)))
        # a node with a 120 s rule, silent for 90 s: still up, even for a 60 s reader
        session.add(ServiceRecord(host="patient", binary="actors-kv", topic="kv", down_time=120,
                                  endpoint="tcp://127.0.0.1:9",
                                  updated_at=now - dt.timedelta(seconds=90)))
        # an old row without a rule of its own: the reader's default applies
        session.add(ServiceRecord(host="legacy", binary="actors-kv", topic="kv",
                                  endpoint="tcp://127.0.0.1:9",
                                  updated_at=now - dt.timedelta(seconds=30)))
    directory = Directory(db, service_down_time=60, clock=clock)
    assert [r.host for r in directory.services("kv", up_only=True)] == ["legacy", "patient"]
    strict = Directory(db, service_down_time=20, clock=clock)
    assert [r.host for r in strict.services("kv", up_only=True)] == ["patient"]


def test_old_tables_get_the_new_columns(tmp_path: Path) -> None:
    import sqlite3  # noqa: PLC0415

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:  # the services table as the first release made it
        conn.execute(
            "CREATE TABLE services (id INTEGER PRIMARY KEY, host VARCHAR(255), "
            "binary VARCHAR(255), topic VARCHAR(255), cluster VARCHAR(255), "
            "endpoint VARCHAR(1024), rpc_version VARCHAR(32), report_count INTEGER, "
            "disabled BOOLEAN, created_at DATETIME, updated_at DATETIME)"
        )
        conn.execute("INSERT INTO services (host, binary, topic, report_count, disabled) "
                     "VALUES ('old', 'actors-kv', 'kv', 3, 0)")
    conn.close()
    db = Database(f"sqlite:///{path}")
    with db.session() as session:
        old = session.scalars(select(ServiceRecord)).one()
    assert (old.host, old.report_count, old.down_time, old.stopped_at) == ("old", 3, None, None)
    db.dispose()


def test_scheduler_dependent_manager_reports_under_its_topic() -> None:
    class Backup(SchedulerDependentManager):
        TOPIC = "backup"

    manager = Backup.start(host="h", publisher=object()).proxy()
    assert manager.service_name.get(timeout=5) == "backup"  # it said "undefined" before
    assert Backup.declared_dependencies() == ("publisher",)


def test_a_manager_refuses_unknown_keywords() -> None:
    with pytest.raises(TypeError, match="compact_evry"):
        Greeter.start(host="h", compact_evry=5)  # swallowed silently before


# -- the node gives each manager exactly what it declares -------------------------------------


class Seen(Manager):
    TOPIC = "seen"
    DEPENDENCIES: ClassVar[tuple[str, ...]] = ("rpc_timeout",)
    received: ClassVar[dict[str, Any]] = {}

    def __init__(self, **kwargs: Any) -> None:
        type(self).received = dict(kwargs)
        kwargs.pop("rpc_timeout")
        super().__init__(**kwargs)


class SeenMore(Seen):
    TOPIC = "seen-more"
    DEPENDENCIES: ClassVar[tuple[str, ...]] = ("directory", "publisher")
    OPTIONS: ClassVar[tuple[str, ...]] = ("colour",)
    extra: ClassVar[dict[str, Any]] = {}

    def __init__(self, *, directory: Directory, publisher: Any, colour: str, **kwargs: Any):
        type(self).extra = {"directory": directory, "publisher": publisher, "colour": colour}
        super().__init__(**kwargs)


class Explicit(Manager):
    """A constructor that does not take the node's context (no **kwargs)."""

    TOPIC = "explicit"

    def __init__(self, host: str | None = None) -> None:
        super().__init__(host=host)


def node_config(tmp_path: Path, *specs: ServiceSpec) -> NodeConfig:
    return NodeConfig(host="n1", database_url=f"sqlite:///{tmp_path / 'node.sqlite3'}",
                      periodic_fuzzy_delay=0, rpc_timeout=7, services=specs)


def test_the_node_provides_exactly_the_declared_dependencies(tmp_path: Path) -> None:
    node = Node(node_config(tmp_path, ServiceSpec("tests.test_lifecycle:Seen"),
                            ServiceSpec("tests.test_lifecycle:SeenMore",
                                        options={"colour": "red"})))
    node.start()
    try:
        context = {"host", "cluster", "db", "clock", "supervisor"}
        assert Seen.received["rpc_timeout"] == 7.0
        assert set(Seen.received) == {*context, "rpc_timeout"}  # nothing it did not declare
        # bases' declarations add up: SeenMore gets Seen's rpc_timeout and its own three
        assert set(SeenMore.received) == {*context, "rpc_timeout"}
        assert SeenMore.extra["directory"] is node.directory
        assert type(SeenMore.extra["publisher"]).__name__ == "RemotePublisher"
        assert SeenMore.extra["colour"] == "red"
    finally:
        node.stop()


def test_a_constructor_without_the_context_fails_in_one_clear_line(tmp_path: Path) -> None:
    node = Node(node_config(tmp_path, ServiceSpec("tests.test_lifecycle:Explicit")))
    with pytest.raises(ServiceStartError) as caught:
        node.start()
    node.stop()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "services[0]: tests.test_lifecycle:Explicit refused its constructor arguments"
    )
    assert "unexpected keyword argument" in message
    assert "must take **kwargs and pass them to super().__init__()" in message


class Fussy(Manager):
    TOPIC = "fussy"
    OPTIONS: ClassVar[tuple[str, ...]] = ("size",)

    def __init__(self, *, size: int = 1, **kwargs: Any) -> None:
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}\n(a second line)")
        super().__init__(**kwargs)


def test_a_constructor_refusing_an_option_value_fails_in_one_line(tmp_path: Path) -> None:
    node = Node(node_config(tmp_path, ServiceSpec("tests.test_lifecycle:Greeter"),
                            ServiceSpec("tests.test_lifecycle:Fussy", options={"size": -1})))
    with pytest.raises(ServiceStartError) as caught:
        node.start()
    assert str(caught.value) == (
        "services[1]: tests.test_lifecycle:Fussy's constructor failed: "
        "ValueError: size must be positive, got -1"
    )
    assert [s.topic for s in node.services] == ["greeter"]  # the first one had started...
    node.stop()  # ...and is stopped, marked down
    db = Database(node.config.database_url)
    with db.session() as session:
        rows = session.scalars(select(ServiceRecord)).all()
    db.dispose()
    assert [(r.topic, r.stopped_at is not None) for r in rows] == [("greeter", True)]


def test_a_heartbeat_racing_a_stop_does_not_bring_the_row_back(
    db: Database, clock: ManualClock, parts: dict[str, Any]
) -> None:
    service = greeter_service(db, clock, parts)
    service.start()
    service.stop()
    service._write_heartbeat(clock.utcnow())  # a beat already under way when stop began
    late = row(db)
    assert late is not None
    assert late.stopped_at is not None  # still down
    removing = greeter_service(db, clock, parts, on_stop="remove")
    removing.start()
    removing.stop()
    removing._write_heartbeat(clock.utcnow())
    assert row(db) is None  # not re-created


class Moody(Greeter):
    TOPIC = "moody"
    working = False

    def is_working(self) -> bool:
        return self.working

    def cheer_up(self) -> None:
        self.working = True


def test_a_manager_not_working_at_start_is_up_after_its_first_good_heartbeat(
    db: Database, clock: ManualClock, parts: dict[str, Any]
) -> None:
    service = Service(Moody, host="node-1", db=db, timer=parts["timer"], bridge=parts["bridge"],
                      clock=clock, report_interval=10, service_down_time=30,
                      periodic_fuzzy_delay=0)
    service.start()
    directory = parts["directory"]
    with pytest.raises(ServiceUnavailable):
        directory.proxy("moody", "node-1")
    service.proxy.cheer_up().get(timeout=5)
    parts["timer"].proxy().advance(10).get(timeout=10)  # the next heartbeat
    assert directory.proxy("moody", "node-1").hello().get(timeout=5) == "hello from node-1"
    service.stop()


def test_a_directory_built_from_a_nodes_config(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'from-config.sqlite3'}"
    cfg = NodeConfig(database_url=url, report_interval=30, service_down_time=30, rpc_timeout=7)
    directory = Directory.from_config(cfg)
    assert directory.db.url == url
    assert directory.service_down_time == 75.0  # the node's rule in force, for legacy rows
    assert directory.timeout == 7.0
    directory.close()
    directory.db.dispose()


class Slow(Manager):
    TOPIC = "slow"
    gate: ClassVar[threading.Event] = threading.Event()
    entered: ClassVar[threading.Event] = threading.Event()

    def block(self) -> None:
        type(self).entered.set()
        assert type(self).gate.wait(timeout=30)


def test_a_stopping_node_marks_every_service_down_before_draining_any(tmp_path: Path) -> None:
    node = Node(node_config(tmp_path, ServiceSpec("tests.test_lifecycle:Greeter"),
                            ServiceSpec("tests.test_lifecycle:Slow")))
    node.start()
    Slow.gate.clear()
    Slow.entered.clear()
    node.services[1].proxy.block.defer()
    assert Slow.entered.wait(timeout=10)
    stopper = threading.Thread(target=node.stop)
    stopper.start()
    # the last service is the first drained (and it is stuck); the first must be down already
    db = Database(node.config.database_url)
    try:
        def both_down() -> bool:
            with db.session() as session:
                rows = session.scalars(select(ServiceRecord)).all()
            return len(rows) == 2 and all(r.stopped_at is not None for r in rows)

        done = threading.Event()
        for _ in range(200):  # bounded: up to 10 s
            if both_down():
                break
            done.wait(0.05)
        assert both_down()
        assert stopper.is_alive()  # still draining Slow
    finally:
        Slow.gate.set()
        stopper.join(timeout=30)
        db.dispose()
    assert not stopper.is_alive()
