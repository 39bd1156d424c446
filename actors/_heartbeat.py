"""Heartbeat writes on their own thread, so a slow database never holds a mailbox.

The manager's heartbeat task still runs in its mailbox (it must ask
``is_working()`` there, between the manager's other messages), but it only
hands the beat to a `HeartbeatWriter` and waits for the write at most a bound.
A write that takes longer goes on in the writer's thread; beats that come while
it is in flight are skipped, not queued, so an outage costs the mailbox at most
one bounded wait per write attempt and no memory.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable

__all__ = ["HeartbeatWriter"]

logger = logging.getLogger(__name__)


class HeartbeatWriter:
    """One thread that writes the heartbeats it is handed, one at a time.

    Args:
        write: writes one heartbeat stamped with the given time; runs in the
            writer's thread and handles its own errors.
        name: the thread's name (and the log lines').
    """

    def __init__(self, write: Callable[[dt.datetime], None], *, name: str) -> None:
        self._write = write
        self.name = name
        self._cond = threading.Condition()
        self._pending: dt.datetime | None = None
        self._busy = False
        self._finished = 0
        self._stopped = False
        self._stall_logged = False
        self._thread: threading.Thread | None = None
        self.skipped = 0
        """Beats skipped because the previous write was still in flight."""

    def beat(self, now: dt.datetime, *, wait: float) -> bool:
        """Hand over a heartbeat stamped `now`; wait at most `wait` seconds for it.

        Returns whether it was written (or failed) within `wait`. A beat that
        finds the previous write still in flight is skipped: it returns ``False``
        at once.
        """
        with self._cond:
            if self._stopped:
                return False
            if self._busy or self._pending is not None:
                self.skipped += 1
                if not self._stall_logged:
                    self._stall_logged = True
                    logger.warning(
                        "%s: the previous heartbeat is still being written; skipping beats "
                        "until it ends (the manager keeps serving)",
                        self.name,
                    )
                return False
            self._pending = now
            target = self._finished + 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._finished >= target, wait)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no heartbeat is pending or being written; for tests and tools."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy and self._pending is None, timeout)

    def stop(self, timeout: float) -> None:
        """Stop the thread after the write in flight, if any (waiting at most `timeout`)."""
        with self._cond:
            self._stopped = True
            self._pending = None
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._stopped)
                if self._pending is None:
                    return  # stopped
                now, self._pending = self._pending, None
                self._busy = True
            try:
                self._write(now)
            except Exception:
                logger.exception("%s: heartbeat write failed", self.name)
            finally:
                with self._cond:
                    self._busy = False
                    self._finished += 1
                    self._stall_logged = False
                    self._cond.notify_all()
