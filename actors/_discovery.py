"""Discovery: find managers on any host through the services table.

Every service's row records its bridge endpoint and RPC version, and its
heartbeat says whether it is up. A `Directory` turns that into proxies:

* ``directory.proxy("volume", host="node-2")``: that host's volume manager;
* ``directory.proxy("volume")``: round robin over the volume services that are up;
* ``directory.fanout_cast("scheduler", "update_service_capabilities", ...)``:
  one cast to every up service of a topic.

Each row is judged by the liveness rule its own node recorded (its ``down_time``;
the directory's ``service_down_time`` is for rows without one). A node that stopped
gracefully marked its rows down, so callers get `ServiceUnavailable` at once; a node
that died stops being chosen once its heartbeat is older than its down time; until
then a call to it ends in ``MessagingTimeout``.

Version pins, for rolling upgrades: the version a client may send to a topic
is capped at the lowest ``rpc_version`` among that topic's up services. The pin
is cached; asking for a newer version raises `RPCVersionCapError`
(`can_send_version` is the boolean form). `reset` (SIGHUP) drops the pins, so
once every node runs the new version the cap rises without a restart.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

import transport
from actors._clock import DEFAULT_CLOCK, Clock
from actors._service import bridge_name
from actors.db import Database, ServiceRecord, service_is_up
from transport import parse_version, version_is_compatible

if TYPE_CHECKING:
    from actors._capabilities import CapabilityReport
    from actors._config import NodeConfig

__all__ = [
    "Directory",
    "RPCVersionCapError",
    "RemotePublisher",
    "ServiceUnavailable",
]

logger = logging.getLogger(__name__)


class ServiceUnavailable(transport.MessagingError):
    """No service of that topic (on that host) is up."""


class RPCVersionCapError(transport.MessagingError):
    """The requested RPC version is above the topic's version pin."""

    def __init__(self, topic: str, version: str, cap: str) -> None:
        super().__init__(
            f"requested version {version} of topic {topic!r} is higher than the "
            f"version cap {cap} (the oldest up service)"
        )
        self.topic = topic
        self.version = version
        self.cap = cap


class Directory:
    """Proxies to services by topic and host, from the services table.

    Thread-safe. Connections are opened lazily, one per endpoint, and shared.

    Args:
        db: the database holding the services table.
        service_down_time: a service whose heartbeat is older is down (for rows that
            record no down time of their own).
        clock: where "now" comes from.
        timeout: the default deadline of calls, in seconds.
        connect_kwargs: more arguments for `transport.connect` (CURVE keys, ...).
    """

    def __init__(
        self,
        db: Database,
        *,
        service_down_time: float = 60.0,
        clock: Clock | None = None,
        timeout: float = 60.0,
        **connect_kwargs: Any,
    ) -> None:
        self.db = db
        self.service_down_time = service_down_time
        self.clock = clock or DEFAULT_CLOCK
        self.timeout = timeout
        self._connect_kwargs = connect_kwargs
        self._lock = threading.Lock()
        self._connections: dict[str, transport.Connection] = {}
        self._pins: dict[str, str | None] = {}
        self._round_robin: dict[str, itertools.count[int]] = {}

    @classmethod
    def from_config(
        cls,
        config: NodeConfig,
        *,
        db: Database | None = None,
        clock: Clock | None = None,
        timeout: float | None = None,
    ) -> Directory:
        """The directory a node with `config` uses: its database, keys, timeouts and rules.

        Args:
            config: the node's configuration.
            db: the database to use (default: a new one for ``config.database_url``,
                with the config's database timeouts).
            clock: where "now" comes from.
            timeout: the calls' deadline (default: ``config.rpc_timeout``).
        """
        connect: dict[str, Any] = {}
        if config.curve is not None:
            server = transport.load_keypair(config.curve.server_keys)
            connect = {
                "keypair": transport.load_keypair(config.curve.client_keys),
                "server_key": server.public,
            }
        return cls(
            db if db is not None else config.open_database(),
            service_down_time=config.effective_down_time,
            clock=clock,
            timeout=config.rpc_timeout if timeout is None else timeout,
            allowed_exception_modules=config.allowed_exception_modules,
            **connect,
        )

    # -- the services table ------------------------------------------------------

    def services(self, topic: str | None = None, *, up_only: bool = False) -> list[ServiceRecord]:
        """The rows of `topic` (all topics by default), optionally only enabled and up ones."""
        query = select(ServiceRecord).order_by(ServiceRecord.topic, ServiceRecord.host)
        if topic is not None:
            query = query.where(ServiceRecord.topic == topic)
        with self.db.session() as session:
            rows = list(session.scalars(query))
        if up_only:
            now = self.clock.utcnow()
            rows = [
                row
                for row in rows
                if not row.disabled and service_is_up(row, self.service_down_time, now)
            ]
        return rows

    def is_up(self, row: ServiceRecord) -> bool:
        """Whether `row`'s service is up by its node's rule (see `actors.db.service_is_up`)."""
        return service_is_up(row, self.service_down_time, self.clock.utcnow())

    # -- version pins ---------------------------------------------------------------

    def version_cap(self, topic: str) -> str | None:
        """The lowest RPC version among `topic`'s up services (cached until `reset`)."""
        with self._lock:
            if topic in self._pins:
                return self._pins[topic]
        versions = [row.rpc_version for row in self.services(topic, up_only=True)]
        known = [v for v in versions if v]
        cap = min(known, key=parse_version) if known else None
        with self._lock:
            if cap is not None:
                self._pins[topic] = cap
                logger.info("RPC version cap for %s: %s", topic, cap)
            return cap

    def can_send_version(self, topic: str, version: str) -> bool:
        """Whether a message of `version` may be sent to `topic` under its pin."""
        cap = self.version_cap(topic)
        return cap is None or version_is_compatible(cap, version)

    def _check_version(self, topic: str, version: str | None) -> str | None:
        cap = self.version_cap(topic)
        if version is None:
            return cap
        if cap is not None and not version_is_compatible(cap, version):
            raise RPCVersionCapError(topic, version, cap)
        return version

    # -- proxies -------------------------------------------------------------------------

    def proxy(
        self,
        topic: str,
        host: str | None = None,
        *,
        version: str | None = None,
        timeout: float | None = None,
        check: bool = True,
    ) -> transport.RemoteProxy[Any]:
        """A proxy to `topic`'s manager on `host`, or to the next up one (round robin).

        Args:
            topic: the service topic ("volume").
            host: the host (or cluster) to address; ``None`` picks round robin.
            version: the RPC version the calls need; default: the topic's pin.
            timeout: the calls' deadline; default: the directory's.
            check: `False` makes no describe round trip (see
                `transport.Connection.proxy`): the proxy only calls methods, and
                a host that does not answer fails the calls, not this.

        Raises:
            ServiceUnavailable: no such service is up.
            RPCVersionCapError: `version` is above the topic's pin.
        """
        rows = self.services(topic, up_only=True)
        if host is not None:
            rows = [row for row in rows if host in (row.host, row.cluster)]
            if not rows:
                msg = f"no {topic!r} service is up on {host!r}{self._why_not_up(topic, host)}"
                raise ServiceUnavailable(msg)
            row = rows[0]
            name = bridge_name(topic, host)
        else:
            if not rows:
                msg = f"no {topic!r} service is up"
                raise ServiceUnavailable(msg)
            with self._lock:
                counter = self._round_robin.setdefault(topic, itertools.count())
                row = rows[next(counter) % len(rows)]
            name = bridge_name(topic, row.host)
        sent_version = self._check_version(topic, version)
        return self._proxy_for(row, name, sent_version, timeout, check=check)

    def _why_not_up(self, topic: str, host: str) -> str:
        """What the table says of `host`'s `topic` service, for the error an operator reads."""
        found = [row for row in self.services(topic) if host in (row.host, row.cluster)]
        if not found:
            return " (no such service in the services table)"
        row = found[0]
        if row.disabled:
            return f" (disabled: {row.disabled_reason or 'no reason given'})"
        if row.stopped_at is not None:
            return f" (stopped at {row.stopped_at.isoformat(timespec='seconds')})"
        if row.updated_at is None:
            return " (it never heartbeat)"
        down_time = row.down_time if row.down_time is not None else self.service_down_time
        return (
            f" (last heartbeat {row.updated_at.isoformat(timespec='seconds')}, "
            f"down after {down_time:g} s)"
        )

    def fanout(
        self, topic: str, *, version: str | None = None, timeout: float | None = None
    ) -> list[transport.RemoteProxy[Any]]:
        """One proxy per up service of `topic` (unchecked: see `transport.Connection.proxy`)."""
        sent_version = self._check_version(topic, version)
        return [
            self._proxy_for(row, bridge_name(topic, row.host), sent_version, timeout, check=False)
            for row in self.services(topic, up_only=True)
        ]

    def fanout_cast(self, topic: str, method: str, /, *args: Any, **kwargs: Any) -> int:
        """Cast ``method(*args, **kwargs)`` to every up service of `topic`; return how many.

        A topic with no service up is silently skipped, as oslo.messaging does.
        """
        sent = 0
        for proxy in self.fanout(topic):
            try:
                getattr(proxy, method).defer(*args, **kwargs)
                sent += 1
            except transport.MessagingError:
                logger.warning("fan-out cast %s to %s failed", method, proxy, exc_info=True)
        return sent

    def _proxy_for(
        self,
        row: ServiceRecord,
        name: str,
        version: str | None,
        timeout: float | None,
        *,
        check: bool = True,
    ) -> transport.RemoteProxy[Any]:
        if not row.endpoint:
            msg = f"service {row.topic!r} on {row.host!r} has no endpoint"
            raise ServiceUnavailable(msg)
        return self._connection(row.endpoint).proxy(name, version, timeout=timeout, check=check)

    def _connection(self, endpoint: str) -> transport.Connection:
        with self._lock:
            conn = self._connections.get(endpoint)
            if conn is None:
                conn = transport.connect(
                    endpoint, timeout=self.timeout,
                    peer_status=functools.partial(self.peer_status, endpoint),
                    **self._connect_kwargs,
                )  # fmt: skip
                self._connections[endpoint] = conn
            return conn

    def peer_status(self, endpoint: str) -> str:
        """Say whether the services table shows the services at `endpoint` up (for timeouts)."""
        rows = [row for row in self.services() if row.endpoint == endpoint]
        if not rows:
            return f"services table: no service at {endpoint}"
        now = self.clock.utcnow()
        return "services table: " + "; ".join(
            f"{row.topic} on {row.host} is {'up' if self.is_up(row) else 'DOWN'}"
            + (
                f" (last heartbeat {(now - row.updated_at).total_seconds():.1f} s ago)"
                if row.updated_at is not None
                else " (never heartbeat)"
            )
            for row in rows
        )

    # -- lifecycle --------------------------------------------------------------------

    def reset(self) -> None:
        """Drop the version pins (SIGHUP); connections stay, calls in flight are not hurt."""
        with self._lock:
            self._pins.clear()
        logger.info("Resetting cached RPC version pins.")

    def close(self) -> None:
        """Close every connection."""
        with self._lock:
            connections, self._connections = list(self._connections.values()), {}
        for conn in connections:
            conn.close()


class RemotePublisher:
    """Publishes capability reports to every up scheduler through the bridge (fan-out cast)."""

    def __init__(self, directory: Directory, topic: str = "scheduler") -> None:
        self.directory = directory
        self.topic = topic

    def publish(self, report: CapabilityReport) -> None:
        """Fan-out cast ``update_service_capabilities`` to the schedulers."""
        self.directory.fanout_cast(self.topic, "update_service_capabilities", **report.as_kwargs())

    def reset(self) -> None:
        """Version pins and connections belong to the directory, which the node resets."""
