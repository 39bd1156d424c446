"""The demo's volume drivers: capacity, duplicates, unknown ids, sparse files, loading."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

from actors import create_driver, load_driver
from actors.demo import (
    DriverNotReady,
    GiB,
    InsufficientCapacity,
    InvalidVolume,
    MemoryDriver,
    SparseFileDriver,
    VolumeDriver,
    VolumeExists,
    VolumeNotFound,
)

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(params=["memory", "sparse"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    made: MemoryDriver | SparseFileDriver
    if request.param == "memory":
        made = MemoryDriver(capacity_gb=10)
    else:
        made = SparseFileDriver(directory=tmp_path / "volumes", capacity_gb=10)
    made.do_setup()
    return made


def test_create_delete_and_stats(driver: Any) -> None:
    assert isinstance(driver, VolumeDriver)
    assert isinstance(driver, MemoryDriver | SparseFileDriver)
    assert driver.initialized
    empty = driver.get_volume_stats()
    assert empty["total_capacity_gb"] == 10
    assert empty["free_capacity_gb"] == 10
    assert empty["allocated_capacity_gb"] == 0
    assert empty["driver_name"] == driver.driver_name
    assert empty["volume_count"] == 0

    assert "vol-1" in driver.create_volume("vol-1", 3)
    driver.create_volume("vol-2", 4)
    stats = driver.get_volume_stats()
    assert (stats["free_capacity_gb"], stats["allocated_capacity_gb"]) == (3, 7)
    assert stats["volume_count"] == 2

    driver.delete_volume("vol-1")
    stats = driver.get_volume_stats()
    assert (stats["free_capacity_gb"], stats["allocated_capacity_gb"]) == (6, 4)
    assert stats["volume_count"] == 1


def test_capacity_is_kept(driver: Any) -> None:
    driver.create_volume("a", 6)
    with pytest.raises(InsufficientCapacity, match=r"'b' of 5 GB.*only 4 of 10 GB free"):
        driver.create_volume("b", 5)
    driver.create_volume("b", 4)  # exactly what is left fits
    with pytest.raises(InsufficientCapacity):
        driver.create_volume("c", 1)
    assert driver.get_volume_stats()["volume_count"] == 2


def test_duplicate_and_unknown_ids(driver: Any) -> None:
    driver.create_volume("a", 1)
    with pytest.raises(VolumeExists, match="'a' already exists"):
        driver.create_volume("a", 2)
    with pytest.raises(VolumeNotFound, match="'missing' does not exist"):
        driver.delete_volume("missing")
    driver.delete_volume("a")
    with pytest.raises(VolumeNotFound):
        driver.delete_volume("a")
    assert driver.get_volume_stats()["allocated_capacity_gb"] == 0


@pytest.mark.parametrize(
    ("volume_id", "size"),
    [("../escape", 1), (".hidden", 1), ("", 1), ("a/b", 1), ("ok", 0), ("ok", 1.5), ("ok", True)],
)
def test_invalid_requests(driver: Any, volume_id: str, size: Any) -> None:
    with pytest.raises(InvalidVolume):
        driver.create_volume(volume_id, size)
    assert driver.get_volume_stats()["volume_count"] == 0


def test_nothing_before_setup(tmp_path: Path) -> None:
    for driver in (MemoryDriver(), SparseFileDriver(tmp_path / "later")):
        assert not driver.initialized
        with pytest.raises(DriverNotReady, match="not initialized"):
            driver.create_volume("a", 1)
        with pytest.raises(DriverNotReady):
            driver.delete_volume("a")
    assert not (tmp_path / "later").exists()
    with pytest.raises(ValueError, match="capacity_gb must be positive"):
        MemoryDriver(capacity_gb=0)


def test_sparse_files_are_sparse_and_survive(tmp_path: Path) -> None:
    directory = tmp_path / "deep" / "volumes"
    driver = SparseFileDriver(directory=directory, capacity_gb=8)
    driver.do_setup()
    assert directory.is_dir()
    location = driver.create_volume("big", 5)
    path = directory / "volume-big"
    assert location == str(path)
    st = os.stat(path)
    assert st.st_size == 5 * GiB
    assert st.st_blocks * 512 < 1024 * 1024  # 5 GiB apparent, (almost) nothing on disk
    stats = driver.get_volume_stats()
    assert stats["allocated_capacity_gb"] == 5
    assert stats["physical_used_bytes"] == st.st_blocks * 512
    assert stats["directory"] == str(directory)
    assert oct(st.st_mode & 0o777) == oct(0o600)

    # the files are the state: a new driver on the same directory sees the volume
    again = SparseFileDriver(directory=directory, capacity_gb=8)
    again.do_setup()
    assert again.get_volume_stats()["free_capacity_gb"] == 3
    with pytest.raises(VolumeExists):
        again.create_volume("big", 1)
    with pytest.raises(InsufficientCapacity):
        again.create_volume("more", 4)
    # other files in the directory are not volumes
    (directory / "notes.txt").write_text("not a volume")
    assert again.get_volume_stats()["volume_count"] == 1
    again.delete_volume("big")
    assert not path.exists()
    assert again.get_volume_stats()["allocated_capacity_gb"] == 0


def test_loaded_by_entry_point_and_by_import_path(tmp_path: Path) -> None:
    assert load_driver("memory") is MemoryDriver
    assert load_driver("sparse") is SparseFileDriver
    assert load_driver("actors.demo.drivers:MemoryDriver") is MemoryDriver
    assert load_driver("actors.demo:SparseFileDriver") is SparseFileDriver
    sparse = create_driver("sparse", directory=str(tmp_path / "v"), capacity_gb=2)
    assert isinstance(sparse, SparseFileDriver)
    assert sparse.capacity_gb == 2
    memory = create_driver("actors.demo.drivers:MemoryDriver", capacity_gb=7)
    assert isinstance(memory, MemoryDriver)
    assert memory.capacity_gb == 7
