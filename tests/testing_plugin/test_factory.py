"""`ActorFactory` and `RecordingPublisher` used directly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors import CapabilityReport, Manager, ManualClock
from actors.demo import SchedulerManager, VolumeManager
from actors.testing import ActorFactory, LeakCheck, RecordingPublisher
from actors.testing._factory import accepted_kwargs

OFFERED = {"db": "DB", "clock": "CLOCK", "publisher": "PUBLISHER"}


class Plain(pykka.ThreadingActor):
    def __init__(self, greeting: str) -> None:
        super().__init__()
        self.greeting = greeting


class FixedHost(Manager):
    """Takes no dependencies from its caller: it builds its own."""

    def __init__(self, size: int = 1) -> None:
        super().__init__(host="fixed")
        self.size = size


class Passing(Manager):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)


@pytest.mark.parametrize(
    ("actor_class", "taken"),
    [
        (VolumeManager, {"db", "clock", "publisher"}),
        (SchedulerManager, {"db", "clock"}),  # not a publisher of capabilities
        (Passing, {"db", "clock"}),
        (FixedHost, set()),  # its **kwargs-less __init__ would refuse them
        (Plain, set()),
    ],
)
def test_defaults_go_only_where_a_constructor_takes_them(
    actor_class: type[Any], taken: set[str]
) -> None:
    assert set(accepted_kwargs(actor_class, OFFERED)) == taken


def test_the_factory_stops_everything_and_closes_its_database(tmp_path: Path) -> None:
    with LeakCheck(timeout=5):
        factory = ActorFactory(tmp_path)
        refs: list[pykka.ActorRef[Any]] = [factory(VolumeManager, host=f"h{i}") for i in range(3)]
        refs.append(factory(FixedHost, size=2))
        assert refs[-1].proxy().size.get(timeout=5) == 2
        assert factory.injected(refs[-1]) == {"size": 2}
        assert factory.refs == refs
        factory.advance(60)  # starts a timer: stopped too
        factory.stop()
        assert not any(ref.is_alive() for ref in refs)
        assert factory.refs == []


def test_injected_refuses_a_stranger(tmp_path: Path) -> None:
    stranger = Plain.start("hi")
    try:
        with ActorFactory(tmp_path) as factory, pytest.raises(KeyError, match="not started by"):
            factory.injected(stranger)
    finally:
        stranger.stop()


def test_advance_needs_no_manager_and_moves_the_shared_clock(tmp_path: Path) -> None:
    clock = ManualClock(start=100)
    with ActorFactory(tmp_path, clock=clock) as factory:
        assert factory.advance(30) == 0
        assert clock.monotonic() == 130


def _report(host: str) -> CapabilityReport:
    return CapabilityReport("volume", host, {"free_capacity_gb": 1}, None, dt.datetime.now(dt.UTC))


def test_the_recording_publisher_forwards_and_waits() -> None:
    downstream = RecordingPublisher()
    publisher = RecordingPublisher(forward=downstream)
    publisher.publish(_report("a"))
    publisher.reset()
    assert [r.host for r in downstream.reports] == ["a"]
    assert (publisher.resets, downstream.resets) == (1, 1)
    assert [r.host for r in publisher.wait_for(1, timeout=1)] == ["a"]
    with pytest.raises(TimeoutError, match="1 report"):
        publisher.wait_for(2, timeout=0.01)
    publisher.clear()
    assert publisher.reports == []
