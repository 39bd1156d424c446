"""Drivers: import paths and entry points, with errors that say what was tried."""

from __future__ import annotations

import importlib.metadata as md
from typing import Any

import pytest

from actors import DriverNotFound, create_driver, load_driver


class MemoryDriver:
    def __init__(self, size: int = 1) -> None:
        self.size = size

    class Nested:
        pass


def test_import_path() -> None:
    assert load_driver("tests.test_drivers:MemoryDriver") is MemoryDriver
    assert load_driver("tests.test_drivers:MemoryDriver.Nested") is MemoryDriver.Nested
    driver = create_driver("tests.test_drivers:MemoryDriver", size=5)
    assert isinstance(driver, MemoryDriver)
    assert driver.size == 5


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("tests.no_such_module:Driver", "module 'tests.no_such_module' cannot be imported"),
        ("tests.test_drivers:Missing", "'tests.test_drivers' has no attribute 'Missing'"),
        (":Driver", "must look like 'package.module:Class'"),
        ("sparse-files", "tried entry point 'sparse-files' in group 'actors.drivers'"),
    ],
)
def test_bad_specs_say_what_was_tried(spec: str, says: str) -> None:
    with pytest.raises(DriverNotFound) as info:
        load_driver(spec)
    assert says in str(info.value)
    assert repr(spec) in str(info.value)


def test_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    good = md.EntryPoint("memory", "tests.test_drivers:MemoryDriver", "actors.drivers")
    broken = md.EntryPoint("broken", "tests.test_drivers:Gone", "actors.drivers")
    real = md.entry_points

    def fake(**params: Any) -> Any:
        if params.get("group") == "actors.drivers":
            found = [ep for ep in (good, broken) if ep.name == params.get("name")]
            return md.EntryPoints(found)
        return real(**params)

    monkeypatch.setattr("actors._drivers.entry_points", fake)
    assert load_driver("memory") is MemoryDriver
    with pytest.raises(DriverNotFound, match=r"entry point 'broken'.*tests.test_drivers:Gone"):
        load_driver("broken")
