"""The fault suite's network, database and node, built once per module and always removed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults._cluster import Node
from tests.faults._lab import Lab, LabUnavailable, Postgres


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    try:
        network = Lab.create()
    except LabUnavailable as exc:
        pytest.skip(f"fault suite skipped: {exc}")
    try:
        yield network
    finally:
        network.heal()
        network.close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults")
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def pg(lab: Lab, workdir: Path) -> Iterator[Postgres]:
    try:
        server = Postgres(lab, workdir)
    except FileNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}: .ci/run must install PostgreSQL")
        pytest.skip(f"{exc}; install Debian's postgresql package to run the fault suite")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def node(lab: Lab, pg: Postgres, workdir: Path) -> Iterator[Node]:
    handle = Node(lab, pg, workdir)
    try:
        yield handle
    finally:
        handle.kill()


@pytest.fixture(autouse=True)
def _healed(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts and ends with no fault in place."""
    yield
    if "lab" in request.fixturenames:
        request.getfixturevalue("lab").heal()
