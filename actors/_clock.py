"""The clock: where the runtime's time comes from.

Everything that schedules (periodic tasks, the timer actor, heartbeats) asks a
`Clock`, never :mod:`time` directly, so tests can step time by hand with a
`ManualClock` and never sleep.

Example:
    >>> clock = ManualClock(start=100.0)
    >>> clock.monotonic()
    100.0
    >>> clock.advance(5)
    >>> clock.monotonic()
    105.0
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "MonotonicClock"]

_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@runtime_checkable
class Clock(Protocol):
    """What the runtime needs to know about time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (scheduling time)."""
        ...

    def utcnow(self) -> dt.datetime:
        """The wall-clock time, timezone-aware UTC (for rows and reports)."""
        ...

    def time_until(self, deadline: float) -> float | None:
        """How long a timer should wait for `deadline` (a `monotonic` value).

        Returns ``None`` when time does not move by itself (a manual clock):
        then only an explicit ``advance`` runs due work.
        """
        ...


class MonotonicClock:
    """The real clock: :func:`time.monotonic` and the system's UTC time."""

    def monotonic(self) -> float:
        """Return :func:`time.monotonic`."""
        return time.monotonic()

    def utcnow(self) -> dt.datetime:
        """Return the current UTC time."""
        return dt.datetime.now(dt.UTC)

    def time_until(self, deadline: float) -> float:
        """Return the seconds left until `deadline`, never negative."""
        return max(0.0, deadline - time.monotonic())


class ManualClock:
    """A clock that moves only when told to: for tests.

    `utcnow()` moves in step with `monotonic()`, from a fixed epoch, so
    heartbeat timestamps and liveness checks are driven by the same hand.

    Args:
        start: the initial `monotonic()` reading.
        epoch: the `utcnow()` reading when `monotonic()` equals `start`.
    """

    def __init__(self, start: float = 0.0, epoch: dt.datetime = _EPOCH) -> None:
        self._lock = threading.Lock()
        self._start = start
        self._now = start
        self._epoch = epoch

    def monotonic(self) -> float:
        """Return the current manual reading."""
        return self._now

    def utcnow(self) -> dt.datetime:
        """Return the epoch plus the time advanced so far."""
        return self._epoch + dt.timedelta(seconds=self._now - self._start)

    def time_until(self, deadline: float) -> None:
        """Return ``None``: a manual clock never wakes a timer by itself."""
        return

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` (which must not be negative)."""
        if seconds < 0:
            msg = f"time cannot go backwards (advance by {seconds})"
            raise ValueError(msg)
        with self._lock:
            self._now += seconds

    def set(self, now: float) -> None:
        """Move time forward to the reading `now`."""
        with self._lock:
            if now < self._now:
                msg = f"time cannot go backwards ({now} < {self._now})"
                raise ValueError(msg)
            self._now = now


DEFAULT_CLOCK: Clock = MonotonicClock()
"""The clock used when none is injected."""
