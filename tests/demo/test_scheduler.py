"""The scheduler: most free capacity wins, reservations spread bursts, down backends never."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka
import pytest

from actors.db import ServiceRecord, select
from actors.demo import (
    BackendTimeout,
    InvalidVolume,
    NoValidBackend,
    SchedulerManager,
    VolumeExists,
    VolumeManager,
)
from tests.demo._helpers import RecordingScheduler, heartbeat

if TYPE_CHECKING:
    from actors import ManualClock
    from actors.db import Database

CAPACITIES = {"node-a": 50, "node-b": 40, "node-c": 30}


@dataclass
class Cloud:
    """Three volume managers of different capacities, up, reported, and a scheduler."""

    db: Database
    clock: ManualClock
    refs: dict[str, Any]
    scheduler: Any

    def volume(self, host: str) -> Any:
        return self.refs[host].proxy()

    def free(self) -> dict[str, float]:
        return {b["host"]: b["free_capacity_gb"] for b in self.scheduler.backends().get(timeout=5)}

    def volumes_on(self, host: str) -> list[str]:
        return [v["id"] for v in self.volume(host).list_volumes().get(timeout=5)]


def start_cloud(db: Database, clock: ManualClock, **scheduler_kwargs: Any) -> Cloud:
    heartbeat(db, clock, *CAPACITIES)
    refs: dict[str, Any] = {}
    scheduler_kwargs.setdefault("volume_rpc", lambda host: refs[host].proxy())
    scheduler = RecordingScheduler.start(host="sched", db=db, clock=clock, **scheduler_kwargs)
    for host, capacity in CAPACITIES.items():
        refs[host] = VolumeManager.start(
            host=host, db=db, clock=clock, driver_options={"capacity_gb": capacity}
        )
    for ref in refs.values():
        ref.proxy().init_host().get(timeout=5)
    return Cloud(db, clock, refs, scheduler.proxy())


@pytest.fixture
def cloud(db: Database, clock: ManualClock) -> Cloud:
    return start_cloud(db, clock)


def test_places_on_the_most_free_capacity(cloud: Cloud) -> None:
    assert cloud.free() == {"node-a": 50, "node-b": 40, "node-c": 30}
    assert cloud.scheduler.capabilities_reported().get(timeout=5) is True
    volume = cloud.scheduler.create_volume("v1", 25).get(timeout=5)
    assert (volume["id"], volume["host"], volume["backend"], volume["size_gb"]) == (
        "v1",
        "node-a",
        "node-a",
        25,
    )
    assert cloud.volumes_on("node-a") == ["v1"]
    # the report node-a published after the create agrees with the reservation
    assert cloud.free() == {"node-a": 25, "node-b": 40, "node-c": 30}
    assert cloud.scheduler.create_volume("v2", 10).get(timeout=5)["host"] == "node-b"
    # node-b and node-c tie at 30 GB: the lowest name wins
    assert cloud.scheduler.create_volume("v3", 28).get(timeout=5)["host"] == "node-b"
    assert cloud.scheduler.create_volume("v4", 28).get(timeout=5)["host"] == "node-c"
    assert cloud.free() == {"node-a": 25, "node-b": 2, "node-c": 2}


def test_a_burst_spreads_thanks_to_local_reservations(cloud: Cloud) -> None:
    # Reservations must be newer than the reports they stand in for: on a manual
    # clock that has not moved they would tie with them, and a report wins a tie.
    cloud.clock.advance(1)
    release = threading.Event()
    held = cloud.scheduler.hold(release)
    # Nine requests queue up behind the hold, before any report the creates cause.
    futures = [cloud.scheduler.create_volume(f"burst-{i}", 10) for i in range(9)]
    release.set()
    held.get(timeout=5)
    hosts = [f.get(timeout=10)["host"] for f in futures]
    # 50/40/30 GB free, 10 GB each, most free first, ties to the lowest name:
    assert hosts == [
        "node-a",  # a 50 -> 40
        "node-a",  # a 40 = b 40: a -> 30
        "node-b",  # b 40 -> 30
        "node-a",  # a = b = c = 30: a -> 20
        "node-b",  # b -> 20
        "node-c",  # c -> 20
        "node-a",
        "node-b",
        "node-c",
    ]
    assert {h: len(cloud.volumes_on(h)) for h in CAPACITIES} == {
        "node-a": 4,
        "node-b": 3,
        "node-c": 2,
    }
    assert cloud.free() == {"node-a": 10, "node-b": 10, "node-c": 10}
    with pytest.raises(NoValidBackend):
        cloud.scheduler.create_volume("one-too-many", 11).get(timeout=5)


def test_a_down_backend_is_never_chosen(cloud: Cloud) -> None:
    cloud.clock.advance(45)
    heartbeat(cloud.db, cloud.clock, "node-b", "node-c")  # node-a stops heartbeating
    cloud.clock.advance(16)  # node-a: 61 s since its heartbeat; the others 16 s
    assert cloud.free() == {"node-b": 40, "node-c": 30}
    hosts = [cloud.scheduler.create_volume(f"v{i}", 5).get(timeout=5)["host"] for i in range(6)]
    assert "node-a" not in hosts
    assert cloud.volumes_on("node-a") == []
    with pytest.raises(NoValidBackend, match="node-b=20 GB, node-c=20 GB"):
        cloud.scheduler.create_volume("big", 45).get(timeout=5)  # node-a would have room

    heartbeat(cloud.db, cloud.clock, "node-a")  # back up: usable again
    assert cloud.scheduler.create_volume("big", 45).get(timeout=5)["host"] == "node-a"


def test_service_down_time_is_configurable(db: Database, clock: ManualClock) -> None:
    cloud = start_cloud(db, clock, service_down_time=5)
    clock.advance(5)
    assert set(cloud.free()) == set(CAPACITIES)  # the boundary still counts as up
    clock.advance(1)
    assert cloud.free() == {}
    assert cloud.scheduler.capabilities_reported().get(timeout=5) is False


def test_disabled_backends_are_skipped(cloud: Cloud) -> None:
    with cloud.db.begin() as session:
        row = session.scalars(select(ServiceRecord).where(ServiceRecord.host == "node-a")).one()
        row.disabled = True
    assert cloud.scheduler.create_volume("v", 1).get(timeout=5)["host"] == "node-b"


def test_too_large_raises_and_creates_nothing(cloud: Cloud) -> None:
    with pytest.raises(NoValidBackend) as info:
        cloud.scheduler.create_volume("huge", 51).get(timeout=5)
    assert str(info.value) == (
        "no valid backend for volume 'huge' of 51 GB: free space of the up backends: "
        "node-a=50 GB, node-b=40 GB, node-c=30 GB"
    )
    assert all(cloud.volumes_on(host) == [] for host in CAPACITIES)
    assert cloud.free() == {"node-a": 50, "node-b": 40, "node-c": 30}  # nothing reserved
    with pytest.raises(InvalidVolume):
        cloud.scheduler.create_volume("zero", 0).get(timeout=5)


def test_a_backend_refusal_reaches_the_caller(cloud: Cloud) -> None:
    cloud.scheduler.create_volume("twice", 1).get(timeout=5)
    with pytest.raises(VolumeExists, match="'twice' already exists"):
        cloud.scheduler.create_volume("twice", 1).get(timeout=5)
    assert cloud.volumes_on("node-a") == ["twice"]


def test_a_stale_report_does_not_overwrite_a_newer_one(cloud: Cloud) -> None:
    older = cloud.clock.utcnow() - dt.timedelta(seconds=1)
    stale = {"total_capacity_gb": 500, "free_capacity_gb": 500, "allocated_capacity_gb": 0}
    cloud.scheduler.update_service_capabilities("volume", "node-c", stale, None, older)
    assert cloud.free()["node-c"] == 30
    assert cloud.scheduler.create_volume("v", 45).get(timeout=5)["host"] == "node-a"
    newer = cloud.clock.utcnow() + dt.timedelta(seconds=1)
    cloud.scheduler.update_service_capabilities("volume", "node-c", stale, None, newer)
    assert cloud.free()["node-c"] == 500


def test_capabilities_reported_waits_for_every_up_backend(db: Database, clock: ManualClock) -> None:
    scheduler = SchedulerManager.start(host="sched", db=db, clock=clock).proxy()
    assert scheduler.capabilities_reported().get(timeout=5) is False  # no backend at all
    heartbeat(db, clock, "node-a", "node-b")
    node_a = VolumeManager.start(host="node-a", db=db, clock=clock)
    node_a.proxy().init_host().get(timeout=5)
    assert scheduler.capabilities_reported().get(timeout=5) is False  # node-b is silent
    # scheduling goes on meanwhile, on what is known (Cinder would wait here)
    assert scheduler.create_volume("early", 1).get(timeout=5)["host"] == "node-a"
    node_b = VolumeManager.start(host="node-b", db=db, clock=clock)
    node_b.proxy().init_host().get(timeout=5)
    assert scheduler.capabilities_reported().get(timeout=5) is True

    # a silent backend that goes down no longer holds the answer back
    heartbeat(db, clock, "node-silent")
    assert scheduler.capabilities_reported().get(timeout=5) is False
    clock.advance(30)
    heartbeat(db, clock, "node-a", "node-b")
    clock.advance(31)
    assert scheduler.capabilities_reported().get(timeout=5) is True


def test_the_default_rpc_finds_local_volume_managers(db: Database, clock: ManualClock) -> None:
    heartbeat(db, clock, "node-a", "node-b")
    scheduler = SchedulerManager.start(host="sched", db=db, clock=clock).proxy()
    refs = {
        host: VolumeManager.start(
            host=host, db=db, clock=clock, driver_options={"capacity_gb": capacity}
        )
        for host, capacity in (("node-a", 5), ("node-b", 9))
    }
    for ref in refs.values():
        ref.proxy().init_host().get(timeout=5)
    assert scheduler.create_volume("v", 2).get(timeout=5)["host"] == "node-b"
    refs["node-b"].stop()  # its row still reads as up, but nobody serves it here
    clock.advance(1)  # so that a reservation would outrank node-b's last report
    with pytest.raises(NoValidBackend, match="no volume manager for backend 'node-b'"):
        scheduler.create_volume("w", 2).get(timeout=5)
    # the lookup failed before anything was reserved
    assert [b["free_capacity_gb"] for b in scheduler.backends().get(timeout=5)] == [5, 7]


def test_a_nodes_directory_gives_the_proxies(db: Database, clock: ManualClock) -> None:
    refs: dict[str, Any] = {}
    asked: list[tuple[str, str | None]] = []

    class Directory:  # what a node gives managers that declare it: service discovery
        def proxy(self, topic: str, host: str | None = None) -> Any:
            asked.append((topic, host))
            assert host is not None
            return refs[host].proxy()

    heartbeat(db, clock, "node-a")
    scheduler = SchedulerManager.start(
        host="sched", db=db, clock=clock, directory=Directory()
    ).proxy()
    refs["node-a"] = VolumeManager.start(host="node-a", db=db, clock=clock)
    refs["node-a"].proxy().init_host().get(timeout=5)
    assert scheduler.create_volume("v", 3).get(timeout=5)["backend"] == "node-a"
    assert asked == [("volume", "node-a")]


def test_a_stuck_backend_times_out(db: Database, clock: ManualClock) -> None:
    class Stuck:
        def create_volume(self, volume_id: str, size_gb: int) -> pykka.Future[Any]:
            return pykka.ThreadingFuture()  # never answered

    scheduler = SchedulerManager.start(
        host="sched-2", db=db, clock=clock, volume_rpc=lambda host: Stuck(), rpc_timeout=0.05
    ).proxy()
    for host, capacity in CAPACITIES.items():
        scheduler.update_service_capabilities(
            "volume", host, {"free_capacity_gb": capacity, "total_capacity_gb": capacity}
        ).get(timeout=5)
    heartbeat(db, clock, *CAPACITIES)
    clock.advance(1)
    with pytest.raises(BackendTimeout, match=r"'node-a' did not answer within 0.05 s") as info:
        scheduler.create_volume("v", 1).get(timeout=5)
    assert isinstance(info.value, pykka.Timeout)
    # the scheduler's mailbox was not held: it still answers
    assert scheduler.backends().get(timeout=5)[0]["free_capacity_gb"] == 49
