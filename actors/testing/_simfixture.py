"""The ``sim`` pytest fixture: a `Simulation` per test, its trace on failure.

Options come from the ``simulation`` marker::

    @pytest.mark.simulation(seed=7, faults=True)
    def test_it(sim):
        ...

``ACTORS_SIM_REPLAY=<token>`` in the environment replays a printed run instead.
The pytest plugin re-exports `sim`, `pytest_configure` (the marker) and
`pytest_runtest_makereport` (a "simulation" report section when a test fails).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

from actors.testing._simulation import Simulation

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

__all__ = ["pytest_configure", "pytest_runtest_makereport", "sim"]

_SIM_KEY = pytest.StashKey[Simulation]()


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``simulation`` marker."""
    config.addinivalue_line(
        "markers",
        "simulation(seed=0, faults=False, **kwargs): options of the `sim` fixture's Simulation",
    )


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[Simulation]:
    """A deterministic `Simulation` (seed 0 unless the ``simulation`` marker says otherwise)."""
    marker = request.node.get_closest_marker("simulation")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    replay = os.environ.get("ACTORS_SIM_REPLAY")
    if replay:
        options.pop("seed", None)
        options["replay"] = replay
    elif "replay" not in options:
        options.setdefault("seed", 0)
    simulation = Simulation(**options)
    request.node.stash[_SIM_KEY] = simulation
    try:
        yield simulation
    finally:
        simulation.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Add the simulation's trace and replay token to a failed test's report."""
    report = yield
    simulation = item.stash.get(_SIM_KEY, None)
    if simulation is not None and report.failed and call.when == "call":
        report.sections.append(("simulation", simulation.trace.report()))
    return report
