"""An example application: a volume service in Cinder's image.

Three pieces, each a real part of the runtime put to use:

* **Drivers** (`actors.demo.drivers`): `MemoryDriver` (volumes in a dict) and
  `SparseFileDriver` (one sparse file per volume). A manager picks one by a
  config string, the entry-point name ``"memory"`` or ``"sparse"``, or any
  ``package.module:Class`` that behaves like a `VolumeDriver`.
* **Volume managers** (`VolumeManager`, one per backend): create and delete
  volumes through the driver, keep them in a ``volumes`` table of their own,
  and publish their capacity to the schedulers after setup, after every
  create or delete, and periodically (stats gathered fresh in the same task).
* **A scheduler** (`SchedulerManager`): receives those reports and places each
  new volume on the up backend with the most free capacity, reserving the
  space locally until the backend's next report.

Everything runs in one process here; across hosts the same managers run in
nodes, the reports travel over the bridge and the scheduler's ``volume_rpc``
returns remote proxies.

Example:
    >>> import os, tempfile
    >>> from actors import ManualClock
    >>> from actors.db import Database, ServiceRecord
    >>> from actors.demo import SchedulerManager, VolumeManager
    >>> clock = ManualClock()
    >>> tmp = tempfile.TemporaryDirectory()
    >>> db = Database("sqlite:///" + os.path.join(tmp.name, "demo.sqlite3"))
    >>> with db.begin() as session:  # what the services' heartbeats would write
    ...     for host in ("big", "small"):
    ...         session.add(ServiceRecord(host=host, binary="actors-volume",
    ...                                   topic="volume", updated_at=clock.utcnow()))
    >>> scheduler = SchedulerManager.start(host="sched", db=db, clock=clock).proxy()
    >>> volumes = {
    ...     host: VolumeManager.start(host=host, db=db, clock=clock,
    ...                               driver_options={"capacity_gb": size})
    ...     for host, size in (("big", 100), ("small", 10))
    ... }
    >>> for ref in volumes.values():
    ...     ref.proxy().init_host().get(timeout=5)  # sets up, then publishes
    >>> scheduler.create_volume("vol-1", 8).get(timeout=5)["host"]
    'big'
    >>> [b["free_capacity_gb"] for b in scheduler.backends().get(timeout=5)]
    [92.0, 10.0]
    >>> _ = scheduler.actor_ref.stop(), [ref.stop() for ref in volumes.values()]
    >>> db.dispose(), tmp.cleanup()
    (None, None)
"""

from actors.demo.drivers import GiB, MemoryDriver, SparseFileDriver, VolumeDriver
from actors.demo.errors import (
    BackendTimeout,
    DriverNotReady,
    InsufficientCapacity,
    InvalidVolume,
    NoValidBackend,
    VolumeError,
    VolumeExists,
    VolumeNotFound,
)
from actors.demo.scheduler import SchedulerManager
from actors.demo.volume import Volume, VolumeBase, VolumeManager, local_volume_rpc

__all__ = [
    "BackendTimeout",
    "DriverNotReady",
    "GiB",
    "InsufficientCapacity",
    "InvalidVolume",
    "MemoryDriver",
    "NoValidBackend",
    "SchedulerManager",
    "SparseFileDriver",
    "Volume",
    "VolumeBase",
    "VolumeDriver",
    "VolumeError",
    "VolumeExists",
    "VolumeManager",
    "VolumeNotFound",
    "local_volume_rpc",
]
