"""Service: one manager's life on a node, in Cinder's start order.

construct the manager → register or refresh its row in the services table (marked
not ready: ``stopped_at`` set) → ``init_host(service_id, added_to_cluster)`` → expose it
on the node's bridge → ``init_host_with_rpc()`` → a first heartbeat that marks it up →
heartbeats and periodic ticks from the timer actor. No remote message reaches the
manager before its ``init_host`` returns, because the bridge does not know it before
then; no reader of the services table finds it up before it is exposed, and once
`start` returns it is discoverable.

`stop` stops taking remote messages (callers holding a proxy get
`transport.UnknownActor` at once), marks the row down (``on_stop="down"``: ``stopped_at``
set) or deletes it (``"remove"``), so discovery answers `actors.ServiceUnavailable` at
once, then drains the mailbox. The row records the service's liveness rule
(``down_time``), so every reader judges it by its own node's settings.

The heartbeat is a periodic task the service adds to its manager, so it runs
inside the manager's mailbox like everything else: when ``is_working()`` is
true, ``report_count`` grows by one and ``updated_at`` becomes the beat's time;
when false, nothing is written and the service reads as down after
``service_down_time``. The write itself runs on the service's heartbeat thread
(`HeartbeatWriter`): the mailbox waits for it at most ``heartbeat_wait``
seconds, and not at all once an outage was seen, so a slow or unreachable
database never stalls the manager; beats that come while a write is in flight
are skipped. A database outage is logged
once when it starts ("model server went away", flagged in
``model_disconnected``) and once when it ends ("Recovered model server
connection!"), on the first beat that gets through; a deleted row is re-created.

If the manager dies (a ``BaseException``, a failing ``on_start``), the service
logs it and starts a fresh manager with exponential back-off; meanwhile remote
callers get `transport.UnknownActor` at once, never a hang.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import TYPE_CHECKING, Any

from pykka.messages import ProxySetAttr
from sqlalchemy import Table, bindparam, select, update

from actors._clock import DEFAULT_CLOCK, Clock
from actors._heartbeat import HeartbeatWriter
from actors._periodic import periodic_task
from actors.db import ServiceRecord

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Mapping

    import pykka

    from actors._mailbox import MailboxProbe
    from actors._manager import Manager
    from actors._timer import TimerActor
    from actors.db import Database
    from transport import Bridge

__all__ = ["Service", "ServiceStartError", "bridge_name"]

_SERVICES: Table = ServiceRecord.__table__  # type: ignore[assignment]
# One heartbeat, built once: a Core UPDATE costs a fifth of an ORM get-and-flush
# (bench/sim.py's hour of heartbeats). `_BEAT_AND_CLEAR` also marks the service ready.
_BEAT = (
    update(_SERVICES)
    .where(_SERVICES.c.id == bindparam("row_id"))
    .values(report_count=_SERVICES.c.report_count + bindparam("beats"), updated_at=bindparam("now"))
)
_BEAT_AND_CLEAR = _BEAT.values(stopped_at=None, endpoint=bindparam("endpoint"))
# (marked ready once exposed: the endpoint is then the manager's own socket, if any)

logger = logging.getLogger(__name__)

HEARTBEAT_TASK = "report_state"
"""The name of the heartbeat's periodic task on the manager."""


class ServiceStartError(RuntimeError):
    """A service's manager failed during its start sequence."""


def bridge_name(topic: str, host: str) -> str:
    """The name a service's manager is exposed under on its node's bridge."""
    return f"{topic}.{host}"


class Service:
    """Runs one manager: registration, start order, heartbeats, supervision.

    Args:
        manager_class: the `Manager` subclass to run.
        host: the host it serves (may carry a backend: ``node-1@sparse``).
        db: where the services table is.
        timer: the node's timer actor (ref).
        bridge: the node's bridge, or ``None`` for a service nobody calls remotely.
        topic: default: the manager class's ``TOPIC``.
        binary: the services-table binary (default ``actors-<topic>``).
        cluster: the cluster the service belongs to, if any.
        report_interval: seconds between heartbeats (``None``: no heartbeats).
        service_down_time: after this many seconds without a heartbeat a service
            is down; raised to ``int(2.5 * report_interval)`` when not above it.
        periodic_fuzzy_delay: the first tick comes after a random delay up to this
            (capped at `report_interval`, so the first heartbeat is never late).
        clock: where time comes from (the manager gets the same clock).
        manager_kwargs: more keyword arguments for the manager's constructor.
        restart_backoff: (first, longest) seconds between restarts of a dead manager.
        call_timeout: seconds to wait for each start hook.
        on_stop: what `stop` does with the row: ``"down"`` marks it stopped,
            ``"remove"`` deletes it.
        heartbeat_wait: the longest a heartbeat holds the manager's mailbox
            waiting for its database write (which goes on in the background).
        heartbeat_writer: makes the service's `HeartbeatWriter` from the write
            function and a name (default: the class; a simulation writes inline).
    """

    def __init__(
        self,
        manager_class: type[Manager],
        *,
        host: str,
        db: Database,
        timer: pykka.ActorRef[TimerActor],
        bridge: Bridge | None = None,
        topic: str | None = None,
        binary: str | None = None,
        cluster: str | None = None,
        report_interval: float | None = 10.0,
        service_down_time: float = 60.0,
        periodic_fuzzy_delay: float = 60.0,
        clock: Clock | None = None,
        manager_kwargs: Mapping[str, Any] | None = None,
        restart_backoff: tuple[float, float] = (1.0, 60.0),
        call_timeout: float = 60.0,
        on_stop: str = "down",
        heartbeat_wait: float = 1.0,
        heartbeat_writer: Callable[..., HeartbeatWriter] = HeartbeatWriter,
    ) -> None:
        topic = topic or manager_class.TOPIC
        if on_stop not in ("down", "remove"):
            msg = f'on_stop = {on_stop!r}: expected "down" or "remove"'
            raise ValueError(msg)
        self.on_stop = on_stop
        if not topic:
            msg = f"{manager_class.__name__} has no TOPIC: give the service a topic"
            raise ValueError(msg)
        self.manager_class = manager_class
        self.host = host
        self.topic = topic
        self.binary = binary or f"actors-{topic}"
        self.cluster = cluster
        self.db = db
        self.timer = timer
        self.bridge = bridge
        self.clock = clock or DEFAULT_CLOCK
        self.report_interval = report_interval
        self.service_down_time = service_down_time
        if report_interval and service_down_time <= report_interval:
            corrected = int(report_interval * 2.5)
            logger.warning(
                "Report interval must be less than service down time. Current config "
                "service_down_time: %s, report_interval for this service is: %s. Setting "
                "global service_down_time to: %s",
                service_down_time,
                report_interval,
                corrected,
            )
            self.service_down_time = corrected
        self.periodic_fuzzy_delay = periodic_fuzzy_delay
        self.manager_kwargs = dict(manager_kwargs or {})
        self.restart_backoff = restart_backoff
        self.call_timeout = call_timeout
        self.heartbeat_wait = heartbeat_wait
        self._new_heartbeat_writer = heartbeat_writer
        self._heartbeats = self._heartbeat_writer()
        self.service_id: int | None = None
        self.added_to_cluster: bool | None = None
        self.model_disconnected = False
        self._not_ready = False  # registered, not yet marked up (see `_write_heartbeat`)
        self.restarts = 0
        self.manager_ref: pykka.ActorRef[Manager] | None = None
        self.mailbox_probe: MailboxProbe | None = None
        """Given to each manager this service starts (the node's metrics and traces)."""
        self.last_heartbeat: float | None = None
        """The clock's monotonic reading at the last heartbeat written."""
        self._stopping = threading.Event()
        self._lifecycle = threading.Lock()  # orders a restart's start against stop()
        self._restarter: threading.Thread | None = None
        self._starting = False
        self._restarted = threading.Condition()
        self._rng = random.Random()

    def __repr__(self) -> str:
        return f"<Service {self.topic} on {self.host}>"

    # -- names and access ------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The names the manager is exposed under: topic.host, plus topic.cluster."""
        names = [bridge_name(self.topic, self.host)]
        if self.cluster:
            names.append(bridge_name(self.topic, self.cluster))
        return names

    @property
    def proxy(self) -> Any:
        """A local proxy to the running manager."""
        if self.manager_ref is None:
            msg = f"{self!r} is not running"
            raise RuntimeError(msg)
        return self.manager_ref.proxy()

    def __getattr__(self, name: str) -> Any:
        """Forward unknown attributes to the manager's proxy (the service's own win)."""
        if name.startswith("_") or name in {"manager_ref"}:
            raise AttributeError(name)
        return getattr(self.proxy, name)

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Start the manager and bring it into service, in Cinder's order."""
        self._stopping.clear()
        self._heartbeats.stop(timeout=5.0)  # a writer left from an earlier start, if any
        self._heartbeats = self._heartbeat_writer()
        self._start_manager()

    def quiesce(self) -> None:
        """Stop taking remote messages and mark the row down (or remove it); `stop` drains.

        A node quiesces all its services before draining any, so none is chosen while
        another drains. Idempotent until the next `start`.
        """
        with self._lifecycle:
            if self._stopping.is_set():
                return
            self._stopping.set()
        with self._restarted:
            self._restarted.notify_all()
        self._unexpose()
        self._mark_stopped()

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop taking messages, mark the row down (or remove it), drain, stop the timers.

        A restart under way is waited for (up to `timeout`): it gives up at its
        next step, and whichever manager it started is stopped here with the rest.
        """
        self.quiesce()
        with self._lifecycle:
            restarter, self._restarter = self._restarter, None
        if restarter is not None and restarter is not threading.current_thread():
            restarter.join(timeout)
            if restarter.is_alive():
                logger.warning("%s: its restart did not give up within %ss", self, timeout)
            self._unexpose()  # what the restart may have exposed meanwhile
            self._mark_stopped()
        ref = self.manager_ref
        if ref is None:
            return
        if ref.is_alive():
            # The stop message queues behind everything already in the mailbox.
            ref.stop(block=True, timeout=timeout)
        if self.timer.is_alive():
            self.timer.proxy().unregister(ref).get(timeout=timeout)
        self._heartbeats.stop(timeout=min(timeout, 5.0))

    def _unexpose(self) -> None:
        if self.bridge is not None:
            for name in self.names:
                self.bridge.unexpose(name)

    def reset(self) -> None:
        """SIGHUP: the manager drops its version pins and rebuilds its clients."""
        self.proxy.reset().get(timeout=self.call_timeout)

    def wait_for_heartbeat_write(self, *, timeout: float) -> bool:
        """Wait until no heartbeat write is in flight; for tests and tools."""
        return self._heartbeats.wait_idle(timeout)

    def wait_for_restart(self, count: int, *, timeout: float) -> bool:
        """Wait until the manager was restarted `count` times in all; for tests and tools."""
        with self._restarted:
            return self._restarted.wait_for(lambda: self.restarts >= count, timeout)

    # -- the start sequence ------------------------------------------------------------

    def _start_manager(self) -> None:
        ref = self.manager_class.start(
            host=self.host,
            cluster=self.cluster,
            db=self.db,
            clock=self.clock,
            supervisor=self._manager_died,
            **self.manager_kwargs,
        )
        self.manager_ref = ref
        self._starting = True
        try:
            if self.mailbox_probe is not None:  # set in its thread, before init_host (FIFO)
                ref.tell(ProxySetAttr(attr_path=("mailbox_probe",), value=self.mailbox_probe))
            proxy = ref.proxy()
            self.service_id, self.added_to_cluster = self._register()
            proxy.init_host(service_id=self.service_id, added_to_cluster=self.added_to_cluster).get(
                timeout=self.call_timeout
            )
            self._check_not_stopping()
            if self.bridge is not None:
                for name in self.names:
                    self.bridge.expose(name, ref)
            proxy.init_host_with_rpc().get(timeout=self.call_timeout)
            if self.report_interval:
                proxy.add_periodic_task(self._heartbeat_task()).get(timeout=self.call_timeout)
            first_tick = self._rng.uniform(0, self.periodic_fuzzy_delay)
            if self.report_interval:
                first_tick = min(first_tick, self.report_interval)
            self._check_not_stopping()
            self.timer.proxy().register(ref, initial_delay=first_tick).get(
                timeout=self.call_timeout
            )
            if proxy.is_working().get(timeout=self.call_timeout):
                # up in the services table before start returns (this thread, not the
                # heartbeat thread: readiness waits for the write)
                self._write_heartbeat(self.clock.utcnow(), ready=True)
        except BaseException as exc:
            if ref.is_alive():
                ref.stop(block=False)
            msg = f"{self}: the manager failed to start: {exc!r}"
            raise ServiceStartError(msg) from exc
        finally:
            self._starting = False
        logger.info("%s started (service id %s)", self, self.service_id)

    def _check_not_stopping(self) -> None:
        if self._stopping.is_set():
            msg = "the service is stopping"
            raise ServiceStartError(msg)

    def _register(self) -> tuple[int, bool]:
        """Create or refresh this service's row; return its id and ``added_to_cluster``."""
        with self.db.begin() as session:
            row = session.scalars(
                select(ServiceRecord).where(
                    ServiceRecord.host == self.host, ServiceRecord.binary == self.binary
                )
            ).one_or_none()
            if row is None:
                row = self._new_row()
                session.add(row)
                added = bool(self.cluster)
            else:
                added = not row.cluster and bool(self.cluster)
                row.topic = self.topic
                row.cluster = self.cluster
                row.endpoint = self._endpoint
                row.rpc_version = self.manager_class.RPC_API_VERSION
                row.down_time = self.service_down_time
            row.stopped_at = self.clock.utcnow()  # not ready yet: down until the first beat
            session.flush()
            self._not_ready = True
            return row.id, added

    @property
    def _endpoint(self) -> str | None:
        # The manager's own socket when the bridge gave it one, else the bridge's
        # (a bridge without `endpoint_of`, as the simulator's, has only its own).
        if self.bridge is None:
            return None
        endpoint_of = getattr(self.bridge, "endpoint_of", None)
        return self.bridge.endpoint if endpoint_of is None else endpoint_of(self.names[0])

    def _new_row(self) -> ServiceRecord:
        """The row of this service as first written (no heartbeat yet)."""
        return ServiceRecord(
            host=self.host,
            binary=self.binary,
            topic=self.topic,
            cluster=self.cluster,
            endpoint=self._endpoint,
            rpc_version=self.manager_class.RPC_API_VERSION,
            report_count=0,
            down_time=self.service_down_time,
        )

    def _heartbeat_writer(self) -> HeartbeatWriter:
        name = f"heartbeat-{self.topic}.{self.host}"
        return self._new_heartbeat_writer(self._write_heartbeat, name=name)

    def _heartbeat_task(self) -> Any:
        service = self

        @periodic_task(spacing=self.report_interval or 0, name=HEARTBEAT_TASK)
        def report_state(manager: Manager, context: Any) -> None:
            service.report_state(manager)

        return report_state

    def report_state(self, manager: Manager) -> None:
        """One heartbeat; runs in the manager's thread (the task the service adds).

        Asks ``is_working()``, then hands the write to the heartbeat thread and
        waits for it at most ``heartbeat_wait`` seconds (not at all while the
        database is known to be away).
        """
        if self._stopping.is_set():
            return  # stopping: the row stays as `stop` marked it
        if not manager.is_working():
            logger.error(
                "Manager for service %s %s is reporting problems, not sending heartbeat. "
                'Service will appear "down".',
                self.binary,
                self.host,
            )
            return
        # during an outage nobody waits: the write goes on, the mailbox with it
        wait = 0.0 if self.model_disconnected else self.heartbeat_wait
        self._heartbeats.beat(self.clock.utcnow(), wait=wait)

    def _write_heartbeat(self, now: dt.datetime, *, ready: bool = False) -> None:
        """Write one heartbeat stamped `now`; runs on the heartbeat thread.

        `ready` is the mark, written by the start sequence itself, that the service is
        up (not counted as a beat). Only it (or the first beat after a start that found
        the manager not working) clears ``stopped_at``, so a beat racing a `stop` never
        marks the service up again; nor does a beat re-create a row a stop removed.
        """
        try:
            if not self._update_heartbeat(now, ready=ready):
                if self._stopping.is_set():
                    return
                logger.warning("%s: service row is gone; re-creating it", self)
                with self.db.begin() as session:
                    row = self._new_row()
                    row.report_count = 0 if ready else 1
                    row.updated_at = now
                    session.add(row)
                    session.flush()
                    self.service_id = row.id
            self._not_ready = False
            self.last_heartbeat = self.clock.monotonic()
        except Exception:
            if not self.model_disconnected:
                self.model_disconnected = True
                logger.exception("%s: model server went away", self)
            return
        if self.model_disconnected:
            self.model_disconnected = False
            logger.error("Recovered model server connection!")

    def _update_heartbeat(self, now: dt.datetime, *, ready: bool) -> bool:
        """The heartbeat as one prepared UPDATE (no ORM load and flush); False if no row."""
        if self.service_id is None:
            return False
        clear = (ready or self._not_ready) and not self._stopping.is_set()
        params: dict[str, Any] = {"row_id": self.service_id, "beats": 0 if ready else 1, "now": now}
        if clear:
            params["endpoint"] = self._endpoint
        with self.db.engine.begin() as conn:
            return bool(conn.execute(_BEAT_AND_CLEAR if clear else _BEAT, params).rowcount)

    def _mark_stopped(self) -> None:
        """Mark this service's row stopped (or delete it), so readers see it down at once."""
        if self.service_id is None:
            return
        try:
            with self.db.begin() as session:
                row = session.get(ServiceRecord, self.service_id)
                if row is None:
                    return
                if self.on_stop == "remove":
                    session.delete(row)
                else:
                    row.stopped_at = self.clock.utcnow()
        except Exception:
            logger.exception("%s: could not mark the service down; it ages out instead", self)
            return
        logger.info("%s: %s", self, "removed" if self.on_stop == "remove" else "marked down")

    # -- supervision ------------------------------------------------------------------

    def _manager_died(self, ref: pykka.ActorRef[Any], failure: BaseException | None) -> None:
        if self._stopping.is_set() or self._starting or ref is not self.manager_ref:
            return  # a stop, a start that reports its own failure, or an old manager
        with self._lifecycle:
            if self._stopping.is_set():
                return
            logger.error("%s: manager died (%r); restarting it", self, failure)
            self._restarter = threading.Thread(
                target=self._restart, name=f"restart-{self.topic}.{self.host}", daemon=True
            )
            self._restarter.start()

    def _restart(self) -> None:
        dead = self.manager_ref
        if dead is not None and self.timer.is_alive():
            self.timer.proxy().unregister.defer(dead)  # the timer would drop it on a tick
        delay, longest = self.restart_backoff
        while not self._stopping.is_set():
            if self._stopping.wait(delay):
                return
            try:
                self._start_manager()
            except Exception:
                if self._stopping.is_set():
                    return  # stop() stops what this start left behind
                logger.exception("%s: restart failed; next try in %ss", self, delay)
                delay = min(max(delay * 2, 0.1), longest)
                continue
            with self._restarted:
                self.restarts += 1
                self._restarted.notify_all()
            return
