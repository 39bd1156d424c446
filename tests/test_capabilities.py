"""Capabilities: remembered, published periodically (never empty), kept newest-first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from actors import (
    CapabilityReport,
    CapabilityStore,
    LocalPublisher,
    Manager,
    ManualClock,
    SchedulerDependentManager,
    TimerActor,
)

T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


class Scheduler(Manager):
    TOPIC = "scheduler"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = CapabilityStore(clock=self.clock)
        self.received: list[dict[str, Any]] = []

    def update_service_capabilities(self, **report: Any) -> None:
        self.received.append(report)
        self.store.update_service_capabilities(**report)

    def reports(self) -> list[dict[str, Any]]:
        return list(self.received)


class Volume(SchedulerDependentManager):
    TOPIC = "volume"


def test_nothing_published_before_a_non_empty_update(clock: ManualClock) -> None:
    schedulers = [Scheduler.start(host=f"sched-{i}", clock=clock) for i in range(2)]
    volume = Volume.start(
        host="vol-1", service_name="volume", cluster="c1", clock=clock, capabilities_interval=10
    )
    timer = TimerActor.start(clock=clock).proxy()
    timer.register(volume).get(timeout=5)
    timer.advance(30).get(timeout=10)
    assert all(ref.proxy().reports().get(timeout=5) == [] for ref in schedulers)

    volume.proxy().update_service_capabilities({}).get(timeout=5)
    timer.advance(30).get(timeout=10)
    assert all(ref.proxy().reports().get(timeout=5) == [] for ref in schedulers)

    volume.proxy().update_service_capabilities({"free_capacity_gb": 40}).get(timeout=5)
    # remembering sends nothing by itself...
    assert all(ref.proxy().reports().get(timeout=5) == [] for ref in schedulers)
    timer.advance(10).get(timeout=10)
    # ...the next periodic publish does, to every scheduler
    for ref in schedulers:
        reports = ref.proxy().reports().get(timeout=5)
        assert reports == [
            {
                "service_name": "volume",
                "host": "vol-1",
                "capabilities": {"free_capacity_gb": 40},
                "cluster_name": "c1",
                "timestamp": clock.utcnow(),
            }
        ]
    timer.advance(20).get(timeout=10)
    assert len(schedulers[0].proxy().reports().get(timeout=5)) == 3


def test_publish_interval_defaults_to_sixty(clock: ManualClock) -> None:
    volume = Volume.start(host="v", service_name="volume", clock=clock).proxy()
    assert volume.periodic_spacing.get(timeout=5) == {"publish_service_capabilities": 60}
    tuned = Volume.start(host="v", service_name="volume", clock=clock, capabilities_interval=7)
    assert tuned.proxy().periodic_spacing.get(timeout=5) == {"publish_service_capabilities": 7}


def test_gather_then_publish_in_the_same_task(clock: ManualClock) -> None:
    class Fresh(SchedulerDependentManager):
        free = 100

        def publish_service_capabilities(self, context: Any = None) -> None:
            self.free -= 1
            self.update_service_capabilities({"free_capacity_gb": self.free})
            super().publish_service_capabilities(context)

    scheduler = Scheduler.start(host="s", clock=clock)
    fresh = Fresh.start(host="f", service_name="volume", clock=clock)
    fresh.proxy().publish_service_capabilities().get(timeout=5)  # direct call works too
    reports = scheduler.proxy().reports().get(timeout=5)
    assert [r["capabilities"]["free_capacity_gb"] for r in reports] == [99]


def test_custom_publisher_and_reset(clock: ManualClock) -> None:
    class Recording:
        def __init__(self) -> None:
            self.reports: list[CapabilityReport] = []
            self.resets = 0

        def publish(self, report: CapabilityReport) -> None:
            self.reports.append(report)

        def reset(self) -> None:
            self.resets += 1

    publisher = Recording()
    volume = Volume.start(host="v", service_name="volume", clock=clock, publisher=publisher)
    volume.proxy().update_service_capabilities({"x": 1}).get(timeout=5)
    volume.proxy().publish_service_capabilities().get(timeout=5)
    volume.proxy().reset().get(timeout=5)
    assert [r.capabilities for r in publisher.reports] == [{"x": 1}]
    assert publisher.resets == 1
    assert "update_service_capabilities" in Volume.RPC_PRIVATE


def test_local_publisher_finds_only_schedulers(clock: ManualClock) -> None:
    Scheduler.start(host="s1", clock=clock)
    Volume.start(host="v1", service_name="volume", clock=clock)
    assert [ref.actor_class for ref in LocalPublisher().schedulers()] == [Scheduler]


# -- the receiving side ----------------------------------------------------------


@dataclass
class Row:
    host: str
    cluster: str | None = None
    disabled: bool = False
    updated_at: dt.datetime | None = T0


def test_stale_reports_are_ignored() -> None:
    store = CapabilityStore(clock=ManualClock())
    assert store.update_service_capabilities("volume", "h1", {"free_capacity_gb": 10}, None, T0)
    older = T0 - dt.timedelta(seconds=1)
    stale = {"free_capacity_gb": 99}
    assert not store.update_service_capabilities("volume", "h1", stale, None, older)
    assert store.service_states["h1"]["free_capacity_gb"] == 10
    newer = T0 + dt.timedelta(seconds=1)
    assert store.update_service_capabilities("volume", "h1", {"free_capacity_gb": 5}, None, newer)
    assert store.service_states["h1"]["free_capacity_gb"] == 5


def test_report_keys_and_filters() -> None:
    clock = ManualClock()
    store = CapabilityStore(clock=clock)
    assert not store.update_service_capabilities("compute", "h1", {"x": 1})
    assert store.update_service_capabilities("volume", "h1", None, "cluster-a")
    assert store.service_states["cluster-a"] == {"timestamp": clock.utcnow()}  # None -> {}
    assert store.update_service_capabilities("backup", "h2", {"b": 1})
    assert store.backup_service_states["h2"]["b"] == 1
    assert "h2" not in store.service_states


def test_only_up_enabled_services_count() -> None:
    store = CapabilityStore(clock=ManualClock())
    for host in ("up", "down", "disabled", "silent"):
        if host != "silent":
            store.update_service_capabilities("volume", host, {"free_capacity_gb": 1}, None, T0)
    now = T0 + dt.timedelta(seconds=60)
    services = [
        Row("up", updated_at=T0),
        Row("down", updated_at=T0 - dt.timedelta(seconds=1)),
        Row("disabled", disabled=True),
        Row("silent"),
    ]
    assert [b.backend_id for b in store.backends(services, down_time=60, now=now)] == ["up"]
    assert store.no_capabilities == {"silent"}
    assert not store.has_all_capabilities()
    # a backend that goes down is removed from the map on the next pass, and one that
    # never reported stops counting as missing once it is down
    later = now + dt.timedelta(seconds=1)
    assert store.backends(services, down_time=60, now=later) == []
    assert store.backend_states == {}
    assert store.has_all_capabilities()


def test_local_reservation_newer_than_a_report_wins() -> None:
    clock = ManualClock(epoch=T0)
    store = CapabilityStore(clock=clock)
    rows = [Row("h1", updated_at=T0)]
    store.update_service_capabilities("volume", "h1", {"free_capacity_gb": 100}, None, T0)
    (backend,) = store.backends(rows, down_time=60, now=T0)
    assert backend.free_capacity_gb == 100
    clock.advance(5)
    store.consume("h1", 30)
    # a report taken before the reservation does not undo it
    taken_before = T0 + dt.timedelta(seconds=2)
    store.update_service_capabilities("volume", "h1", {"free_capacity_gb": 100}, None, taken_before)
    (backend,) = store.backends(rows, down_time=60, now=T0)
    assert backend.free_capacity_gb == 70
    assert backend.allocated_capacity_gb == 30
    # a report taken after it replaces it
    taken_after = T0 + dt.timedelta(seconds=9)
    store.update_service_capabilities("volume", "h1", {"free_capacity_gb": 65}, None, taken_after)
    (backend,) = store.backends(rows, down_time=60, now=T0)
    assert backend.free_capacity_gb == 65


def test_consume_needs_a_known_backend() -> None:
    with pytest.raises(KeyError):
        CapabilityStore().consume("nowhere", 1)
