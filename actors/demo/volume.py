"""The volume manager: one per backend, it owns that backend's volumes.

`VolumeManager` is Cinder's volume manager in small. Its driver (chosen by a
config string) does the storage work; the manager keeps one row per volume in
its own ``volumes`` table, and tells the schedulers how much room it has:

* at the end of `init_host`, once the driver is set up;
* after every create and delete, since both change the free capacity;
* periodically (every ``capabilities_interval`` seconds, 60 by default),
  gathering fresh stats from the driver in the same task that publishes them,
  so what the schedulers get is never a cycle old.

A driver that failed to set up makes `is_working` false, so the service stops
heartbeating and the schedulers soon treat the backend as down; its periodic
publish then resends the last capabilities it had (as Cinder does).
"""

from __future__ import annotations

import datetime as dt  # noqa: TC003  (SQLAlchemy resolves Mapped[dt.datetime] at run time)
import logging
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import MetaData, String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from actors import SchedulerDependentManager, create_driver, periodic_task
from actors.db import UTCDateTime
from actors.demo.drivers import VolumeDriver, check_request
from actors.demo.errors import DriverNotReady, NoValidBackend, VolumeExists, VolumeNotFound

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pykka

    from actors.db import Database

__all__ = ["Volume", "VolumeBase", "VolumeManager", "local_volume_rpc"]

logger = logging.getLogger(__name__)


class VolumeBase(DeclarativeBase):
    """The declarative base of the demo's tables (a metadata of their own)."""

    metadata = MetaData()


class Volume(VolumeBase):
    """A row of the ``volumes`` table: one volume, on the host that created it."""

    __tablename__ = "volumes"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    size_gb: Mapped[int]
    status: Mapped[str] = mapped_column(String(32))
    location: Mapped[str | None] = mapped_column(String(1024), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    def as_dict(self) -> dict[str, Any]:
        """The volume as a plain dict (what the managers' methods return)."""
        return {
            "id": self.id,
            "host": self.host,
            "size_gb": self.size_gb,
            "status": self.status,
            "location": self.location,
            "created_at": self.created_at,
        }

    def __repr__(self) -> str:
        return f"Volume(id={self.id!r}, host={self.host!r}, size_gb={self.size_gb!r})"


# -- volume managers running in this process, by backend (cluster or host) ---------

_local_lock = threading.Lock()
_local_managers: dict[str, list[pykka.ActorRef[Any]]] = {}


def local_volume_rpc(backend: str) -> Any:
    """Return a proxy of a volume manager running in this process for `backend`.

    A scheduler's default ``volume_rpc``: `backend` is a service's cluster, or
    else its host, as the scheduler's backends are keyed.

    Raises:
        NoValidBackend: no volume manager for that backend runs in this process.
    """
    with _local_lock:
        refs = list(_local_managers.get(backend, ()))
    for ref in refs:
        if ref.is_alive():
            return ref.proxy()
    msg = f"no volume manager for backend {backend!r} runs in this process"
    raise NoValidBackend(msg)


class VolumeManager(SchedulerDependentManager):
    """Creates and deletes volumes through its driver, and reports its capacity.

    Args:
        host: the host it serves (see `Manager`).
        service_name: the name it reports under ("volume": what schedulers keep).
        cluster: its cluster, if any; schedulers then key it by the cluster.
        driver: the driver spec: an ``actors.drivers`` entry-point name
            ("memory", "sparse") or ``package.module:Class``.
        driver_options: keyword arguments for the driver's constructor.
        **kwargs: passed on to `SchedulerDependentManager` (``db``, ``clock``,
            ``publisher``, ``capabilities_interval``, ...).

    Raises:
        DriverNotFound: nothing loadable by `driver`.
        TypeError: what `driver` names does not behave like a `VolumeDriver`.
    """

    TOPIC = "volume"
    RPC_API_VERSION = "1.1"
    OPTIONS: ClassVar[tuple[str, ...]] = ("driver", "driver_options")

    def __init__(
        self,
        host: str | None = None,
        service_name: str = "volume",
        cluster: str | None = None,
        *,
        driver: str = "memory",
        driver_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(host=host, service_name=service_name, cluster=cluster, **kwargs)
        self.driver_spec = driver
        built = create_driver(driver, **dict(driver_options or {}))
        if not isinstance(built, VolumeDriver):
            msg = f"driver {driver!r} built {built!r}, which is not a VolumeDriver"
            raise TypeError(msg)
        self.driver: VolumeDriver = built
        self._tables_ready = False

    # -- lifecycle -------------------------------------------------------------------

    def on_start(self) -> None:
        """Make this manager reachable through `local_volume_rpc`."""
        with _local_lock:
            _local_managers.setdefault(self.service_topic_queue, []).append(self.actor_ref)

    def on_stop(self) -> None:
        """Stop being reachable through `local_volume_rpc`."""
        with _local_lock:
            refs = _local_managers.get(self.service_topic_queue, [])
            if self.actor_ref in refs:
                refs.remove(self.actor_ref)
            if not refs:
                _local_managers.pop(self.service_topic_queue, None)

    def on_failure(self, *args: Any) -> None:
        """Stop being reachable when the actor dies."""
        self.on_stop()

    def init_host(
        self, service_id: int | None = None, added_to_cluster: bool | None = None
    ) -> None:
        """Create the volumes table, set the driver up, then publish capabilities.

        A driver whose setup fails is logged and left uninitialized: the manager
        keeps serving reads, refuses creates and deletes, and stops heartbeating.
        """
        self._volumes_db()
        try:
            self.driver.do_setup()
        except Exception:
            logger.exception("%s: setting up driver %r failed", self, self.driver)
            return
        if not self.driver.initialized:
            logger.error("%s: driver %r is not initialized after setup", self, self.driver)
            return
        logger.info("%s: driver %r is ready", self, self.driver)
        self.publish_service_capabilities(self.periodic_context())

    def is_working(self) -> bool:
        """Return whether the driver is initialized (the service heartbeats only then)."""
        return bool(self.driver.initialized)

    @periodic_task(spacing=60)
    def publish_service_capabilities(self, context: Any = None) -> None:
        """Gather fresh stats from the driver, then send them to the schedulers.

        With the driver not initialized, it warns and resends the last
        capabilities (if any).
        """
        if self.driver.initialized:
            try:
                self.update_service_capabilities(self.driver.get_volume_stats())
            except Exception:
                logger.exception("%s: gathering stats failed; publishing the last ones", self)
        else:
            logger.warning(
                "%s: driver %r is not initialized; publishing the last known capabilities",
                self,
                self.driver,
            )
        super().publish_service_capabilities(context)

    # -- the volume API ----------------------------------------------------------

    def create_volume(self, volume_id: str, size_gb: int) -> dict[str, Any]:
        """Create a volume on the driver and record it; return it as a dict.

        Nothing is left behind on failure: a record that cannot be written makes
        the driver delete what it just created.

        Raises:
            DriverNotReady: the driver is not initialized.
            InvalidVolume: a bad id or size.
            VolumeExists: a volume with this id exists (on any host).
            InsufficientCapacity: it does not fit on this backend.
        """
        self._require_driver(f"create volume {volume_id!r}")
        check_request(volume_id, size_gb)
        db = self._volumes_db()
        with db.session() as session:
            existing = session.get(Volume, volume_id)
        if existing is not None:
            msg = f"volume {volume_id!r} already exists (on host {existing.host!r})"
            raise VolumeExists(msg)
        location = self.driver.create_volume(volume_id, size_gb)
        volume = Volume(
            id=volume_id,
            host=self.host,
            size_gb=size_gb,
            status="available",
            location=location,
            created_at=self.clock.utcnow(),
        )
        try:
            with db.begin() as session:
                session.add(volume)
        except Exception as exc:
            self._undo_create(volume_id)
            if isinstance(exc, IntegrityError):
                msg = f"volume {volume_id!r} already exists (created concurrently)"
                raise VolumeExists(msg) from exc
            raise
        logger.info("%s: created volume %s (%d GB) at %s", self, volume_id, size_gb, location)
        self.publish_service_capabilities()
        return volume.as_dict()

    def delete_volume(self, volume_id: str) -> None:
        """Delete a volume of this host from the driver and from the table.

        A volume the driver no longer has is only logged: its record goes anyway.

        Raises:
            DriverNotReady: the driver is not initialized.
            VolumeNotFound: this host has no such volume.
        """
        self._require_driver(f"delete volume {volume_id!r}")
        self._own_volume(volume_id)
        try:
            self.driver.delete_volume(volume_id)
        except VolumeNotFound:
            logger.warning("%s: volume %s was already gone from the driver", self, volume_id)
        with self._volumes_db().begin() as session:
            session.execute(delete(Volume).where(Volume.id == volume_id))
        logger.info("%s: deleted volume %s", self, volume_id)
        self.publish_service_capabilities()

    def get_volume(self, volume_id: str) -> dict[str, Any]:
        """Return one of this host's volumes as a dict.

        Raises:
            VolumeNotFound: this host has no such volume.
        """
        return self._own_volume(volume_id).as_dict()

    def list_volumes(self) -> list[dict[str, Any]]:
        """Return this host's volumes, oldest first."""
        query = (
            select(Volume).where(Volume.host == self.host).order_by(Volume.created_at, Volume.id)
        )
        with self._volumes_db().session() as session:
            return [row.as_dict() for row in session.scalars(query)]

    def capacity(self) -> dict[str, Any]:
        """Return the driver's stats, gathered now (``*_capacity_gb`` and more).

        Raises:
            DriverNotReady: the driver is not initialized.
        """
        self._require_driver("report capacity")
        return self.driver.get_volume_stats()

    # -- helpers ---------------------------------------------------------------------

    def _volumes_db(self) -> Database:
        db = self.db
        if not self._tables_ready:
            db.create_all(VolumeBase.metadata)
            self._tables_ready = True
        return db

    def _require_driver(self, action: str) -> None:
        if not self.driver.initialized:
            msg = f"cannot {action} on {self.host}: driver {self.driver!r} is not initialized"
            raise DriverNotReady(msg)

    def _own_volume(self, volume_id: str) -> Volume:
        with self._volumes_db().session() as session:
            row = session.get(Volume, volume_id)
        if row is None:
            msg = f"volume {volume_id!r} does not exist"
            raise VolumeNotFound(msg)
        if row.host != self.host:
            msg = f"volume {volume_id!r} is on host {row.host!r}, not on {self.host!r}"
            raise VolumeNotFound(msg)
        return row

    def _undo_create(self, volume_id: str) -> None:
        try:
            self.driver.delete_volume(volume_id)
        except Exception:
            logger.exception("%s: could not undo the creation of %s", self, volume_id)
