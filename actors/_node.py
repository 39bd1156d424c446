"""The node: the one process per host that runs its services.

A node owns one database handle, one bridge endpoint, one timer actor and one
directory (discovery), and runs the services its TOML config lists (every key, and
what it must be, in ``docs/config.rst``; the schema is `actors._config`)::

    host = "node-1"
    database_url = "sqlite:////var/lib/actors/state.sqlite3"
    bind = "tcp://127.0.0.1:*"
    report_interval = 10
    service_down_time = 60
    periodic_fuzzy_delay = 60
    mailbox_limit = 1000                      # requests a manager's mailbox holds from the bridge
    allowed_exception_modules = ["actors.demo.errors"]  # re-raised as their own class

    [[services]]
    manager = "actors.demo:VolumeManager"
    options = { driver = "sparse", driver_options = { directory = "/srv/vols" } }

    [metrics]                                 # optional: Prometheus metrics over HTTP
    bind = "127.0.0.1:9464"                   # at http://127.0.0.1:9464/metrics

    [curve]                                   # optional: encrypt and authenticate
    server_keys = "keys/cluster.key_secret"   # the bridges' key pair (shared)
    client_keys = "keys/node-1.key_secret"    # this node's key pair as a client
    allowed_clients = "keys/clients"          # public keys allowed to call

Before anything starts, `Node.check` loads every manager class and checks what it
declares (`actors._dependencies`); each manager then gets exactly its declared
dependencies and options. When `Node.start` returns every service is discoverable;
`Node.serve` then prints "ready" and tells systemd ``READY=1``.

Signals: SIGTERM (and SIGINT) stop the node gracefully within ``stop_timeout``: each
service is marked down (or its row removed, ``on_stop``), then drained. SIGHUP calls
``reset()`` on every manager and drops the discovery pins, without restarting
anything. Logs go to stderr and carry the request id; with ``log_format = "json"``
they are JSON lines with the request, trace and span ids. With OpenTelemetry
installed and a tracer provider configured (the ``otel`` extra), calls between
nodes make client and server spans of one trace (see docs/observability.rst).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

import transport
from actors._clock import DEFAULT_CLOCK, Clock
from actors._config import ConfigError, CurveSpec, NodeConfig, ServiceSpec
from actors._dependencies import CONTEXT, check_service, provide
from actors._discovery import Directory, RemotePublisher
from actors._logjson import JsonFormatter
from actors._metrics import ManagerProbe, MetricsServer, NodeCollector
from actors._service import Service, ServiceStartError
from actors._systemd import notify
from actors._timer import TimerActor
from actors._tracing import Tracing, configured_tracing

if TYPE_CHECKING:
    from collections.abc import Callable

    import pykka

    from actors._manager import Manager
    from actors.db import Database

__all__ = ["ConfigError", "CurveSpec", "Node", "NodeConfig", "ServiceSpec", "configure_logging"]

logger = logging.getLogger(__name__)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = transport.current_context()
        record.request_id = context.request_id if context is not None else "-"
        return True


def configure_logging(level: str = "INFO", host: str = "-", log_format: str = "text") -> None:
    """Log to stderr with time, host, request id, logger and message (or JSON lines)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        JsonFormatter(host)
        if log_format == "json"
        else logging.Formatter(
            f"%(asctime)s {host} %(levelname)s [%(request_id)s] %(name)s: %(message)s"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class Node:
    """Runs a node's services until told to stop.

    Args:
        config: what to run.
        clock: where time comes from (a `ManualClock` in tests).
    """

    def __init__(self, config: NodeConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or DEFAULT_CLOCK
        self.services: list[Service] = []
        self.db: Database | None = None
        self.bridge: transport.Bridge | None = None
        self.timer: pykka.ActorRef[TimerActor] | None = None
        self.directory: Directory | None = None
        self.metrics: MetricsServer | None = None
        self.tracing: Tracing | None = None

    @property
    def service_down_time(self) -> float:
        """The down time in force (raised when not above the report interval, as Cinder does)."""
        return self.config.effective_down_time

    def check(self) -> list[type[Manager]]:
        """Load every service's manager class and check its dependencies and options.

        Raises:
            ConfigError: one line naming the service, the key and what is wrong.
        """
        return [
            check_service(spec, f"services[{i}].") for i, spec in enumerate(self.config.services)
        ]

    def start(self) -> None:
        """Check every service, open the database, bind the bridge, start the timer and services.

        When it returns, every service is registered, exposed and marked up: discoverable.
        """
        cfg = self.config
        manager_classes = self.check()  # before anything starts: a bad option starts nothing
        self.db = cfg.open_database()
        bridge_keys: dict[str, Any] = {}
        if cfg.curve is not None:
            server = transport.load_keypair(cfg.curve.server_keys)
            bridge_keys = {"keypair": server, "allowed_clients": cfg.curve.allowed_clients}
        # own_sockets: each manager also gets a socket its own thread reads and
        # answers (one thread woken per call); its service row records that endpoint.
        self.bridge = transport.Bridge(
            cfg.bind, mailbox_limit=cfg.mailbox_limit, own_sockets=cfg.own_sockets, **bridge_keys
        )
        self.bridge.start()
        self.timer = TimerActor.start(clock=self.clock, fuzzy_delay=cfg.periodic_fuzzy_delay)
        self.directory = Directory.from_config(cfg, db=self.db, clock=self.clock)
        directory = self.directory
        factories: dict[str, Callable[[], Any]] = {
            "directory": lambda: directory,
            "publisher": lambda: RemotePublisher(directory),
            "service_down_time": lambda: self.service_down_time,
            "report_interval": lambda: cfg.report_interval,
            "rpc_timeout": lambda: cfg.rpc_timeout,
        }
        self.tracing = configured_tracing()
        if self.tracing is not None:
            self.tracing.install()
        if cfg.metrics is not None:
            collector = NodeCollector(lambda: list(self.services), lambda: self.bridge)
            self.metrics = MetricsServer(cfg.metrics.bind, [collector])
            self.metrics.start()
        for i, (spec, manager_class) in enumerate(
            zip(cfg.services, manager_classes, strict=True)
        ):
            service = Service(
                manager_class,
                host=spec.host or cfg.host,
                topic=spec.topic,
                cluster=spec.cluster,
                db=self.db,
                timer=self.timer,
                bridge=self.bridge,
                report_interval=cfg.report_interval,
                service_down_time=cfg.service_down_time,
                periodic_fuzzy_delay=cfg.periodic_fuzzy_delay,
                clock=self.clock,
                manager_kwargs={**provide(manager_class, factories), **spec.options},
                call_timeout=cfg.rpc_timeout,
                on_stop=cfg.on_stop,
                heartbeat_wait=cfg.heartbeat_wait,
            )
            if self.metrics is not None or self.tracing is not None:
                service.mailbox_probe = ManagerProbe(tracing=self.tracing, label=service.topic)
            try:
                service.start()
            except ServiceStartError:
                raise
            except Exception as exc:  # only the constructor runs outside the start sequence
                msg = f"services[{i}]: {_constructor_failed(manager_class, exc)}"
                raise ServiceStartError(msg) from exc
            self.services.append(service)
        logger.info("node %s serving %s", cfg.host, self.bridge.endpoint)

    def reset(self) -> None:
        """SIGHUP: every manager drops its pins and rebuilds its clients; so does discovery."""
        logger.info("SIGHUP: resetting %d service(s)", len(self.services))
        if self.directory is not None:
            self.directory.reset()
        for service in self.services:
            try:
                service.reset()
            except Exception:
                logger.exception("%s: reset failed", service)
        logger.info("SIGHUP: reset done")

    def stop(self) -> None:
        """Mark every service down, drain each mailbox, then stop the timer and the bridge."""
        timeout = self.config.stop_timeout
        for service in self.services:  # first none is chosen any more, then each drains
            try:
                service.quiesce()
            except Exception:
                logger.exception("%s: quiesce failed", service)
        for service in reversed(self.services):
            try:
                service.stop(timeout=timeout)
            except Exception:
                logger.exception("%s: stop failed", service)
        if self.timer is not None and self.timer.is_alive():
            self.timer.stop(timeout=timeout)
        if self.bridge is not None:
            self.bridge.stop(timeout=timeout)
        if self.directory is not None:
            self.directory.close()
        if self.db is not None:
            self.db.dispose()
        if self.metrics is not None:
            self.metrics.stop()
        if self.tracing is not None:
            self.tracing.uninstall()
        logger.info("node %s stopped", self.config.host)

    def serve(self, *, ready: Any = None) -> int:
        """Run until SIGTERM or SIGINT; SIGHUP resets. Returns the exit status.

        The signals are blocked in every thread and taken with ``sigwait`` in
        this one, so no handler ever runs in the middle of a manager's work.
        `ready` (a callable) is told the bridge endpoint once everything started.
        """
        wanted = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
        signal.pthread_sigmask(signal.SIG_BLOCK, wanted)  # before any thread starts
        try:
            self.start()
        except (ConfigError, ServiceStartError) as exc:  # the message says it all
            logger.error("node %s failed to start: %s", self.config.host, exc)
            logger.debug("what failed, in detail", exc_info=True)  # log_level = "DEBUG"
            self._stop_within_bound()
            return 1
        except Exception:
            logger.exception("node %s failed to start", self.config.host)
            self._stop_within_bound()
            return 1
        assert self.bridge is not None
        # What start-up built lives as long as the node: keep it out of every future
        # garbage collection (measured: +14-20 % casts and pipelined calls per second).
        gc.collect()
        gc.freeze()
        if ready is not None:
            ready(self.bridge.endpoint)
        notify("READY=1")  # systemd (Type=notify): every service is discoverable now
        while True:
            received = signal.sigwait(wanted)
            if received == signal.SIGHUP:
                self.reset()
                continue
            logger.info("%s: stopping gracefully", signal.Signals(received).name)
            notify("STOPPING=1")
            return self._stop_within_bound()

    def _stop_within_bound(self) -> int:
        watchdog = threading.Timer(self.config.stop_timeout + 5, _force_exit)
        watchdog.daemon = True
        watchdog.start()
        try:
            self.stop()
        finally:
            watchdog.cancel()
        return 0


def _constructor_failed(manager_class: type[Manager], exc: Exception) -> str:
    name = f"{manager_class.__module__}:{manager_class.__qualname__}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, TypeError) and "keyword argument" in text:
        context = ", ".join(p.name for p in CONTEXT)
        declared = manager_class.declared_dependencies() + manager_class.declared_options()
        return (
            f"{name} refused its constructor arguments ({text}): a manager receives {context}"
            + (f", and {', '.join(declared)}" if declared else "")
            + "; an explicit __init__ must take **kwargs and pass them to super().__init__()"
        )
    return f"{name}'s constructor failed: {type(exc).__name__}: {text}"


def _force_exit() -> None:  # pragma: no cover - only when a stop hangs
    logger.error("graceful stop took too long; exiting")
    with contextlib.suppress(Exception):
        logging.shutdown()
    os._exit(3)

