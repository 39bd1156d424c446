"""The scheduler: places each new volume on the up backend with the most free room.

`SchedulerManager` is Cinder's scheduler manager and HostManager in small. Volume
managers fan their capability reports out to it (`update_service_capabilities`);
it keeps the newest report per backend in a `CapabilityStore`. For each request
it lists the volume services in the services table, keeps the backends that are
up (heartbeat within ``service_down_time``), enabled and reported, and picks the
one with the most free capacity that fits the volume (ties: the lowest backend
name). It then *reserves* the size locally, so a burst of requests arriving
before the next reports spreads out instead of piling onto one backend, and
asks that backend's volume manager to create the volume.

How it reaches volume managers is injected: ``volume_rpc(backend)`` returns a
proxy whose ``create_volume(volume_id, size_gb)`` returns a future. Without
one, it uses the ``directory`` a node offers its managers (service discovery:
``directory.proxy("volume", host=backend)``, a remote proxy), and with neither
`local_volume_rpc` (volume managers in this process). The scheduler waits for the
answer at most ``rpc_timeout`` seconds, so a stuck backend cannot hold its
mailbox forever.

Startup, simplified from Cinder: Cinder's scheduler sleeps (up to 60 s) until
every up backend has reported before it schedules anything. An actor cannot
sleep for that: the reports it waits for arrive through its own mailbox. So
this scheduler never waits; it schedules on what it knows, logs a warning
while some up backend has not reported yet, and offers `capabilities_reported`
for whoever starts it to poll before sending work. A local reservation lasts
until the backend's next report (a failed create is corrected by the report
that follows, or the next periodic one).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import pykka

from actors import CapabilityStore, Manager
from actors.db import ServiceRecord, select
from actors.demo.drivers import check_request
from actors.demo.errors import BackendTimeout, NoValidBackend
from actors.demo.volume import VolumeManager, local_volume_rpc

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Mapping

    from actors import BackendState

__all__ = ["SchedulerManager"]

logger = logging.getLogger(__name__)


class _Directory(Protocol):
    def proxy(self, topic: str, host: str | None = None) -> Any: ...


def _proxy_through(directory: _Directory, backend: str) -> Any:
    return directory.proxy(VolumeManager.TOPIC, host=backend)


class SchedulerManager(Manager):
    """Keeps the volume backends' capabilities and places volumes on them.

    Args:
        host: the host it serves (see `Manager`).
        volume_rpc: ``volume_rpc(backend)`` returns a proxy of that backend's
            volume manager (default: through `directory`, else `local_volume_rpc`).
        directory: a node's service discovery, anything with
            ``proxy(topic, host=...)``; used when `volume_rpc` is not given.
        service_down_time: seconds without a heartbeat after which a volume
            service is down (Cinder's 60).
        rpc_timeout: seconds to wait for a volume manager's answer.
        **kwargs: passed on to `Manager` (``db``, ``clock``, ...).
    """

    TOPIC = "scheduler"
    RPC_API_VERSION = "1.0"
    DEPENDENCIES: ClassVar[tuple[str, ...]] = ("directory", "service_down_time", "rpc_timeout")

    def __init__(
        self,
        host: str | None = None,
        *,
        volume_rpc: Callable[[str], Any] | None = None,
        directory: _Directory | None = None,
        service_down_time: float = 60.0,
        rpc_timeout: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(host=host, **kwargs)
        if volume_rpc is None and directory is not None:
            volume_rpc = functools.partial(_proxy_through, directory)
        self.volume_rpc: Callable[[str], Any] = volume_rpc or local_volume_rpc
        self.service_down_time = service_down_time
        self.rpc_timeout = rpc_timeout
        self.store = CapabilityStore(clock=self.clock)

    # -- the receiving side ----------------------------------------------------------

    def update_service_capabilities(
        self,
        service_name: str,
        host: str,
        capabilities: Mapping[str, Any] | None,
        cluster_name: str | None = None,
        timestamp: dt.datetime | None = None,
    ) -> None:
        """Keep a backend's report, unless it is older than the one kept (a fan-out cast)."""
        self.store.update_service_capabilities(
            service_name, host, capabilities, cluster_name, timestamp
        )

    # -- what it believes ------------------------------------------------------------

    def backends(self) -> list[dict[str, Any]]:
        """Return the usable backends with their believed capacity, reservations included.

        Each is ``{"host", "free_capacity_gb", "total_capacity_gb",
        "allocated_capacity_gb", "updated"}``, where ``host`` is the backend
        (cluster or host); sorted by it.
        """
        states, _ = self._refresh()
        return [
            {
                "host": state.backend_id,
                "free_capacity_gb": state.free_capacity_gb,
                "total_capacity_gb": state.total_capacity_gb,
                "allocated_capacity_gb": state.allocated_capacity_gb,
                "updated": state.updated,
            }
            for state in sorted(states, key=lambda s: s.backend_id)
        ]

    def capabilities_reported(self) -> bool:
        """Return whether there is a usable backend and every up backend has reported."""
        states, silent = self._refresh()
        return bool(states) and not silent

    # -- placement -------------------------------------------------------------------

    def create_volume(self, volume_id: str, size_gb: int) -> dict[str, Any]:
        """Place a volume on the up backend with the most free capacity and create it there.

        Returns:
            The volume as its manager returned it, plus ``"backend"``: where it
            was placed.

        Raises:
            InvalidVolume: a bad id or size.
            NoValidBackend: no up backend has `size_gb` free; nothing was created.
            BackendTimeout: the chosen backend did not answer within ``rpc_timeout``
                (the volume may or may not exist).
            VolumeError: the chosen backend refused (its error, unchanged).
        """
        check_request(volume_id, size_gb)
        chosen = self._choose(volume_id, size_gb)
        backend = chosen.backend_id
        manager = self.volume_rpc(backend)  # before reserving: a lookup may fail
        self.store.consume(backend, size_gb)
        logger.info(
            "%s: placing volume %s (%d GB) on %s (%s GB free after it)",
            self,
            volume_id,
            size_gb,
            backend,
            chosen.free_capacity_gb,
        )
        future = manager.create_volume(volume_id, size_gb)
        try:
            result = future.get(timeout=self.rpc_timeout)
        except pykka.Timeout as exc:
            msg = (
                f"backend {backend!r} did not answer within {self.rpc_timeout:g} s creating "
                f"volume {volume_id!r}; it may or may not exist"
            )
            raise BackendTimeout(msg) from exc
        volume = dict(result)
        volume["backend"] = backend
        return volume

    def _choose(self, volume_id: str, size_gb: int) -> BackendState:
        states, silent = self._refresh()
        if silent:
            logger.warning(
                "%s: scheduling %s before backends %s reported their capabilities",
                self,
                volume_id,
                ", ".join(sorted(silent)),
            )
        fitting = [
            s for s in states if s.free_capacity_gb is not None and s.free_capacity_gb >= size_gb
        ]
        if not fitting:
            seen = ", ".join(
                f"{s.backend_id}={s.free_capacity_gb:g} GB"
                for s in sorted(states, key=lambda s: s.backend_id)
                if s.free_capacity_gb is not None
            )
            msg = (
                f"no valid backend for volume {volume_id!r} of {size_gb} GB: "
                f"free space of the up backends: {seen or 'none reported'}"
            )
            raise NoValidBackend(msg)
        return min(fitting, key=lambda s: (-(s.free_capacity_gb or 0.0), s.backend_id))

    def _refresh(self) -> tuple[list[BackendState], set[str]]:
        """Run a backends pass; return the usable backends and the up ones without reports."""
        query = (
            select(ServiceRecord)
            .where(ServiceRecord.topic == VolumeManager.TOPIC)
            .order_by(ServiceRecord.id)
        )
        with self.db.session() as session:
            services = list(session.scalars(query))
        states = self.store.backends(services, self.service_down_time, self.clock.utcnow())
        return states, set(self.store.no_capabilities)
