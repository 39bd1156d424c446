"""A cluster of real node stacks in one process, for integration tests.

Each node is an `actors._node.Node`, as ``actors node`` runs it: its own
bridge on a real ZeroMQ tcp endpoint on loopback, its own timer actor,
directory and services, and its own engine on one SQLite file that the whole
cluster shares (as hosts share one services table). Time is a `ManualClock`
shared by every node: `Cluster.advance` runs the periodic tasks and heartbeats
of all nodes, due point by due point.

Example:
    >>> import tempfile
    >>> from actors.demo import VolumeManager
    >>> with tempfile.TemporaryDirectory() as tmp, Cluster(tmp) as cluster:
    ...     _ = cluster.add_node("node-1", [VolumeManager])
    ...     volume = cluster.proxy("volume", host="node-1")
    ...     print(volume.create_volume("vol-1", 1).get(timeout=10)["host"])
    node-1
"""

from __future__ import annotations

import logging
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actors._clock import ManualClock
from actors._discovery import Directory
from actors._drivers import DriverNotFound, load_driver
from actors._manager import Manager
from actors._node import Node, NodeConfig, ServiceSpec
from actors.db import Database

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Mapping

    import transport

__all__ = ["Cluster", "ServiceEntry"]

logger = logging.getLogger(__name__)

ServiceEntry = type[Manager] | tuple[type[Manager], "Mapping[str, Any]"]
"""A service of a node: a manager class, or a manager class and its constructor options."""


_handed = types.SimpleNamespace()
"""Manager classes a node cannot import by their own path (defined in a function, or in a
test module imported under another name), under generated names a node can load."""


def _import_path(manager: type[Manager]) -> str:
    """A ``module:qualname`` path that `load_driver` resolves to `manager` itself."""
    natural = f"{manager.__module__}:{manager.__qualname__}"
    try:
        if load_driver(natural) is manager:
            return natural
    except DriverNotFound:
        pass
    name = f"{manager.__name__}_{id(manager):x}"
    setattr(_handed, name, manager)
    return f"{__name__}:_handed.{name}"


def _is_manager_class(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, Manager)


def _spec(entry: ServiceEntry) -> ServiceSpec:
    manager, options = entry if isinstance(entry, tuple) else (entry, {})
    if not _is_manager_class(manager):  # callers without a type checker
        msg = f"a service must be a Manager subclass or (subclass, options), not {entry!r}"
        raise TypeError(msg)
    return ServiceSpec(manager=_import_path(manager), options=dict(options))


class Cluster:
    """N node stacks in this process sharing one SQLite file and one manual clock.

    ``directory`` is the cluster's own `actors.Directory` (what `proxy` uses).

    Args:
        path: the directory where the shared SQLite file goes.
        clock: the clock of every node (default: a new `ManualClock`).
        report_interval: seconds between heartbeats.
        service_down_time: a service without a heartbeat for longer is down.
        rpc_timeout: the deadline of remote calls, in seconds.
        allowed_exception_modules: modules whose remote exceptions are re-raised
            as their own class (besides builtins).
        node_options: more `NodeConfig` fields for every node.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: ManualClock | None = None,
        report_interval: float = 10.0,
        service_down_time: float = 60.0,
        rpc_timeout: float = 10.0,
        allowed_exception_modules: Iterable[str] = (),
        **node_options: Any,
    ) -> None:
        self.path = Path(path)
        self.db_url = f"sqlite:///{self.path / 'cluster.sqlite3'}"
        self.clock = clock if clock is not None else ManualClock()
        self.report_interval = report_interval
        self.service_down_time = service_down_time
        self.rpc_timeout = rpc_timeout
        self.allowed_exception_modules = tuple(allowed_exception_modules)
        self.node_options = node_options
        self.nodes: dict[str, Node] = {}
        self.db = Database(self.db_url)
        self.directory = Directory(
            self.db,
            service_down_time=service_down_time,
            clock=self.clock,
            timeout=rpc_timeout,
            allowed_exception_modules=self.allowed_exception_modules,
        )

    # -- building --------------------------------------------------------------

    def add_node(self, host: str, services: Iterable[ServiceEntry]) -> Node:
        """Start a node for `host` running `services`; return it once they are all up.

        A service is up once it heartbeat: if starting did not make it so, the
        cluster's clock moves on by one ``report_interval`` (running every
        node's due work) so that it does.

        Raises:
            ValueError: `host` already has a node.
            TypeError: a service is not a `Manager` subclass.
            RuntimeError: the services are still not up after that.
        """
        if host in self.nodes:
            msg = f"the cluster already has a node {host!r}"
            raise ValueError(msg)
        config = NodeConfig(
            host=host,
            database_url=self.db_url,
            bind="tcp://127.0.0.1:*",
            report_interval=self.report_interval,
            service_down_time=self.service_down_time,
            periodic_fuzzy_delay=0.0,
            rpc_timeout=self.rpc_timeout,
            allowed_exception_modules=self.allowed_exception_modules,
            services=tuple(_spec(entry) for entry in services),
            **self.node_options,
        )
        node = Node(config, clock=self.clock)
        self.nodes[host] = node  # stopped by stop() even when start fails midway
        node.start()
        if self._down(node):
            self.advance(self.report_interval)
        if down := self._down(node):
            msg = (
                f"service(s) {', '.join(down)} of node {host!r} not up after one report "
                "interval (is_working() false?)"
            )
            raise RuntimeError(msg)
        return node

    def _down(self, node: Node) -> list[str]:
        """The services of `node` that have not heartbeat recently, as "topic.host"."""
        rows = {(row.host, row.topic): row for row in self.directory.services()}
        return [
            f"{service.topic}.{service.host}"
            for service in node.services
            if (row := rows.get((service.host, service.topic))) is None
            or not self.directory.is_up(row)
        ]

    # -- using -------------------------------------------------------------------

    def node(self, host: str) -> Node:
        """The node of `host`."""
        try:
            return self.nodes[host]
        except KeyError:
            msg = f"no node {host!r} in the cluster (nodes: {', '.join(self.nodes)})"
            raise KeyError(msg) from None

    def proxy(
        self,
        topic: str,
        host: str | None = None,
        *,
        version: str | None = None,
        timeout: float | None = None,
    ) -> transport.RemoteProxy[Any]:
        """A remote proxy to `topic` on `host` (round robin over up ones when ``None``).

        `timeout` is its calls' deadline (default: the cluster's ``rpc_timeout``).
        """
        return self.directory.proxy(topic, host, version=version, timeout=timeout)

    def advance(self, seconds: float, *, timeout: float = 10.0) -> int:
        """Move the shared clock by `seconds`, running every node's due work in time order.

        Returns once that work has run, heartbeat writes included (a service
        writes its heartbeats on a thread of its own).

        Returns:
            The number of ticks sent.

        Raises:
            TimeoutError: a heartbeat write still runs `timeout` seconds later.
        """
        timers = [
            node.timer.proxy()
            for node in self.nodes.values()
            if node.timer is not None and node.timer.is_alive()
        ]
        target = self.clock.monotonic() + seconds
        sent = 0
        while timers:
            dues = [d for t in timers if (d := t.next_due().get(timeout=timeout)) is not None]
            due = min((d for d in dues if d <= target), default=None)
            if due is None:
                break
            step = max(0.0, due - self.clock.monotonic())
            for i, timer in enumerate(timers):  # the first moves the clock, all fire at `due`
                future = timer.advance(step if i == 0 else 0.0, timeout=timeout)
                sent += int(future.get(timeout=timeout * 10))
        self.clock.set(max(target, self.clock.monotonic()))
        for node in self.nodes.values():
            for service in node.services:
                if not service.wait_for_heartbeat_write(timeout=timeout):
                    msg = f"{service!r}: a heartbeat write still runs after {timeout:g} s"
                    raise TimeoutError(msg)
        return sent

    # -- stopping ------------------------------------------------------------------

    def stop_node(self, host: str) -> None:
        """Stop `host`'s node gracefully: its services mark themselves stopped (down at once)."""
        node = self.nodes.pop(host, None)
        if node is None:
            msg = f"no node {host!r} in the cluster"
            raise KeyError(msg)
        node.stop()

    def stop(self) -> None:
        """Stop every node (newest first), then close the cluster's own connections."""
        for host in reversed(list(self.nodes)):
            try:
                self.stop_node(host)
            except Exception:
                logger.exception("stopping node %s failed", host)
        self.directory.close()
        self.db.dispose()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
