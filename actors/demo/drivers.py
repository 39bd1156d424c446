"""Volume drivers: where a `VolumeManager`'s volumes actually live.

A manager picks its driver by a string in its config (an entry-point name of
the ``actors.drivers`` group, or ``package.module:Class``) and builds it with
`actors.create_driver`. Two come with the demo:

* ``memory`` (`MemoryDriver`): volumes are entries in a dict; nothing survives
  the process. For tests and trying things out.
* ``sparse`` (`SparseFileDriver`): each volume is a sparse file of the volume's
  size in a directory, so a 100 GB volume costs no disk until written to.
  Volumes survive restarts: the directory is the driver's state.

Both keep to a configured capacity and refuse, with a clear `VolumeError`, a
volume that does not fit, an id that exists already and an id that does not.

Example:
    >>> from actors import create_driver
    >>> driver = create_driver("memory", capacity_gb=10)
    >>> driver.do_setup()
    >>> driver.create_volume("vol-1", 4)
    'memory://vol-1'
    >>> driver.get_volume_stats()["free_capacity_gb"]
    6.0
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from actors.demo.errors import (
    DriverNotReady,
    InsufficientCapacity,
    InvalidVolume,
    VolumeExists,
    VolumeNotFound,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["GiB", "MemoryDriver", "SparseFileDriver", "VolumeDriver"]

logger = logging.getLogger(__name__)

GiB = 1024**3
"""Bytes in one of the drivers' "GB" (as in Cinder, sizes are binary gigabytes)."""

_VOLUME_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


@runtime_checkable
class VolumeDriver(Protocol):
    """What a `VolumeManager` needs of its driver."""

    @property
    def initialized(self) -> bool:
        """Whether `do_setup` succeeded; a manager works only while this is true."""
        ...

    def do_setup(self) -> None:
        """Prepare the backend (create directories, connect); sets `initialized`."""
        ...

    def create_volume(self, volume_id: str, size_gb: int) -> str:
        """Create a volume of `size_gb` GB and return where it lives (its location)."""
        ...

    def delete_volume(self, volume_id: str) -> None:
        """Delete a volume."""
        ...

    def get_volume_stats(self) -> dict[str, Any]:
        """Fresh stats: ``total/free/allocated_capacity_gb``, ``driver_name`` and more."""
        ...


def check_request(volume_id: str, size_gb: int | None = None) -> None:
    """Refuse an id that is not a plain name (it becomes a file name) or a size below 1 GB.

    Raises:
        InvalidVolume: the id or the size is not acceptable.
    """
    if not isinstance(volume_id, str) or not _VOLUME_ID.fullmatch(volume_id):
        msg = (
            f"invalid volume id {volume_id!r}: use 1-255 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
        raise InvalidVolume(msg)
    if size_gb is not None and (
        isinstance(size_gb, bool) or not isinstance(size_gb, int) or size_gb < 1
    ):
        msg = f"invalid size for volume {volume_id!r}: {size_gb!r} (a whole number of GB >= 1)"
        raise InvalidVolume(msg)


class _CapacityDriver:
    """The bookkeeping both demo drivers share: setup flag, capacity, checks, stats."""

    driver_name: ClassVar[str] = "undefined"
    driver_version: ClassVar[str] = "1.0"
    storage_protocol: ClassVar[str] = "local"

    def __init__(self, capacity_gb: float) -> None:
        if capacity_gb <= 0:
            msg = f"capacity_gb must be positive, got {capacity_gb!r}"
            raise ValueError(msg)
        self.capacity_gb = float(capacity_gb)
        self.initialized = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(capacity_gb={self.capacity_gb:g})"

    def do_setup(self) -> None:
        """Mark the driver ready."""
        self.initialized = True

    def _require_ready(self, action: str) -> None:
        if not self.initialized:
            msg = f"cannot {action}: {self.driver_name} driver is not initialized (do_setup)"
            raise DriverNotReady(msg)

    def _check_fits(self, volume_id: str, size_gb: int, allocated_gb: float) -> None:
        free = self.capacity_gb - allocated_gb
        if size_gb > free:
            msg = (
                f"cannot create volume {volume_id!r} of {size_gb} GB on the {self.driver_name} "
                f"driver: only {free:g} of {self.capacity_gb:g} GB free"
            )
            raise InsufficientCapacity(msg)

    def _stats(self, sizes_gb: Mapping[str, float]) -> dict[str, Any]:
        allocated = float(sum(sizes_gb.values()))
        return {
            "driver_name": self.driver_name,
            "driver_version": self.driver_version,
            "storage_protocol": self.storage_protocol,
            "total_capacity_gb": self.capacity_gb,
            "free_capacity_gb": self.capacity_gb - allocated,
            "allocated_capacity_gb": allocated,
            "volume_count": len(sizes_gb),
        }


class MemoryDriver(_CapacityDriver):
    """Volumes as entries of a dict: nothing is stored anywhere.

    Args:
        capacity_gb: the capacity it reports and keeps to.
    """

    driver_name = "memory"
    storage_protocol = "memory"

    def __init__(self, capacity_gb: float = 100) -> None:
        super().__init__(capacity_gb)
        self._volumes: dict[str, int] = {}

    def create_volume(self, volume_id: str, size_gb: int) -> str:
        """Record a volume; return ``memory://<id>``.

        Raises:
            DriverNotReady: `do_setup` has not run.
            InvalidVolume: a bad id or size.
            VolumeExists: the id is taken.
            InsufficientCapacity: it does not fit.
        """
        self._require_ready(f"create volume {volume_id!r}")
        check_request(volume_id, size_gb)
        if volume_id in self._volumes:
            msg = f"volume {volume_id!r} already exists on the memory driver"
            raise VolumeExists(msg)
        self._check_fits(volume_id, size_gb, sum(self._volumes.values()))
        self._volumes[volume_id] = size_gb
        return f"memory://{volume_id}"

    def delete_volume(self, volume_id: str) -> None:
        """Forget a volume.

        Raises:
            DriverNotReady: `do_setup` has not run.
            VolumeNotFound: no such volume.
        """
        self._require_ready(f"delete volume {volume_id!r}")
        try:
            del self._volumes[volume_id]
        except KeyError:
            msg = f"volume {volume_id!r} does not exist on the memory driver"
            raise VolumeNotFound(msg) from None

    def get_volume_stats(self) -> dict[str, Any]:
        """Capacity and volume count, computed now."""
        return self._stats(self._volumes)


class SparseFileDriver(_CapacityDriver):
    """Each volume is a sparse file ``volume-<id>`` of its full size in `directory`.

    The files are the driver's only state: a new driver on the same directory
    sees the volumes an earlier one created. Capacity is the configured
    `capacity_gb` (the files' apparent sizes count against it, not the disk
    blocks they use), so the directory's file system need not be that large.

    Args:
        directory: where the files go; `do_setup` creates it.
        capacity_gb: the capacity it reports and keeps to.
    """

    driver_name = "sparse"
    storage_protocol = "file"
    PREFIX: ClassVar[str] = "volume-"

    def __init__(self, directory: str | os.PathLike[str], capacity_gb: float = 100) -> None:
        super().__init__(capacity_gb)
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(directory={str(self.directory)!r}, "
            f"capacity_gb={self.capacity_gb:g})"
        )

    def do_setup(self) -> None:
        """Create the directory (and its parents) if needed, then mark the driver ready."""
        self.directory.mkdir(parents=True, exist_ok=True)
        super().do_setup()

    def path(self, volume_id: str) -> Path:
        """The file that backs `volume_id` (whether or not it exists)."""
        check_request(volume_id)
        return self.directory / f"{self.PREFIX}{volume_id}"

    def _files(self) -> dict[str, os.stat_result]:
        found = {}
        for entry in os.scandir(self.directory):
            if entry.name.startswith(self.PREFIX) and entry.is_file(follow_symlinks=False):
                found[entry.name.removeprefix(self.PREFIX)] = entry.stat(follow_symlinks=False)
        return found

    def create_volume(self, volume_id: str, size_gb: int) -> str:
        """Create the volume's sparse file; return its absolute path.

        Raises:
            DriverNotReady: `do_setup` has not run.
            InvalidVolume: a bad id or size.
            VolumeExists: the file exists.
            InsufficientCapacity: it does not fit.
        """
        self._require_ready(f"create volume {volume_id!r}")
        check_request(volume_id, size_gb)
        path = self.path(volume_id)
        files = self._files()
        if volume_id in files:
            msg = f"volume {volume_id!r} already exists at {path}"
            raise VolumeExists(msg)
        self._check_fits(volume_id, size_gb, sum(s.st_size for s in files.values()) / GiB)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            msg = f"volume {volume_id!r} already exists at {path}"
            raise VolumeExists(msg) from None
        try:
            os.ftruncate(fd, size_gb * GiB)  # extends without writing: a sparse file
        except OSError:
            path.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        logger.debug("created sparse file %s (%d GB)", path, size_gb)
        return str(path.absolute())

    def delete_volume(self, volume_id: str) -> None:
        """Remove the volume's file.

        Raises:
            DriverNotReady: `do_setup` has not run.
            VolumeNotFound: no such file.
        """
        self._require_ready(f"delete volume {volume_id!r}")
        path = self.path(volume_id)
        try:
            path.unlink()
        except FileNotFoundError:
            msg = f"volume {volume_id!r} does not exist (no file {path})"
            raise VolumeNotFound(msg) from None

    def get_volume_stats(self) -> dict[str, Any]:
        """Capacity from the files' sizes, plus the disk actually used and the directory.

        Raises:
            DriverNotReady: `do_setup` has not run (the directory may not exist).
        """
        self._require_ready("read stats")
        files = self._files()
        stats = self._stats({vid: st.st_size / GiB for vid, st in files.items()})
        stats["physical_used_bytes"] = sum(st.st_blocks * 512 for st in files.values())
        stats["directory"] = str(self.directory.absolute())
        return stats
