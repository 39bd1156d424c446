"""Periodic tasks, with oslo.service's semantics and two of its quirks fixed.

Decorate a manager method with `periodic_task` and the timer actor runs it
inside the manager's mailbox when it is due::

    class VolumeManager(Manager):
        @periodic_task(spacing=10, run_immediately=True)
        def report_usage(self, context):
            ...

What follows oslo.service (``oslo_service/periodic_task.py``):

* ``@periodic_task`` and ``spacing=0`` both mean every 60 s (`DEFAULT_INTERVAL`);
  a negative spacing or ``enabled=False`` means the task is never registered.
* ``name=`` sets the task's key (default: the function's name).
* A non-immediate task first runs `spacing` after its origin; an immediate one
  on the first pass.
* After a run, the task's last run is set *before* its body runs, to the
  boundary aligned with its original phase plus 0-5 % jitter (`nearest_boundary`).
* `run_periodic_tasks` returns the idle time: the smallest of 60 s, each task's
  spacing and each not-yet-due task's time to due.
* A task that raises (any `BaseException`) is logged as ``Class.task`` and the
  pass goes on, unless ``raise_on_error`` is set.
* ``external_process_ok`` tasks are skipped when ``run_external_periodic_tasks``
  is false.

What differs, on purpose:

* **Overriding replaces.** A subclass that overrides a periodic method replaces
  the parent's task (in the parent's position); oslo keeps running the parent's
  function too. Overriding with an undecorated method removes the task.
* **Bookkeeping is per instance**, tasks added at run time included: oslo's
  `add_periodic_task` mutates class-level lists, and its last-run origin is the
  import time of the module. Here the origin is the instance's creation time (or
  the time the task was added) on the instance's clock.
"""

from __future__ import annotations

import inspect
import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from actors._clock import Clock

__all__ = [
    "DEFAULT_INTERVAL",
    "InvalidPeriodicTaskArg",
    "PeriodicTasks",
    "TaskSpec",
    "nearest_boundary",
    "periodic_task",
]

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 60.0
"""The spacing of a task decorated without one (or with ``spacing=0``), in seconds."""

_SPEC_ATTR = "_actors_periodic_task"

F = TypeVar("F", bound="Callable[..., Any]")


class InvalidPeriodicTaskArg(ValueError):
    """A `periodic_task` argument that is not supported."""


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """How a periodic task was declared."""

    name: str
    spacing: float
    run_immediately: bool = False
    enabled: bool = True
    external_process_ok: bool = False


@overload
def periodic_task(func: F, /) -> F: ...


@overload
def periodic_task(
    *,
    spacing: float = 0,
    run_immediately: bool = False,
    enabled: bool = True,
    name: str | None = None,
    external_process_ok: bool = False,
) -> Callable[[F], F]: ...


def periodic_task(
    func: Callable[..., Any] | None = None,
    /,
    *,
    spacing: float = 0,
    run_immediately: bool = False,
    enabled: bool = True,
    name: str | None = None,
    external_process_ok: bool = False,
    **unsupported: Any,
) -> Any:
    """Mark a method as a periodic task; works bare or with arguments.

    The function is returned unchanged, with its declaration attached, so it can
    still be called directly (which does not touch the periodic bookkeeping).

    Args:
        func: the function, when used bare (``@periodic_task``).
        spacing: seconds between runs; 0 means `DEFAULT_INTERVAL`, negative never.
        run_immediately: run on the first pass instead of `spacing` after start.
        enabled: ``False`` means the task is never registered.
        name: the task's key (default: the function's ``__name__``).
        external_process_ok: the task may run in another process; it is skipped
            where ``run_external_periodic_tasks`` is false.
        unsupported: oslo's removed ``ticks_between_runs`` lands here and raises.

    Raises:
        InvalidPeriodicTaskArg: for ``ticks_between_runs`` or any unknown argument.

    Example:
        >>> @periodic_task(spacing=5, run_immediately=True)
        ... def poll(self, context):
        ...     pass
        >>> spec = task_spec(poll)
        >>> spec.name, spec.spacing, spec.run_immediately
        ('poll', 5, True)
    """
    if unsupported:
        msg = f"unsupported periodic_task argument(s): {', '.join(sorted(unsupported))}"
        raise InvalidPeriodicTaskArg(msg)

    def decorate(f: F) -> F:
        spec = TaskSpec(
            name=name or f.__name__,
            spacing=spacing,
            run_immediately=run_immediately,
            enabled=enabled,
            external_process_ok=external_process_ok,
        )
        setattr(f, _SPEC_ATTR, spec)
        return f

    if func is not None:
        return decorate(func)
    return decorate


def task_spec(func: object) -> TaskSpec | None:
    """Return the declaration `periodic_task` attached to `func`, if any."""
    spec = getattr(func, _SPEC_ATTR, None)
    return spec if isinstance(spec, TaskSpec) else None


def nearest_boundary(
    last_run: float | None, spacing: float, now: float, rand: Callable[[], float]
) -> float:
    """Return the new last-run time of a task that runs at `now`.

    The boundary aligned with the task's original phase, plus a jitter of up to
    5 % of `spacing`, truncated to whole seconds (so spacings under 20 s get
    none). A task that never ran gets `now`, without jitter.

    Example:
        >>> nearest_boundary(10, 7, now=19, rand=lambda: 0.0)
        17
        >>> nearest_boundary(1000, 200, now=1300, rand=lambda: 0.5)
        1205
    """
    if last_run is None:
        return now
    offset = (now - last_run) % spacing
    jitter = int(spacing * (rand() / 20))
    return now - offset + jitter


def _registrable(spec: TaskSpec, owner: str) -> TaskSpec | None:
    """Apply oslo's registration rules: None when the task is never registered."""
    if spec.spacing < 0:
        logger.info("Skipping periodic task %s.%s: its interval is negative", owner, spec.name)
        return None
    if not spec.enabled:
        logger.info("Skipping periodic task %s.%s: it is disabled", owner, spec.name)
        return None
    if spec.spacing == 0:
        return TaskSpec(
            spec.name,
            DEFAULT_INTERVAL,
            spec.run_immediately,
            spec.enabled,
            spec.external_process_ok,
        )
    return spec


def _collect(cls: type) -> tuple[tuple[str, TaskSpec], ...]:
    """The class's periodic tasks as (attribute, spec): inherited first, overrides in place."""
    found: dict[str, TaskSpec] = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            spec = task_spec(value) if inspect.isfunction(value) else None
            if spec is not None:
                found[attr] = spec
            elif attr in found:
                del found[attr]  # overridden by an undecorated attribute
    tasks = []
    for attr, spec in found.items():
        kept = _registrable(spec, cls.__name__)
        if kept is not None:
            tasks.append((attr, kept))
    return tuple(tasks)


class _Task:
    __slots__ = ("bound", "external_ok", "func", "last_run", "name", "spacing")

    def __init__(self, spec: TaskSpec, func: Callable[..., Any], *, bound: bool, now: float):
        self.name = spec.name
        self.spacing = spec.spacing
        self.external_ok = spec.external_process_ok
        self.func = func
        self.bound = bound
        self.last_run: float | None = None if spec.run_immediately else now


class PeriodicTasks:
    """The periodic-task machinery a `Manager` mixes in.

    Class-level: the decorated methods, collected when a subclass is defined.
    Instance-level: each task's last run and spacing, set up by
    `_init_periodic_tasks` and changed only by this instance.
    """

    _periodic_class_tasks: ClassVar[tuple[tuple[str, TaskSpec], ...]] = ()
    _periodic_clock: Clock
    _periodic_rand: Callable[[], float]
    _periodic_run_external: bool
    _periodic_tasks: list[_Task]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._periodic_class_tasks = _collect(cls)

    def _init_periodic_tasks(
        self,
        clock: Clock,
        *,
        run_external: bool = True,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._periodic_clock = clock
        self._periodic_rand = rand
        self._periodic_run_external = run_external
        now = clock.monotonic()
        self._periodic_tasks = [
            _Task(spec, getattr(self, attr), bound=True, now=now)
            for attr, spec in type(self)._periodic_class_tasks
        ]

    @property
    def periodic_spacing(self) -> Mapping[str, float]:
        """Each registered task's spacing, by task name, in run order."""
        return {task.name: task.spacing for task in self._periodic_tasks}

    @property
    def periodic_last_run(self) -> Mapping[str, float | None]:
        """Each registered task's last run (``None``: not yet run), by task name."""
        return {task.name: task.last_run for task in self._periodic_tasks}

    def add_periodic_task(self, task: Callable[..., Any]) -> bool:
        """Register a `periodic_task`-decorated function on this instance only.

        A plain function is called as ``task(self, context)``, a bound method as
        ``task(context)``. It runs after the class's tasks.

        Returns:
            ``True`` if registered; ``False`` if its spacing is negative or it is
            disabled (the same rules as for class tasks).

        Raises:
            ValueError: `task` is not decorated, or its name is already taken.
        """
        spec = task_spec(getattr(task, "__func__", task))
        if spec is None:
            msg = f"{task!r} is not decorated with @periodic_task"
            raise ValueError(msg)
        kept = _registrable(spec, type(self).__name__)
        if kept is None:
            return False
        if any(existing.name == kept.name for existing in self._periodic_tasks):
            msg = f"a periodic task named {kept.name!r} is already registered"
            raise ValueError(msg)
        bound = inspect.ismethod(task)
        now = self._periodic_clock.monotonic()
        self._periodic_tasks.append(_Task(kept, task, bound=bound, now=now))
        return True

    def set_periodic_spacing(self, name: str, spacing: float) -> None:
        """Change one registered task's spacing on this instance (0 means 60 s).

        Raises:
            KeyError: no task of that name is registered.
            ValueError: `spacing` is negative.
        """
        if spacing < 0:
            msg = f"spacing must not be negative, got {spacing}"
            raise ValueError(msg)
        for task in self._periodic_tasks:
            if task.name == name:
                task.spacing = spacing or DEFAULT_INTERVAL
                return
        raise KeyError(name)

    def run_periodic_tasks(self, context: Any, raise_on_error: bool = False) -> float:
        """Run every task that is due, in order; return the seconds until one may be.

        Runs in the manager's own thread when the timer's tick delivers it.

        Args:
            context: passed to each task.
            raise_on_error: let a task's exception propagate (ending the pass)
                instead of logging it and going on.

        Returns:
            The idle time: ``min(60, each task's spacing, each waiting task's time to due)``.
        """
        now = self._periodic_clock.monotonic
        idle_for = DEFAULT_INTERVAL
        for task in self._periodic_tasks:
            if task.external_ok and not self._periodic_run_external:
                continue
            spacing = task.spacing
            idle_for = min(idle_for, spacing)
            last_run = task.last_run
            if last_run is not None:
                delta = last_run + spacing - now()
                if delta > 0:
                    idle_for = min(idle_for, delta)
                    continue
            task.last_run = nearest_boundary(last_run, spacing, now(), self._periodic_rand)
            probe = getattr(self, "mailbox_probe", None)  # counts runs and failures (metrics)
            try:
                if task.bound:
                    task.func(context)
                else:
                    task.func(self, context)
            except BaseException:
                if probe is not None:
                    probe.task_ran(task.name, failed=True)
                if raise_on_error:
                    raise
                logger.exception("Error during %s.%s", type(self).__name__, task.name)
            else:
                if probe is not None:
                    probe.task_ran(task.name, failed=False)
        return idle_for
