"""The volume manager: its table, its capacity, its health, its capability reports."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import TYPE_CHECKING, Any

import pytest

from actors import TimerActor
from actors.db import Database, select
from actors.demo import (
    DriverNotReady,
    InsufficientCapacity,
    Volume,
    VolumeExists,
    VolumeManager,
    VolumeNotFound,
)
from tests.demo._helpers import RecordingScheduler, heartbeat

if TYPE_CHECKING:
    from pathlib import Path

    from actors import ManualClock

SWITCHABLE = "tests.demo._helpers:SwitchableDriver"
SECOND = dt.timedelta(seconds=1)


def start_volume(db: Database, clock: ManualClock, host: str = "node-a", **kwargs: Any) -> Any:
    kwargs.setdefault("driver_options", {"capacity_gb": 100})
    ref = VolumeManager.start(host=host, db=db, clock=clock, **kwargs)
    return ref.proxy()


def test_volumes_persist_in_its_table(
    db: Database, db_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    volume = start_volume(
        db,
        clock,
        driver="sparse",
        driver_options={"directory": str(tmp_path / "vols"), "capacity_gb": 20},
    )
    volume.init_host().get(timeout=5)
    created = volume.create_volume("vol-1", 5).get(timeout=5)
    assert created == {
        "id": "vol-1",
        "host": "node-a",
        "size_gb": 5,
        "status": "available",
        "location": str(tmp_path / "vols" / "volume-vol-1"),
        "created_at": clock.utcnow(),
    }
    clock.advance(1)
    volume.create_volume("vol-2", 3).get(timeout=5)
    volume.create_volume("vol-3", 2).get(timeout=5)
    volume.delete_volume("vol-2").get(timeout=5)
    assert [v["id"] for v in volume.list_volumes().get(timeout=5)] == ["vol-1", "vol-3"]
    assert volume.get_volume("vol-3").get(timeout=5)["size_gb"] == 2
    volume.actor_ref.stop()

    reopened = Database(db_url)  # another engine on the same file
    with reopened.session() as session:
        rows = session.scalars(select(Volume).order_by(Volume.id)).all()
    reopened.dispose()
    assert [(r.id, r.host, r.size_gb, r.status) for r in rows] == [
        ("vol-1", "node-a", 5, "available"),
        ("vol-3", "node-a", 2, "available"),
    ]
    assert rows[0].created_at == created["created_at"]
    assert rows[0].created_at.tzinfo is not None
    assert rows[1].location == str(tmp_path / "vols" / "volume-vol-3")


def test_capacity_follows_creates_and_deletes(db: Database, clock: ManualClock) -> None:
    volume = start_volume(db, clock, driver_options={"capacity_gb": 10})
    volume.init_host().get(timeout=5)
    assert volume.capacity().get(timeout=5)["free_capacity_gb"] == 10
    volume.create_volume("a", 4).get(timeout=5)
    volume.create_volume("b", 5).get(timeout=5)
    capacity = volume.capacity().get(timeout=5)
    assert (capacity["free_capacity_gb"], capacity["allocated_capacity_gb"]) == (1, 9)
    volume.delete_volume("a").get(timeout=5)
    assert volume.capacity().get(timeout=5)["free_capacity_gb"] == 5


def test_refusals_leave_nothing_behind(db: Database, clock: ManualClock) -> None:
    volume = start_volume(db, clock, driver_options={"capacity_gb": 10})
    other = start_volume(db, clock, host="node-b")
    volume.init_host().get(timeout=5)
    other.init_host().get(timeout=5)
    volume.create_volume("a", 4).get(timeout=5)
    with pytest.raises(VolumeExists, match="on host 'node-a'"):
        other.create_volume("a", 1).get(timeout=5)  # ids are unique across hosts
    with pytest.raises(InsufficientCapacity, match="only 6 of 10 GB free"):
        volume.create_volume("huge", 7).get(timeout=5)
    with pytest.raises(VolumeNotFound, match="'nope' does not exist"):
        volume.delete_volume("nope").get(timeout=5)
    with pytest.raises(VolumeNotFound, match="is on host 'node-a', not on 'node-b'"):
        other.delete_volume("a").get(timeout=5)
    assert [v["id"] for v in volume.list_volumes().get(timeout=5)] == ["a"]
    assert other.list_volumes().get(timeout=5) == []
    assert other.capacity().get(timeout=5)["volume_count"] == 0
    assert volume.capacity().get(timeout=5)["free_capacity_gb"] == 6


def test_is_working_follows_the_driver(db: Database, clock: ManualClock) -> None:
    broken = threading.Event()
    volume = start_volume(db, clock, driver=SWITCHABLE, driver_options={"broken": broken})
    assert volume.is_working().get(timeout=5) is False  # before init_host
    volume.init_host().get(timeout=5)
    assert volume.is_working().get(timeout=5) is True
    broken.set()
    assert volume.is_working().get(timeout=5) is False
    with pytest.raises(DriverNotReady, match="cannot create volume 'a' on node-a"):
        volume.create_volume("a", 1).get(timeout=5)
    broken.clear()
    assert volume.is_working().get(timeout=5) is True


def test_failed_setup_is_logged_and_never_published(
    db: Database, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler = RecordingScheduler.start(host="sched", db=db, clock=clock).proxy()
    volume = start_volume(db, clock, driver="tests.demo._helpers:BrokenSetupDriver")
    with caplog.at_level(logging.ERROR, logger="actors.demo.volume"):
        volume.init_host().get(timeout=5)
    assert "setting up driver" in caplog.text
    assert "backend unreachable" in caplog.text
    assert volume.is_working().get(timeout=5) is False
    with pytest.raises(DriverNotReady):
        volume.create_volume("a", 1).get(timeout=5)
    volume.publish_service_capabilities().get(timeout=5)  # nothing was ever gathered
    assert volume.list_volumes().get(timeout=5) == []  # reads still work
    assert scheduler.reports().get(timeout=5) == []


def test_a_driver_must_look_like_a_volume_driver(db: Database, clock: ManualClock) -> None:
    with pytest.raises(TypeError, match="not a VolumeDriver"):
        VolumeManager.start(host="h", db=db, clock=clock, driver="collections:OrderedDict")


def test_capabilities_reach_a_local_scheduler(db: Database, clock: ManualClock) -> None:
    scheduler = RecordingScheduler.start(host="sched", db=db, clock=clock).proxy()
    volume = start_volume(db, clock, driver_options={"capacity_gb": 40}, capabilities_interval=10)
    assert volume.periodic_spacing.get(timeout=5) == {"publish_service_capabilities": 10}
    timer = TimerActor.start(clock=clock).proxy()
    timer.register(volume.actor_ref).get(timeout=5)

    volume.init_host().get(timeout=5)  # publishes at its end
    (first,) = scheduler.reports().get(timeout=5)
    assert first["service_name"] == "volume"
    assert first["host"] == "node-a"
    assert first["cluster_name"] is None
    assert first["timestamp"] == clock.utcnow()
    assert first["capabilities"]["free_capacity_gb"] == 40
    assert first["capabilities"]["driver_name"] == "memory"

    volume.create_volume("a", 15).get(timeout=5)  # capacity changed: published at once
    assert scheduler.reports().get(timeout=5)[-1]["capabilities"]["free_capacity_gb"] == 25
    volume.delete_volume("a").get(timeout=5)
    assert scheduler.reports().get(timeout=5)[-1]["capabilities"]["free_capacity_gb"] == 40
    assert len(scheduler.reports().get(timeout=5)) == 3

    timer.advance(30).get(timeout=10)  # and periodically, every 10 s
    reports = scheduler.reports().get(timeout=5)
    assert len(reports) == 6
    assert [r["timestamp"] for r in reports[3:]] == [
        clock.utcnow() - ago * SECOND for ago in (20, 10, 0)
    ]

    heartbeat(db, clock, "node-a")
    (backend,) = scheduler.backends().get(timeout=5)
    assert (backend["host"], backend["free_capacity_gb"]) == ("node-a", 40)


def test_periodic_stats_are_gathered_in_the_publishing_task(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    directory = tmp_path / "vols"
    scheduler = RecordingScheduler.start(host="sched", db=db, clock=clock).proxy()
    volume = start_volume(
        db,
        clock,
        driver="sparse",
        driver_options={"directory": str(directory), "capacity_gb": 50},
        capabilities_interval=10,
    )
    timer = TimerActor.start(clock=clock).proxy()
    timer.register(volume.actor_ref).get(timeout=5)
    volume.init_host().get(timeout=5)
    timer.advance(10).get(timeout=10)
    assert scheduler.reports().get(timeout=5)[-1]["capabilities"]["free_capacity_gb"] == 50

    # the backend changes behind the manager's back (another tool made a volume)...
    with open(directory / "volume-outside", "wb") as f:
        f.truncate(8 * 1024**3)
    # ...and the very next periodic publish already says so: not a cycle late
    timer.advance(10).get(timeout=10)
    last = scheduler.reports().get(timeout=5)[-1]
    assert last["timestamp"] == clock.utcnow()
    assert last["capabilities"]["free_capacity_gb"] == 42
    assert last["capabilities"]["volume_count"] == 1


def test_uninitialized_driver_republishes_old_capabilities(
    db: Database, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    broken = threading.Event()
    scheduler = RecordingScheduler.start(host="sched", db=db, clock=clock).proxy()
    volume = start_volume(
        db,
        clock,
        driver=SWITCHABLE,
        driver_options={"broken": broken, "capacity_gb": 30},
        capabilities_interval=10,
    )
    timer = TimerActor.start(clock=clock).proxy()
    timer.register(volume.actor_ref).get(timeout=5)
    volume.init_host().get(timeout=5)
    volume.create_volume("a", 5).get(timeout=5)
    broken.set()
    with caplog.at_level(logging.WARNING, logger="actors.demo.volume"):
        timer.advance(10).get(timeout=10)
    assert "is not initialized; publishing the last known capabilities" in caplog.text
    last = scheduler.reports().get(timeout=5)[-1]
    assert last["timestamp"] == clock.utcnow()
    assert last["capabilities"]["free_capacity_gb"] == 25  # the old capabilities
