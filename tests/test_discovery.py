"""Discovery through the services table: by host, round robin, fan-out, liveness, pins."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

import transport
from actors import (
    Directory,
    Manager,
    ManualClock,
    RPCVersionCapError,
    Service,
    ServiceUnavailable,
    TimerActor,
)
from actors.db import Database, ServiceRecord
from transport import parse_version, version_is_compatible


class Worker(Manager):
    TOPIC = "worker"
    RPC_API_VERSION = "1.3"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.heard: list[Any] = []
        self.heard_event = threading.Event()

    def whoami(self) -> str:
        return self.host

    def hear(self, value: Any) -> None:
        self.heard.append(value)
        self.heard_event.set()

    def heard_so_far(self) -> list[Any]:
        return list(self.heard)


class OldWorker(Worker):
    RPC_API_VERSION = "1.1"


@pytest.fixture
def cluster(tmp_path: Path, clock: ManualClock) -> Iterator[dict[str, Any]]:
    db = Database(f"sqlite:///{tmp_path / 'cluster.sqlite3'}")
    timer = TimerActor.start(clock=clock)
    bridges, services = [], []
    for i, cls in enumerate([Worker, Worker, OldWorker]):
        bridge = transport.Bridge("tcp://127.0.0.1:*")
        bridge.start()
        service = Service(cls, host=f"node-{i}", db=db, timer=timer, bridge=bridge, clock=clock,
                          report_interval=10, service_down_time=60, periodic_fuzzy_delay=0)
        service.start()
        bridges.append(bridge)
        services.append(service)
    timer.proxy().advance(10).get(timeout=10)  # everyone heartbeats once: all up
    directory = Directory(db, service_down_time=60, clock=clock, timeout=5)
    yield {"db": db, "timer": timer, "services": services, "directory": directory,
           "bridges": bridges}
    directory.close()
    for service in services:
        service.stop()
    for bridge in bridges:
        bridge.stop()
    db.dispose()


def test_proxy_by_topic_and_host(cluster: dict[str, Any]) -> None:
    directory: Directory = cluster["directory"]
    for i in range(3):
        assert directory.proxy("worker", host=f"node-{i}").whoami().get(timeout=5) == f"node-{i}"


def test_round_robin_over_up_services(cluster: dict[str, Any]) -> None:
    directory: Directory = cluster["directory"]
    hosts = [directory.proxy("worker").whoami().get(timeout=5) for _ in range(6)]
    assert hosts == ["node-0", "node-1", "node-2"] * 2


def test_fanout_cast_reaches_every_up_service(cluster: dict[str, Any]) -> None:
    directory: Directory = cluster["directory"]
    assert directory.fanout_cast("worker", "hear", "hello") == 3
    for service in cluster["services"]:
        # the cast and this local read come from different senders: wait for the cast
        assert service.proxy.heard_event.get(timeout=5).wait(timeout=5)
        assert service.proxy.heard_so_far().get(timeout=5) == ["hello"]
    assert directory.fanout_cast("nobody-listens", "hear", "x") == 0  # silently dropped


def test_a_dead_node_stops_being_chosen(cluster: dict[str, Any], clock: ManualClock) -> None:
    directory: Directory = cluster["directory"]
    timer = cluster["timer"]
    dead = cluster["services"][1]
    dead.proxy.set_periodic_spacing("report_state", 10_000).get(timeout=5)  # it stops beating
    timer.proxy().advance(60).get(timeout=10)  # the others beat; node-1 last beat 60 s ago
    assert sorted(r.host for r in directory.services("worker", up_only=True)) == [
        "node-0", "node-1", "node-2"]  # the boundary: still up
    timer.proxy().advance(1).get(timeout=10)
    assert sorted(r.host for r in directory.services("worker", up_only=True)) == [
        "node-0", "node-2"]
    hosts = {directory.proxy("worker").whoami().get(timeout=5) for _ in range(4)}
    assert hosts == {"node-0", "node-2"}
    with pytest.raises(ServiceUnavailable, match="node-1"):
        directory.proxy("worker", host="node-1")
    with pytest.raises(ServiceUnavailable):
        directory.proxy("no-such-topic")


def test_call_to_a_vanished_node_times_out_not_hangs(cluster: dict[str, Any]) -> None:
    directory = Directory(cluster["db"], service_down_time=60, clock=cluster["directory"].clock,
                          timeout=0.5)
    cluster["bridges"][0].stop()  # its row still says up
    with pytest.raises(transport.MessagingTimeout):
        directory.proxy("worker", host="node-0").whoami().get(timeout=5)
    directory.close()


def test_a_timeout_says_whether_the_services_table_shows_the_node_up(
    cluster: dict[str, Any], clock: ManualClock
) -> None:
    directory = Directory(cluster["db"], service_down_time=60, clock=clock, timeout=0.3)
    proxy = directory.proxy("worker", host="node-0")  # described while it is served
    cluster["bridges"][0].stop()  # gone, but its row still says up
    with pytest.raises(transport.MessagingTimeout, match=r"worker\.node-0\.whoami") as caught:
        proxy.whoami().get()
    assert "worker on node-0 is up (last heartbeat 0.0 s ago)" in caught.value.__notes__[0]
    clock.advance(61)  # no heartbeats meanwhile: the table shows it down
    with pytest.raises(transport.MessagingTimeout) as caught:
        proxy.whoami().get()
    assert "worker on node-0 is DOWN (last heartbeat 61.0 s ago)" in caught.value.__notes__[0]
    directory.close()


def test_version_pin_cap_error_and_reset(cluster: dict[str, Any]) -> None:
    directory: Directory = cluster["directory"]
    db: Database = cluster["db"]
    assert directory.version_cap("worker") == "1.1"  # the oldest up service
    assert directory.can_send_version("worker", "1.1")
    assert directory.can_send_version("worker", "1.0")
    assert not directory.can_send_version("worker", "1.3")
    assert not directory.can_send_version("worker", "2.0")
    with pytest.raises(RPCVersionCapError, match=r"higher than the version cap 1\.1"):
        directory.proxy("worker", host="node-0", version="1.3")
    assert directory.proxy("worker", host="node-0", version="1.1").whoami().get(timeout=5)
    # node-2 is upgraded (its row now says 1.3): the pin is cached until reset (SIGHUP)
    with db.begin() as session:
        session.execute(update(ServiceRecord).where(ServiceRecord.host == "node-2")
                        .values(rpc_version="1.3"))
    assert not directory.can_send_version("worker", "1.3")
    directory.reset()
    assert directory.version_cap("worker") == "1.3"
    assert directory.proxy("worker", host="node-0", version="1.3").whoami().get(timeout=5)


def test_version_rules() -> None:
    assert parse_version("1.2") == (1, 2)
    assert parse_version("3") == (3, 0)
    assert version_is_compatible("1.3", "1.0")
    assert version_is_compatible("1.3", "1.3")
    assert not version_is_compatible("1.3", "1.4")
    assert not version_is_compatible("1.3", "2.0")
    assert not version_is_compatible("2.0", "1.0")


def test_disabled_services_are_not_chosen(cluster: dict[str, Any]) -> None:
    directory: Directory = cluster["directory"]
    with cluster["db"].begin() as session:
        session.execute(update(ServiceRecord).where(ServiceRecord.host == "node-0")
                        .values(disabled=True))
    hosts = {directory.proxy("worker").whoami().get(timeout=5) for _ in range(4)}
    assert hosts == {"node-1", "node-2"}


def test_liveness_uses_the_heartbeat_time(cluster: dict[str, Any], clock: ManualClock) -> None:
    directory: Directory = cluster["directory"]
    (row,) = [r for r in directory.services("worker") if r.host == "node-0"]
    assert row.updated_at == clock.utcnow()
    assert directory.is_up(row)
    clock.advance(61)
    assert not directory.is_up(row)
    assert row.updated_at + dt.timedelta(seconds=61) == clock.utcnow()
