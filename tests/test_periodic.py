"""oslo.service's test_periodic.py, ported case by case, plus our two deliberate fixes."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from actors import DEFAULT_INTERVAL, InvalidPeriodicTaskArg, Manager, ManualClock, periodic_task
from actors._periodic import nearest_boundary


def make(cls: type[Manager], clock: ManualClock, **kwargs: Any) -> Any:
    """Construct a manager object directly: the periodic machinery needs no thread."""
    return cls(host="test-host", clock=clock, periodic_jitter=lambda: 0.0, **kwargs)


# -- PeriodicTasksTestCase ------------------------------------------------------------


class AService(Manager):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.called: dict[str, int] = {"doit": 0, "urg": 0, "ticks": 0, "tocks": 0}

    @periodic_task
    def doit(self, context: Any) -> None:
        self.called["doit"] += 1

    @periodic_task
    def crashit(self, context: Any) -> None:
        self.called["urg"] += 1
        raise RuntimeError("bad")

    @periodic_task(spacing=10 + 60, run_immediately=True)
    def doit_with_ticks(self, context: Any) -> None:
        self.called["ticks"] += 1

    @periodic_task(spacing=10 + 60)
    def doit_with_tocks(self, context: Any) -> None:
        self.called["tocks"] += 1


@periodic_task
def ext1(self: Any, context: Any) -> None:
    self.called["ext1"] += 1


@periodic_task(spacing=70)
def ext2(self: Any, context: Any) -> None:
    self.called["ext2"] += 1


@pytest.mark.parametrize("jitter", [0.0, 0.999])
def test_called_thrice(caplog: pytest.LogCaptureFixture, jitter: float) -> None:
    clock = ManualClock(start=340)
    serv = AService(host="h", clock=clock, periodic_jitter=lambda: jitter)
    serv.called.update(ext1=0, ext2=0)
    assert serv.add_periodic_task(ext1)
    assert serv.add_periodic_task(ext2)

    table = [
        (340, {"doit": 0, "urg": 0, "ticks": 1, "tocks": 0, "ext1": 0, "ext2": 0}),
        (400, {"doit": 1, "urg": 1, "ticks": 1, "tocks": 0, "ext1": 1, "ext2": 0}),
        (430, {"doit": 1, "urg": 1, "ticks": 2, "tocks": 1, "ext1": 1, "ext2": 1}),
        (490, {"doit": 2, "urg": 2, "ticks": 3, "tocks": 2, "ext1": 2, "ext2": 2}),
    ]
    for now, expected in table:
        clock.set(now)
        serv.run_periodic_tasks(None)
        assert serv.called == expected, f"at {now}"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert errors[0].getMessage() == "Error during AService.crashit"


def test_called_correct() -> None:
    class S(Manager):
        count = 0

        @periodic_task(spacing=9)
        def nine(self, context: Any) -> None:
            self.count += 1

    clock = ManualClock(start=0)
    serv = make(S, clock)
    for i in range(200):
        clock.set(i)
        serv.run_periodic_tasks(None)
        assert serv.count == int(i / 9), f"at offset {i}"


def test_raises() -> None:
    class S(Manager):
        @periodic_task(run_immediately=True)
        def crashit(self, context: Any) -> None:
            raise ValueError("boom")

        @periodic_task(run_immediately=True)
        def after(self, context: Any) -> None:
            raise AssertionError("never reached: raise_on_error aborts the pass")

    serv = make(S, ManualClock())
    with pytest.raises(ValueError, match="boom"):
        serv.run_periodic_tasks(None, raise_on_error=True)
    assert serv.periodic_last_run["after"] is None


def test_base_exceptions_are_isolated_too() -> None:
    class S(Manager):
        ran = False

        @periodic_task(run_immediately=True)
        def exits(self, context: Any) -> None:
            raise SystemExit(3)

        @periodic_task(run_immediately=True)
        def after(self, context: Any) -> None:
            self.ran = True

    serv = make(S, ManualClock())
    serv.run_periodic_tasks(None)
    assert serv.ran


def test_name() -> None:
    class S(Manager):
        @periodic_task(name="better-name")
        def tick(self, context: Any) -> None:
            pass

        @periodic_task
        def tock(self, context: Any) -> None:
            pass

    @periodic_task(name="another-name")
    def foo(self: Any, context: Any) -> None:
        pass

    serv = make(S, ManualClock())
    serv.add_periodic_task(foo)
    assert set(serv.periodic_last_run) == {"better-name", "tock", "another-name"}


def test_ticks_between_runs_is_refused() -> None:
    with pytest.raises(InvalidPeriodicTaskArg):
        periodic_task(ticks_between_runs=1)  # type: ignore[call-overload]


# -- ManagerMetaTestCase ---------------------------------------------------------------


def test_meta() -> None:
    class S(Manager):
        @periodic_task
        def foo(self, context: Any) -> None:
            pass

        @periodic_task(spacing=4)
        def bar(self, context: Any) -> None:
            pass

        @periodic_task(enabled=False)
        def baz(self, context: Any) -> None:
            pass

    assert [attr for attr, _ in S._periodic_class_tasks] == ["foo", "bar"]
    serv = make(S, ManualClock())
    assert serv.periodic_spacing == {"foo": DEFAULT_INTERVAL, "bar": 4}
    assert "baz" not in serv.periodic_spacing

    @periodic_task
    def added(self: Any, context: Any) -> None:
        pass

    serv.add_periodic_task(added)
    assert len(serv.periodic_spacing) == 3
    assert serv.periodic_spacing["added"] == DEFAULT_INTERVAL


# -- ManagerTestCase -------------------------------------------------------------------


def test_periodic_tasks_with_idle() -> None:
    class S(Manager):
        @periodic_task(spacing=200)
        def task(self, context: Any) -> None:
            pass

    serv = make(S, ManualClock())
    assert serv.run_periodic_tasks(None) == pytest.approx(60)


def test_periodic_tasks_constant() -> None:
    class S(Manager):
        @periodic_task(spacing=0)
        def task(self, context: Any) -> None:
            pass

    serv = make(S, ManualClock())
    assert serv.run_periodic_tasks(None) == pytest.approx(60)


def test_periodic_tasks_idle_calculation() -> None:
    class S(Manager):
        runs = 0

        @periodic_task(spacing=10)
        def task(self, context: Any) -> None:
            self.runs += 1

    clock = ManualClock(start=100)
    serv = make(S, clock)
    clock.set(105)
    assert serv.run_periodic_tasks(None) == pytest.approx(5)
    assert serv.runs == 0
    assert serv.periodic_last_run["task"] == 100
    clock.set(110)
    assert serv.run_periodic_tasks(None) == pytest.approx(10)
    assert serv.runs == 1
    assert serv.periodic_last_run["task"] == 110


def test_periodic_tasks_immediate_runs_now() -> None:
    class S(Manager):
        runs = 0

        @periodic_task(spacing=10, run_immediately=True)
        def task(self, context: Any) -> None:
            self.runs += 1

    clock = ManualClock(start=100)
    serv = make(S, clock)
    assert serv.periodic_last_run == {"task": None}
    assert serv.run_periodic_tasks(None) == pytest.approx(10)
    assert serv.runs == 1
    assert serv.periodic_last_run["task"] == 100
    clock.set(105)
    assert serv.run_periodic_tasks(None) == pytest.approx(5)
    assert serv.runs == 1


def test_periodic_tasks_disabled() -> None:
    class S(Manager):
        @periodic_task(spacing=-1)
        def task(self, context: Any) -> None:
            self.fail_loudly()

        def fail_loudly(self) -> None:
            raise AssertionError("a negative spacing never runs")

    serv = make(S, ManualClock())
    assert serv.periodic_spacing == {}
    assert serv.run_periodic_tasks(None) == pytest.approx(60)


@pytest.mark.parametrize("run_external", [True, False])
def test_external_running_here(run_external: bool) -> None:
    class S(Manager):
        runs = 0

        @periodic_task(spacing=5, external_process_ok=True, run_immediately=True)
        def task(self, context: Any) -> None:
            self.runs += 1

    serv = make(S, ManualClock(), run_external_periodic_tasks=run_external)
    assert len(serv.periodic_spacing) == 1  # registered either way
    idle = serv.run_periodic_tasks(None)
    assert serv.runs == (1 if run_external else 0)
    # a skipped external task does not count in the idle time either
    assert idle == pytest.approx(5 if run_external else 60)


@pytest.mark.parametrize(
    ("rand", "now", "last", "spacing", "expected"),
    [
        (0.0, 19, 10, 7, 17),
        (0.0, 28, 13, 7, 27),
        (0.0, 1841, 781, 88, 1837),
        (0.0, 1000, None, 7, 1000),
        (1.0, 1300, 1000, 200, 1210),
        (0.5, 1300, 1000, 200, 1205),
    ],
)
def test_nearest_boundary(
    rand: float, now: float, last: float | None, spacing: float, expected: float
) -> None:
    assert nearest_boundary(last, spacing, now, lambda: rand) == expected


def test_jitter_only_from_spacing_20() -> None:
    assert nearest_boundary(0, 19, 19, lambda: 0.999) == 19
    assert nearest_boundary(0, 20, 20, lambda: 0.999) == 20
    assert nearest_boundary(0, 40, 40, lambda: 0.999) == 41


def test_last_run_is_set_before_the_body_runs() -> None:
    seen: list[float | None] = []

    class S(Manager):
        @periodic_task(spacing=10, run_immediately=True)
        def task(self, context: Any) -> None:
            seen.append(self.periodic_last_run["task"])

    serv = make(S, ManualClock(start=50))
    serv.run_periodic_tasks(None)
    assert seen == [50]


def test_direct_call_does_not_touch_bookkeeping() -> None:
    class S(Manager):
        runs = 0

        @periodic_task(spacing=10)
        def task(self, context: Any) -> None:
            self.runs += 1

    serv = make(S, ManualClock(start=7))
    serv.task(None)
    assert serv.runs == 1
    assert serv.periodic_last_run["task"] == 7


def test_task_order_inherited_then_own_then_runtime() -> None:
    order: list[str] = []

    class Parent(Manager):
        @periodic_task(run_immediately=True)
        def a(self, context: Any) -> None:
            order.append("a")

        @periodic_task(run_immediately=True)
        def b(self, context: Any) -> None:
            order.append("b")

    class Child(Parent):
        @periodic_task(run_immediately=True)
        def c(self, context: Any) -> None:
            order.append("c")

    @periodic_task(run_immediately=True)
    def d(self: Any, context: Any) -> None:
        order.append("d")

    serv = make(Child, ManualClock())
    serv.add_periodic_task(d)
    serv.run_periodic_tasks(None)
    assert order == ["a", "b", "c", "d"]


# -- the two oslo quirks we fix on purpose ----------------------------------------------


def test_override_replaces_parent_task() -> None:
    ran: list[str] = []

    class Parent(Manager):
        @periodic_task(spacing=10, run_immediately=True)
        def poll(self, context: Any) -> None:
            ran.append("parent")

        @periodic_task(spacing=10, run_immediately=True)
        def other(self, context: Any) -> None:
            ran.append("other")

    class Child(Parent):
        @periodic_task(spacing=3, run_immediately=True)
        def poll(self, context: Any) -> None:
            ran.append("child")

    class Quiet(Parent):
        def poll(self, context: Any) -> None:
            ran.append("quiet")

    child = make(Child, ManualClock())
    assert child.periodic_spacing == {"poll": 3, "other": 10}  # parent's position kept
    child.run_periodic_tasks(None)
    assert ran == ["child", "other"]

    ran.clear()
    quiet = make(Quiet, ManualClock())
    assert list(quiet.periodic_spacing) == ["other"]
    quiet.run_periodic_tasks(None)
    assert ran == ["other"]


def test_bookkeeping_is_per_instance() -> None:
    class S(Manager):
        @periodic_task(spacing=10)
        def task(self, context: Any) -> None:
            pass

    @periodic_task(spacing=5)
    def extra(self: Any, context: Any) -> None:
        pass

    clock = ManualClock(start=0)
    first = make(S, clock)
    clock.set(100)
    second = make(S, clock)
    first.add_periodic_task(extra)
    assert first.periodic_last_run == {"task": 0, "extra": 100}
    assert second.periodic_last_run == {"task": 100}  # origin: its own creation time
    assert [attr for attr, _ in S._periodic_class_tasks] == ["task"]  # the class is untouched
    clock.set(110)
    first.run_periodic_tasks(None)
    assert second.periodic_last_run == {"task": 100}
    second.set_periodic_spacing("task", 30)
    assert first.periodic_spacing["task"] == 10


def test_runtime_task_rules() -> None:
    serv = make(Manager, ManualClock())

    def plain(self: Any, context: Any) -> None:
        pass

    with pytest.raises(ValueError, match="not decorated"):
        serv.add_periodic_task(plain)
    assert serv.add_periodic_task(periodic_task(enabled=False)(plain)) is False
    assert serv.add_periodic_task(periodic_task(spacing=-5)(plain)) is False
    assert serv.add_periodic_task(periodic_task(name="x")(plain)) is True
    with pytest.raises(ValueError, match="already registered"):
        serv.add_periodic_task(periodic_task(name="x")(plain))


def test_bound_method_of_another_object_can_be_added() -> None:
    class Driver:
        runs = 0

        @periodic_task(spacing=1, run_immediately=True)
        def poll(self, context: Any) -> None:
            self.runs += 1

    driver = Driver()
    serv = make(Manager, ManualClock())
    serv.add_periodic_task(driver.poll)
    serv.run_periodic_tasks(None)
    assert driver.runs == 1
