"""Drivers: one manager, many drivers, chosen by a string in the config.

A spec is either ``package.module:Class`` (an import path; ``Outer.Inner``
after the colon works too) or the name of an entry point in the
``actors.drivers`` group, which installed packages use to offer drivers::

    [project.entry-points."actors.drivers"]
    sparse = "mypkg.drivers:SparseFileDriver"

Example:
    >>> load_driver("collections:OrderedDict")
    <class 'collections.OrderedDict'>
    >>> try:
    ...     load_driver("no-such-driver")
    ... except DriverNotFound as exc:
    ...     print(exc)
    cannot load driver 'no-such-driver': tried entry point 'no-such-driver' in group \
'actors.drivers': not installed
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

__all__ = ["DRIVER_GROUP", "DriverNotFound", "create_driver", "load_driver"]

DRIVER_GROUP = "actors.drivers"
"""The entry-point group that names installed drivers."""


class DriverNotFound(LookupError):
    """A driver spec that could not be loaded; the message names what was tried."""


def _from_import_path(spec: str) -> Any:
    module_name, _, qualname = spec.partition(":")
    if not module_name or not qualname:
        msg = f"import path {spec!r} must look like 'package.module:Class'"
        raise DriverNotFound(msg)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        msg = f"import path {spec!r}: module {module_name!r} cannot be imported ({exc})"
        raise DriverNotFound(msg) from exc
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            msg = f"import path {spec!r}: {module_name!r} has no attribute {qualname!r}"
            raise DriverNotFound(msg) from exc
    return obj


def load_driver(spec: str, *, group: str = DRIVER_GROUP) -> Any:
    """Return the driver class (or factory) that `spec` names.

    Raises:
        DriverNotFound: nothing loadable by that spec; the message says what was tried.
    """
    spec = spec.strip()
    if ":" in spec:
        try:
            return _from_import_path(spec)
        except DriverNotFound as exc:
            msg = f"cannot load driver {spec!r}: tried {exc}"
            raise DriverNotFound(msg) from exc.__cause__
    found = entry_points(group=group, name=spec)
    if not found:
        msg = (
            f"cannot load driver {spec!r}: tried entry point {spec!r} in group {group!r}: "
            "not installed"
        )
        raise DriverNotFound(msg)
    entry = next(iter(found))
    try:
        return entry.load()
    except (ImportError, AttributeError) as exc:
        msg = (
            f"cannot load driver {spec!r}: tried entry point {spec!r} in group {group!r} "
            f"({entry.value}): {exc}"
        )
        raise DriverNotFound(msg) from exc


def create_driver(spec: str, *args: Any, group: str = DRIVER_GROUP, **kwargs: Any) -> Any:
    """Load the driver `spec` names and instantiate it with the given arguments."""
    return load_driver(spec, group=group)(*args, **kwargs)
