"""No silent escape: what would leave the simulation fails loudly while actor code runs.

While a simulated handler or constructor runs (on the simulation's thread),
starting a thread, sleeping, opening a socket (the ``socket.__new__`` audit
event; ZeroMQ sockets too) or reading the runtime's real clock
(`actors._clock.DEFAULT_CLOCK`) raises `SimulationEscape` naming what escaped.
The error is also kept by the scheduler, which re-raises it after the step, so
a handler that swallows it cannot hide it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from actors import _clock
from actors.testing._errors import SimulationEscape

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from actors.testing._scheduler import Scheduler

__all__ = ["guard"]

_active: list[tuple[Scheduler, int]] = []
_hook_installed = False


def _offender() -> Scheduler | None:
    if not _active:
        return None
    scheduler, thread = _active[-1]
    if threading.get_ident() != thread or not scheduler.in_user_code:
        return None
    return scheduler


def _escape(scheduler: Scheduler, what: str) -> SimulationEscape:
    proc = scheduler.current
    where = f"{proc.name} handling {proc.doing}" if proc is not None else "an actor's constructor"
    exc = SimulationEscape(
        f"{what} in {where} while a simulation runs: it would escape the simulated "
        "scheduler and make the run nondeterministic (use the simulation's clock, "
        "timers, directory and actors instead)"
    )
    if scheduler.escape is None:
        scheduler.escape = exc
    return exc


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.__new__" and _active:
        scheduler = _offender()
        if scheduler is not None:
            raise _escape(scheduler, "a real socket was opened")


def _guarded(original: Callable[..., Any], what: Callable[..., str]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        scheduler = _offender()
        if scheduler is not None:
            raise _escape(scheduler, what(*args, **kwargs))
        return original(*args, **kwargs)

    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    return wrapper


@contextlib.contextmanager
def guard(scheduler: Scheduler) -> Iterator[None]:
    """Make escapes from `scheduler`'s actor code fail while the block runs."""
    global _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)
        _hook_installed = True
    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, what: Callable[..., str]) -> None:
        original = getattr(owner, name)
        saved.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, _guarded(original, what))

    first = not _active
    entry = (scheduler, threading.get_ident())
    _active.append(entry)
    try:
        if first:
            patch(threading.Thread, "start", lambda t: f"a thread ({t.name}) was started")
            patch(time, "sleep", lambda s: f"time.sleep({s!r}) was called")
            clock = _clock.DEFAULT_CLOCK
            for name in ("monotonic", "utcnow", "time_until"):
                patch(clock, name, lambda *a, _n=name: f"the wall clock (Clock.{_n}) was read")
            with contextlib.suppress(ImportError):
                import zmq  # noqa: PLC0415

                patch(zmq.Context, "socket", lambda *a, **k: "a ZeroMQ socket was opened")
        yield
    finally:
        _active.remove(entry)
        for owner, name, before in reversed(saved):
            if before is _MISSING:
                with contextlib.suppress(AttributeError):
                    delattr(owner, name)
            else:
                setattr(owner, name, before)


_MISSING = object()
