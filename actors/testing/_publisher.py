"""A capability publisher for tests: it records every report, and may pass it on.

Example:
    >>> import datetime as dt
    >>> from actors import CapabilityReport
    >>> publisher = RecordingPublisher()
    >>> publisher.publish(CapabilityReport("volume", "h1", {"free_capacity_gb": 5}, None,
    ...                                    dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
    >>> [(r.host, r.capabilities["free_capacity_gb"]) for r in publisher.reports]
    [('h1', 5)]
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors._capabilities import CapabilityPublisher, CapabilityReport

__all__ = ["RecordingPublisher"]


class RecordingPublisher:
    """Records the capability reports managers publish (thread-safe).

    Args:
        forward: another publisher to hand each report to after recording it
            (e.g. `actors.LocalPublisher` so local schedulers receive it too).
    """

    def __init__(self, forward: CapabilityPublisher | None = None) -> None:
        self.forward = forward
        self.resets = 0
        self._reports: list[CapabilityReport] = []
        self._changed = threading.Condition()

    @property
    def reports(self) -> list[CapabilityReport]:
        """A copy of the reports published so far, oldest first."""
        with self._changed:
            return list(self._reports)

    def publish(self, report: CapabilityReport) -> None:
        """Record `report`, then forward it."""
        with self._changed:
            self._reports.append(report)
            self._changed.notify_all()
        if self.forward is not None:
            self.forward.publish(report)

    def reset(self) -> None:
        """Count the reset (SIGHUP) and pass it on."""
        with self._changed:
            self.resets += 1
        if self.forward is not None:
            self.forward.reset()

    def wait_for(self, count: int, *, timeout: float) -> list[CapabilityReport]:
        """Wait until at least `count` reports were published; return them all.

        Raises:
            TimeoutError: fewer than `count` arrived within `timeout` seconds.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._reports) >= count, timeout):
                msg = f"{len(self._reports)} report(s) published, {count} expected"
                raise TimeoutError(msg)
            return list(self._reports)

    def clear(self) -> None:
        """Forget the reports recorded so far."""
        with self._changed:
            self._reports.clear()
