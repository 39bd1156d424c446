"""Helpers shared by the demo's tests."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from actors.db import ServiceRecord, select
from actors.demo import MemoryDriver, SchedulerManager

if TYPE_CHECKING:
    from actors import ManualClock
    from actors.db import Database


def heartbeat(db: Database, clock: ManualClock, *hosts: str, topic: str = "volume") -> None:
    """Write each host's services row as its heartbeat would: ``updated_at`` = now."""
    with db.begin() as session:
        for host in hosts:
            query = select(ServiceRecord).where(
                ServiceRecord.host == host, ServiceRecord.topic == topic
            )
            row = session.scalars(query).one_or_none()
            if row is None:
                row = ServiceRecord(host=host, binary=f"actors-{topic}", topic=topic)
                session.add(row)
            row.updated_at = clock.utcnow()
            row.report_count = (row.report_count or 0) + 1


class RecordingScheduler(SchedulerManager):
    """A scheduler that also remembers every report it received, and can be held."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.received: list[dict[str, Any]] = []

    def update_service_capabilities(self, *args: Any, **report: Any) -> None:
        self.received.append(report)
        super().update_service_capabilities(*args, **report)

    def reports(self) -> list[dict[str, Any]]:
        return list(self.received)

    def hold(self, release: threading.Event) -> None:
        """Keep the mailbox busy until `release` is set (to queue messages behind it)."""
        assert release.wait(timeout=10)


class SwitchableDriver(MemoryDriver):
    """A memory driver that reads as not initialized while `broken` is set."""

    def __init__(self, broken: threading.Event, capacity_gb: float = 100) -> None:
        self.broken = broken
        self._ready = False
        super().__init__(capacity_gb)

    @property
    def initialized(self) -> bool:
        return self._ready and not self.broken.is_set()

    @initialized.setter
    def initialized(self, value: bool) -> None:
        self._ready = value


class BrokenSetupDriver(MemoryDriver):
    """A memory driver whose setup always fails."""

    def do_setup(self) -> None:
        raise OSError("backend unreachable")
