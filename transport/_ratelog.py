"""Counting refusals, and logging them at most once per interval.

A peer can send bad or refused requests far faster than a log can take one
line each (100,000 bad frames once wrote 17 MiB of log). `RefusalLog` counts
every refusal by reason and logs:

* the first refusal after a quiet interval at once, with its detail, so a
  single bad frame is still visible right away;
* then at most one summary line per interval: how many of each reason, with
  one example each.

Totals since start stay readable through `totals()` (the bridge's `stats()`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["RefusalLog"]


class RefusalLog:
    """Counts refusals by reason and logs them, rate-limited; thread-safe.

    Args:
        logger: where the lines go.
        interval: seconds between summary lines.
        clock: monotonic seconds (tests pass a manual clock).
        what: the summary line's verb ("refused in the last 10 s: ...").
        on_pending: called (outside the lock) when a summary becomes due
            later, so that whoever calls `flush` can plan to wake up.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        what: str = "refused",
        on_pending: Callable[[], None] | None = None,
    ) -> None:
        self._logger = logger
        self._what = what
        self._on_pending = on_pending
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._totals: Counter[str] = Counter()
        self._pending: Counter[str] = Counter()
        self._examples: dict[str, str] = {}
        self._quiet_until = float("-inf")  # before this, lines are summarised
        self.pending = False
        """Whether a summary is waiting (read without the lock: a hint)."""

    def note(
        self,
        reason: str,
        detail: str,
        *args: object,
        level: int = logging.WARNING,
        exc_info: BaseException | None = None,
    ) -> None:
        """Count one refusal; log it now if the log was quiet, else later in a summary.

        `detail % args` describes it; it is formatted (and cut to 300 characters)
        only when it is logged or kept as the interval's example, so a flood of
        refusals costs a count each. `exc_info` goes with the line logged at once.
        """
        now = self._clock()
        became_pending = False
        with self._lock:
            self._totals[reason] += 1
            if now >= self._quiet_until and not self._pending:
                self._quiet_until = now + self._interval
                log_now = True
            else:
                self._pending[reason] += 1
                if reason not in self._examples:
                    self._examples[reason] = _format(detail, args)
                became_pending = not self.pending
                self.pending = True
                log_now = False
        if not log_now and became_pending and self._on_pending is not None:
            self._on_pending()
        if log_now:
            self._logger.log(level, "%s: %s", reason, _format(detail, args), exc_info=exc_info)

    def flush(self) -> float | None:
        """Write the summary if its interval has passed.

        Returns:
            seconds until the next summary is due, or None when nothing is pending.
        """
        now = self._clock()
        with self._lock:
            if not self._pending:
                return None
            if now < self._quiet_until:
                return self._quiet_until - now
            pending, examples = self._pending, self._examples
            self._pending, self._examples = Counter(), {}
            self.pending = False
            self._quiet_until = now + self._interval
        parts = "; ".join(
            f"{count} {reason} (e.g. {examples[reason]})" for reason, count in pending.items()
        )
        self._logger.warning("%s in the last %.0f s: %s", self._what, self._interval, parts)
        return None

    def totals(self) -> dict[str, int]:
        """Every refusal counted since start, by reason."""
        with self._lock:
            return dict(self._totals)


def _format(detail: str, args: tuple[object, ...]) -> str:
    text = detail % args if args else detail
    return text if len(text) <= 300 else text[:297] + "..."
