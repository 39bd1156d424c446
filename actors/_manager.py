"""Managers: "smart managers, dumb data", each one an actor.

A manager owns one concern's data and is the only code that changes it. Every
call, cast, periodic task and capability update reaches it through its mailbox,
one at a time, so its data needs no locks and message order is a guarantee.

Example:
    >>> from actors import Manager
    >>> class Greeter(Manager):
    ...     def greet(self, name):
    ...         return f"hello {name} from {self.host}"
    >>> greeter = Greeter.start(host="node-1").proxy()
    >>> greeter.greet("ann").get(timeout=5)
    'hello ann from node-1'
    >>> greeter.actor_ref.stop()
    True
"""

from __future__ import annotations

import logging
import os
import random
import socket
from typing import TYPE_CHECKING, Any, ClassVar

from actors._capabilities import CapabilityPublisher, CapabilityReport, LocalPublisher
from actors._clock import DEFAULT_CLOCK, Clock
from actors._mailbox import ResilientActor, Supervisor
from actors._periodic import PeriodicTasks, periodic_task
from actors._timer import Tick
from actors.db import Database

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["Manager", "SchedulerDependentManager", "default_host"]

logger = logging.getLogger(__name__)


def default_host() -> str:
    """The host name a manager takes when none is given: ``$ACTORS_HOST`` or the system's."""
    return os.environ.get("ACTORS_HOST") or socket.gethostname()


class Manager(PeriodicTasks, ResilientActor):
    """The base class of managers: a pykka thread actor with Cinder's hooks.

    Subclass it, add methods, start it with ``MyManager.start(host=...)`` and
    call it through ``ref.proxy()``, locally or (through the bridge) remotely.
    A method that raises during a call gives the caller the exception; during a
    cast it is logged; either way the manager keeps serving.

    What a node gives it: the context (``host``, ``cluster``, ``db``, ``clock``,
    ``supervisor``), the dependencies its class lists in `DEPENDENCIES` and the options
    of its ``[[services]]`` table, which must be listed in `OPTIONS` (both are collected
    over the bases; see ``docs/dependencies.rst``). Unknown keywords are refused.

    Hooks, in the order a service calls them (each runs in the manager's own
    thread when called through its proxy): `init_host`, `init_host_with_rpc`;
    then `is_working` before each heartbeat, `reset` on SIGHUP and
    `run_periodic_tasks` on each timer tick.

    Args:
        host: the host this manager serves; falsy means `default_host()`.
        cluster: the cluster it belongs to, if any.
        service_name: the name it reports under (default: `TOPIC`, else "undefined").
        db: its data access (default: the process's shared `Database` for the
            default URL, opened on first use).
        clock: where its periodic bookkeeping gets time (default: monotonic).
        run_external_periodic_tasks: run tasks declared ``external_process_ok``.
        periodic_jitter: the random source of periodic jitter (tests pin it).
        supervisor: told when the manager stops because of a failure (a service
            uses it to restart the manager).
    """

    RPC_API_VERSION: ClassVar[str] = "1.0"
    """The RPC version this manager implements ("major.minor")."""

    TOPIC: ClassVar[str | None] = None
    """The topic a service of this manager serves by default (e.g. "volume")."""

    DEPENDENCIES: ClassVar[tuple[str, ...]] = ()
    """What this class needs from the node, by provider name (``"directory"``, ...)."""

    OPTIONS: ClassVar[tuple[str, ...]] = ()
    """The keyword arguments a node config's ``options`` may set for this class."""

    RPC_PRIVATE: ClassVar[frozenset[str]] = frozenset(
        {
            "init_host",
            "init_host_with_rpc",
            "reset",
            "run_periodic_tasks",
            "add_periodic_task",
            "set_periodic_spacing",
            "periodic_context",
            "periodic_spacing",
            "periodic_last_run",
            "clock",
            "db",
            "supervisor",
            "mailbox_probe",
        }
    )
    """Public names that remote callers may not call, read or set (lifecycle, bookkeeping)."""

    RPC_READ_ONLY: ClassVar[frozenset[str]] = frozenset({"host", "cluster", "service_name"})
    """Public fields that remote callers may read but not set (the manager's identity)."""

    MAILBOX_LIMIT: ClassVar[int | None] = None
    """Requests from the bridge this manager's mailbox holds; past it calls get
    `transport.Overloaded` and casts are dropped. None: the node's `mailbox_limit`."""

    def __init__(
        self,
        host: str | None = None,
        cluster: str | None = None,
        service_name: str | None = None,
        *,
        db: Database | None = None,
        clock: Clock | None = None,
        run_external_periodic_tasks: bool = True,
        periodic_jitter: Callable[[], float] = random.random,
        supervisor: Supervisor | None = None,
    ) -> None:
        super().__init__()
        self.supervisor = supervisor
        self.host = host or default_host()
        self.cluster = cluster
        self.service_name = service_name or self.TOPIC or "undefined"
        self.clock = clock or DEFAULT_CLOCK
        self._db = db
        self._init_periodic_tasks(
            self.clock, run_external=run_external_periodic_tasks, rand=periodic_jitter
        )

    def __str__(self) -> str:
        return f"{type(self).__name__}({self.host})"

    @classmethod
    def declared_dependencies(cls) -> tuple[str, ...]:
        """`DEPENDENCIES` of this class and its bases, each name once, bases first."""
        return _collect(cls, "DEPENDENCIES")

    @classmethod
    def declared_options(cls) -> tuple[str, ...]:
        """`OPTIONS` of this class and its bases, each name once, bases first."""
        return _collect(cls, "OPTIONS")

    @property
    def db(self) -> Database:
        """The manager's data access (opened on first use)."""
        if self._db is None:
            self._db = Database.shared()
        return self._db

    @property
    def service_topic_queue(self) -> str:
        """Where this manager's topic messages are addressed: its cluster, else its host."""
        return self.cluster or self.host

    # -- hooks -----------------------------------------------------------------

    def init_host(
        self, service_id: int | None = None, added_to_cluster: bool | None = None
    ) -> None:
        """Prepare the host before the manager is reachable over RPC (no-op hook).

        Runs in the manager's thread, after its service row is registered and
        before any remote message can reach it.

        Args:
            service_id: the id of this service's row in the services table.
            added_to_cluster: whether this start added the service to a cluster.
        """

    def init_host_with_rpc(self) -> None:
        """Do what needs RPC, once the bridge serves this manager (no-op hook)."""

    def is_working(self) -> bool:
        """Return whether the manager works; a service heartbeats only while it does."""
        return True

    def reset(self) -> None:
        """Drop cached RPC version pins and rebuild clients (SIGHUP; never restarts)."""
        logger.info("Resetting cached RPC version pins.")

    def periodic_context(self) -> Any:
        """The context periodic tasks receive on a timer tick (default: ``None``)."""
        return None

    # -- the mailbox -------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        """Answer the timer's `Tick` with the idle time; other messages are unexpected."""
        if isinstance(message, Tick):
            return self.run_periodic_tasks(self.periodic_context())
        return super().on_receive(message)


def _collect(cls: type, attribute: str) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        declared = vars(klass).get(attribute, ())
        if isinstance(declared, str):
            msg = f"{klass.__name__}.{attribute} must be a tuple of names, not a string"
            raise TypeError(msg)
        names.update(dict.fromkeys(declared))
    return tuple(names)


class SchedulerDependentManager(Manager):
    """A manager that periodically sends its capabilities to the schedulers.

    `update_service_capabilities` only remembers them (as Cinder does); the
    periodic task `publish_service_capabilities` sends the remembered ones, with
    host, service name, cluster and a timestamp, to every scheduler through the
    publisher, and sends nothing while they are ``None`` or empty. Override
    `publish_service_capabilities` to gather fresh stats first, then call
    ``super()``, so what is published is never a cycle old.

    Args:
        publisher: where reports go (default: `LocalPublisher`, every scheduler
            actor in this process).
        capabilities_interval: the publish task's spacing in seconds
            (default: the decorated 60).
    """

    DEPENDENCIES: ClassVar[tuple[str, ...]] = ("publisher",)
    OPTIONS: ClassVar[tuple[str, ...]] = ("capabilities_interval",)
    RPC_PRIVATE = Manager.RPC_PRIVATE | {"update_service_capabilities"}

    def __init__(
        self,
        host: str | None = None,
        service_name: str | None = None,
        cluster: str | None = None,
        *,
        publisher: CapabilityPublisher | None = None,
        capabilities_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(host=host, cluster=cluster, service_name=service_name, **kwargs)
        self.last_capabilities: Mapping[str, Any] | None = None
        self.publisher: CapabilityPublisher = publisher or LocalPublisher()
        if capabilities_interval is not None and "publish_service_capabilities" in (
            self.periodic_spacing
        ):
            self.set_periodic_spacing("publish_service_capabilities", capabilities_interval)

    def update_service_capabilities(self, capabilities: Mapping[str, Any] | None) -> None:
        """Remember these capabilities to send on the next publish."""
        self.last_capabilities = capabilities

    @periodic_task(spacing=60)
    def publish_service_capabilities(self, context: Any = None) -> None:
        """Send the remembered capabilities to every scheduler (a periodic task)."""
        self._publish_service_capabilities(context)

    def _publish_service_capabilities(self, context: Any) -> bool:
        if not self.last_capabilities:
            logger.debug("%s: no capabilities to publish yet", self)
            return False
        report = CapabilityReport(
            service_name=self.service_name,
            host=self.host,
            capabilities=dict(self.last_capabilities),
            cluster_name=self.cluster,
            timestamp=self.clock.utcnow(),
        )
        self.publisher.publish(report)
        return True

    def reset(self) -> None:
        """Drop version pins, then the publisher's cached clients."""
        super().reset()
        self.publisher.reset()
