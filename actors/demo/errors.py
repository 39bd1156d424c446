"""The demo volume service's errors, in one module so a bridge can allow-list them.

Every error derives from `VolumeError`; each message says which volume, host or
size was involved and why the request was refused.
"""

from __future__ import annotations

import pykka

__all__ = [
    "BackendTimeout",
    "DriverNotReady",
    "InsufficientCapacity",
    "InvalidVolume",
    "NoValidBackend",
    "VolumeError",
    "VolumeExists",
    "VolumeNotFound",
]


class VolumeError(Exception):
    """The base class of the volume service's errors."""


class InvalidVolume(VolumeError, ValueError):
    """A volume id or size that no driver accepts (bad characters, size < 1)."""


class VolumeExists(VolumeError):
    """A volume with this id already exists."""


class VolumeNotFound(VolumeError, LookupError):
    """No volume with this id exists."""


class InsufficientCapacity(VolumeError):
    """The backend has not enough free capacity for the volume."""


class DriverNotReady(VolumeError):
    """The driver is not initialized: ``do_setup`` has not run or has failed."""


class NoValidBackend(VolumeError):
    """The scheduler found no up backend with enough free capacity."""


class BackendTimeout(VolumeError, pykka.Timeout):
    """The chosen backend did not answer in time; the volume may or may not exist."""
