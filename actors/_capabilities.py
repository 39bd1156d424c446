"""Capabilities: what backends report and what schedulers keep of it.

Sending side: a `SchedulerDependentManager` hands a `CapabilityReport` to a
`CapabilityPublisher`. `LocalPublisher` casts it to every scheduler actor in
this process; the bridge adds a publisher that fans out to remote schedulers.

Receiving side: `CapabilityStore`, Cinder's ``HostManager`` in small. It keeps
the newest report per backend (a report older than the stored one is ignored),
lets the scheduler reserve capacity locally (a reservation newer than a report
is not overwritten by it) and only counts backends whose service is up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pykka import ActorDeadError, ActorRegistry
from pykka.messages import ProxyCall

from actors._clock import DEFAULT_CLOCK, Clock
from actors.db import service_is_up

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterable, Mapping

__all__ = [
    "BackendState",
    "CapabilityPublisher",
    "CapabilityReport",
    "CapabilityStore",
    "LocalPublisher",
]

logger = logging.getLogger(__name__)

ALLOWED_SERVICE_NAMES = ("volume", "backup")
"""The service names whose reports a scheduler keeps (Cinder's HostManager)."""


@dataclass(frozen=True, slots=True)
class CapabilityReport:
    """One backend's capabilities, as a scheduler receives them."""

    service_name: str
    host: str
    capabilities: Mapping[str, Any]
    cluster_name: str | None
    timestamp: dt.datetime

    def as_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of a scheduler's ``update_service_capabilities``."""
        return {
            "service_name": self.service_name,
            "host": self.host,
            "capabilities": dict(self.capabilities),
            "cluster_name": self.cluster_name,
            "timestamp": self.timestamp,
        }


class CapabilityPublisher(Protocol):
    """Where a manager's capability reports go."""

    def publish(self, report: CapabilityReport) -> None:
        """Send `report` to every scheduler (a fan-out cast: never waits for them)."""
        ...

    def reset(self) -> None:
        """Drop cached clients and state (SIGHUP)."""
        ...


class LocalPublisher:
    """Casts reports to every running actor in this process whose class has `TOPIC == topic`.

    The cast is ``update_service_capabilities(service_name=, host=, capabilities=,
    cluster_name=, timestamp=)``, as Cinder's scheduler RPC API sends it.
    """

    def __init__(self, topic: str = "scheduler") -> None:
        self.topic = topic

    def schedulers(self) -> list[Any]:
        """The refs of the running scheduler actors."""
        return [
            ref
            for ref in ActorRegistry.get_all()
            if getattr(ref.actor_class, "TOPIC", None) == self.topic
        ]

    def publish(self, report: CapabilityReport) -> None:
        """Cast `report` to every local scheduler; one that just stopped is skipped."""
        message = ProxyCall(
            attr_path=("update_service_capabilities",), args=(), kwargs=report.as_kwargs()
        )
        for ref in self.schedulers():
            try:
                ref.tell(message)
            except ActorDeadError:
                logger.debug("scheduler %s stopped before the capability report", ref)

    def reset(self) -> None:
        """Nothing is cached: the schedulers are looked up at each publish."""


@dataclass
class BackendState:
    """What a scheduler knows of one backend: its last report plus local reservations."""

    backend_id: str
    capabilities: dict[str, Any] = field(default_factory=dict)
    total_capacity_gb: float = 0.0
    free_capacity_gb: float | None = None
    allocated_capacity_gb: float = 0.0
    updated: dt.datetime | None = None

    def update_from_report(self, capabilities: Mapping[str, Any]) -> bool:
        """Apply a report unless a local change is newer than it; return whether applied."""
        timestamp: dt.datetime = capabilities["timestamp"]
        if self.updated is not None and self.updated > timestamp:
            return False
        self.capabilities = dict(capabilities)
        self.total_capacity_gb = float(capabilities.get("total_capacity_gb", 0.0))
        free = capabilities.get("free_capacity_gb")
        self.free_capacity_gb = None if free is None else float(free)
        self.allocated_capacity_gb = float(capabilities.get("allocated_capacity_gb", 0.0))
        self.updated = timestamp
        return True

    def consume(self, size_gb: float, now: dt.datetime) -> None:
        """Reserve `size_gb` locally, until a newer report says otherwise."""
        if self.free_capacity_gb is not None:
            self.free_capacity_gb -= size_gb
        self.allocated_capacity_gb += size_gb
        self.updated = now


class _ServiceRow(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def cluster(self) -> str | None: ...
    @property
    def disabled(self) -> bool: ...
    @property
    def updated_at(self) -> dt.datetime | None: ...


class CapabilityStore:
    """The receiving side of capability reports, owned by one scheduler actor.

    Not thread-safe, and needs not be: it lives inside a scheduler's mailbox.

    Args:
        clock: supplies "now" for reports without a timestamp and for reservations.
        allowed_service_names: reports from other services are ignored.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        allowed_service_names: Iterable[str] = ALLOWED_SERVICE_NAMES,
    ) -> None:
        self.clock = clock or DEFAULT_CLOCK
        self.allowed_service_names = frozenset(allowed_service_names)
        self.service_states: dict[str, dict[str, Any]] = {}
        self.backup_service_states: dict[str, dict[str, Any]] = {}
        self.backend_states: dict[str, BackendState] = {}
        self.no_capabilities: set[str] = set()

    def update_service_capabilities(
        self,
        service_name: str,
        host: str,
        capabilities: Mapping[str, Any] | None,
        cluster_name: str | None = None,
        timestamp: dt.datetime | None = None,
    ) -> bool:
        """Keep a backend's report unless it is older than the one kept; return whether kept."""
        if service_name not in self.allowed_service_names:
            logger.debug("Ignoring %s service update from %s", service_name, host)
            return False
        timestamp = timestamp or self.clock.utcnow()
        report = dict(capabilities or {})
        report["timestamp"] = timestamp
        backend = cluster_name or host
        if service_name == "backup":
            self.backup_service_states[backend] = report
            return True
        stored = self.service_states.get(backend)
        if stored is not None and timestamp < stored["timestamp"]:
            logger.info("Ignoring old capability report from %s.", backend)
            return False
        self.service_states[backend] = report
        self.no_capabilities.discard(backend)
        return True

    def backends(
        self, services: Iterable[_ServiceRow], down_time: float, now: dt.datetime | None = None
    ) -> list[BackendState]:
        """The backends a scheduler may use now: enabled, up and reported.

        Backends of services that are down, disabled or gone are removed from
        the map; up services that have not reported yet are remembered in
        `no_capabilities`.
        """
        now = now or self.clock.utcnow()
        active: dict[str, BackendState] = {}
        self.no_capabilities = set()  # recomputed on every pass, as Cinder does
        for service in services:
            backend = service.cluster or service.host
            if backend in active or service.disabled:
                continue
            if not service_is_up(service, down_time, now):
                logger.warning("service %s is down", backend)
                continue
            report = self.service_states.get(backend)
            if report is None:
                self.no_capabilities.add(backend)
                continue
            state = self.backend_states.get(backend) or BackendState(backend)
            state.update_from_report(report)
            active[backend] = state
        for gone in set(self.backend_states) - set(active):
            logger.info("Removing non-active backend: %s", gone)
        self.backend_states = active
        return list(active.values())

    def has_all_capabilities(self) -> bool:
        """Return whether every up backend of the last `backends` pass has reported."""
        return not self.no_capabilities

    def consume(self, backend_id: str, size_gb: float) -> BackendState:
        """Reserve capacity on a backend returned by `backends`."""
        state = self.backend_states[backend_id]
        state.consume(size_gb, self.clock.utcnow())
        return state
