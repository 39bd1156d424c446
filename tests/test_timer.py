"""The timer actor: idle_for honoured, no pile-up, survival, fuzzy start, manual time."""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

import pykka
import pytest

from actors import Manager, ManualClock, MonotonicClock, TimerActor, periodic_task


class Counter(Manager):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runs: list[float] = []

    @periodic_task(spacing=5)
    def every_five(self, context: Any) -> None:
        self.runs.append(self.clock.monotonic())

    def history(self) -> list[float]:
        return list(self.runs)


class Slow(Manager):
    """Its mailbox can be held up by a call that waits for an event."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ticks = 0

    def hold(self, release: threading.Event) -> None:
        assert release.wait(timeout=30)

    def run_periodic_tasks(self, context: Any, raise_on_error: bool = False) -> float:
        self.ticks += 1
        return 10.0

    def tick_count(self) -> int:
        return self.ticks


class Broken(Manager):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.attempts: list[float] = []

    def run_periodic_tasks(self, context: Any, raise_on_error: bool = False) -> float:
        self.attempts.append(self.clock.monotonic())
        raise RuntimeError("driver exploded")

    def history(self) -> list[float]:
        return list(self.attempts)


def start_timer(clock: Any, **kwargs: Any) -> Any:
    return TimerActor.start(clock=clock, **kwargs).proxy()


def test_honours_idle_for(clock: ManualClock) -> None:
    counter = Counter.start(host="h", clock=clock)
    timer = start_timer(clock)
    timer.register(counter).get(timeout=5)
    start = clock.monotonic()
    sent = timer.advance(60).get(timeout=10)
    runs = counter.proxy().history().get(timeout=5)
    assert [t - start for t in runs] == [5.0 * i for i in range(1, 13)]  # every 5 s, not 60
    assert sent == 13  # at 0 (nothing due yet: idle 5), then at 5, 10, ..., 60


def test_mixed_spacings_follow_the_smallest_due(clock: ManualClock) -> None:
    class Mixed(Manager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.seen: list[tuple[str, float]] = []

        @periodic_task(spacing=3)
        def three(self, context: Any) -> None:
            self.seen.append(("three", self.clock.monotonic()))

        @periodic_task(spacing=7)
        def seven(self, context: Any) -> None:
            self.seen.append(("seven", self.clock.monotonic()))

        def history(self) -> list[tuple[str, float]]:
            return list(self.seen)

    mixed = Mixed.start(host="h", clock=clock, periodic_jitter=lambda: 0.0)
    timer = start_timer(clock)
    timer.register(mixed).get(timeout=5)
    t0 = clock.monotonic()
    timer.advance(21).get(timeout=10)
    seen = [(name, at - t0) for name, at in mixed.proxy().history().get(timeout=5)]
    assert [at for name, at in seen if name == "three"] == [3, 6, 9, 12, 15, 18, 21]
    assert [at for name, at in seen if name == "seven"] == [7, 14, 21]


def test_advance_is_deterministic(clock: ManualClock) -> None:
    def run_once() -> list[list[float]]:
        local = ManualClock(start=0)
        counters = [Counter.start(host=f"h{i}", clock=local) for i in range(3)]
        timer = start_timer(local, rng=random.Random(7), fuzzy_delay=4)
        for ref in counters:
            timer.register(ref).get(timeout=5)
        timer.advance(33).get(timeout=10)
        result = [ref.proxy().history().get(timeout=5) for ref in counters]
        timer.actor_ref.stop()
        for ref in counters:
            ref.stop()
        return result

    first, second = run_once(), run_once()
    assert first == second
    assert all(len(runs) == 6 for runs in first)


def test_no_second_tick_while_the_first_is_queued(clock: ManualClock) -> None:
    slow = Slow.start(host="slow", clock=clock)
    fast = Counter.start(host="fast", clock=clock)
    timer = start_timer(clock)
    timer.register(slow).get(timeout=5)
    timer.register(fast).get(timeout=5)
    release = threading.Event()
    slow.proxy().hold.defer(release)  # the slow manager's mailbox is now stuck
    # First pass: both ticked; the slow one's tick waits in its mailbox.
    timer.advance(0, timeout=0.2).get(timeout=10)
    # Many periods later the slow one has still been sent just that one tick...
    sent = timer.advance(100).get(timeout=10)
    assert sent == 20  # fast only: at 5, 10, ..., 100 (the slow one was not ticked again)
    assert len(fast.proxy().history().get(timeout=5)) == 20  # ...and did not hold up the fast one
    release.set()
    assert slow.proxy().tick_count().get(timeout=10) == 1  # coalesced: one tick, not eleven
    # Once it answered, it is ticked again by its idle time (10 s).
    assert timer.advance(10).get(timeout=10) == 3  # fast at 105 and 110, slow at 110
    assert slow.proxy().tick_count().get(timeout=10) == 2


def test_survives_a_failing_manager(clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    broken = Broken.start(host="broken", clock=clock)
    counter = Counter.start(host="fine", clock=clock)
    timer = start_timer(clock, default_interval=30)
    timer.register(broken).get(timeout=5)
    timer.register(counter).get(timeout=5)
    t0 = clock.monotonic()
    timer.advance(90).get(timeout=10)
    attempts = [t - t0 for t in broken.proxy().history().get(timeout=5)]
    assert attempts == [0, 30, 60, 90]  # retried after default_interval
    assert len(counter.proxy().history().get(timeout=5)) == 18
    assert "periodic tick of" in caplog.text
    assert "driver exploded" in caplog.text
    assert timer.actor_ref.is_alive()
    assert broken.is_alive()


def test_drops_a_dead_manager(clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    gone = Counter.start(host="gone", clock=clock)
    counter = Counter.start(host="fine", clock=clock)
    timer = start_timer(clock)
    timer.register(gone).get(timeout=5)
    timer.register(counter).get(timeout=5)
    timer.advance(5).get(timeout=10)
    gone.stop()
    timer.advance(10).get(timeout=10)
    assert timer.registered().get(timeout=5) == 1
    assert "not running" in caplog.text
    assert len(counter.proxy().history().get(timeout=5)) == 3


def test_manager_dying_mid_tick_is_dropped(clock: ManualClock) -> None:
    class Dies(Manager):
        def run_periodic_tasks(self, context: Any, raise_on_error: bool = False) -> float:
            raise SystemExit("gone")

    dies = Dies.start(host="d", clock=clock)
    timer = start_timer(clock)
    timer.register(dies).get(timeout=5)
    timer.advance(1).get(timeout=10)
    assert not dies.is_alive()
    assert timer.registered().get(timeout=5) == 0
    assert timer.actor_ref.is_alive()


def test_fuzzy_initial_delay(clock: ManualClock) -> None:
    refs = [Counter.start(host=f"h{i}", clock=clock) for i in range(5)]
    expected = random.Random(1234)
    timer = start_timer(clock, rng=random.Random(1234), fuzzy_delay=60)
    firsts = []
    for ref in refs:
        timer.register(ref).get(timeout=5)
        firsts.append(timer.next_due().get(timeout=5) - clock.monotonic())
        timer.unregister(ref).get(timeout=5)
    assert firsts == pytest.approx([expected.uniform(0, 60) for _ in refs])
    assert all(0 <= d <= 60 for d in firsts)
    assert len(set(firsts)) == 5
    timer.register(refs[0], fuzzy_delay=0).get(timeout=5)  # per-actor override: no delay
    assert timer.next_due().get(timeout=5) == clock.monotonic()
    timer.register(refs[1], initial_delay=12.5).get(timeout=5)
    timer.unregister(refs[0]).get(timeout=5)
    assert timer.next_due().get(timeout=5) - clock.monotonic() == 12.5


def test_unregister_stops_ticks(clock: ManualClock) -> None:
    counter = Counter.start(host="h", clock=clock)
    timer = start_timer(clock)
    timer.register(counter).get(timeout=5)
    timer.advance(10).get(timeout=10)
    assert timer.unregister(counter).get(timeout=5) is True
    assert timer.unregister(counter).get(timeout=5) is False
    assert timer.advance(50).get(timeout=10) == 0
    assert len(counter.proxy().history().get(timeout=5)) == 2


def test_advance_needs_a_manual_clock() -> None:
    timer = start_timer(MonotonicClock())
    with pytest.raises(TypeError, match="ManualClock"):
        timer.advance(1).get(timeout=5)


def test_manual_clock_never_fires_by_itself(clock: ManualClock) -> None:
    counter = Counter.start(host="h", clock=clock)
    timer = start_timer(clock)
    timer.register(counter, initial_delay=0).get(timeout=5)
    clock.advance(100)  # time moves, but only advance() runs ticks
    timer.registered().get(timeout=5)  # a round trip through the timer's mailbox
    assert counter.proxy().history().get(timeout=5) == []


def test_real_clock_ticks_by_itself() -> None:
    done = threading.Event()

    class Quick(Manager):
        runs = 0

        @periodic_task(spacing=0.02, run_immediately=True)
        def quick(self, context: Any) -> None:
            self.runs += 1
            if self.runs == 5:
                done.set()

    quick = Quick.start(host="q")
    timer = start_timer(MonotonicClock())
    timer.register(quick).get(timeout=5)
    assert done.wait(timeout=10), "the real-time timer did not tick five times"
    assert timer.actor_ref.is_alive()


def test_tick_to_a_plain_actor_without_tick_support_is_survived(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Plain(pykka.ThreadingActor):
        pass

    plain = Plain.start()
    timer = start_timer(clock, default_interval=30)
    timer.register(plain).get(timeout=5)
    timer.advance(0).get(timeout=10)
    assert timer.actor_ref.is_alive()
    assert plain.is_alive()
