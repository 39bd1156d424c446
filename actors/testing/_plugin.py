"""The pytest plugin of `actors` (registered through the ``pytest11`` entry point).

Installing ``actors`` gives every test suite these fixtures:

* ``manual_clock``: an `actors.ManualClock`;
* ``actor_factory``: an `ActorFactory` (managers started with test dependencies);
* ``cluster``: a factory of `Cluster` (real node stacks over ZeroMQ on loopback);
* ``sim``: a deterministic `Simulation` (options from the ``simulation`` marker);
* ``leak_check``: a `LeakCheck` that fails the test at teardown when an actor,
  a thread, a ZeroMQ socket or a file descriptor made during it is still there.

``actor_factory`` and ``cluster`` stop everything they made, then run the leak
check. Ini options: ``actors_leak_timeout`` (seconds, default 5) bounds how
long the check waits for things to finish stopping; ``actors_leak_ignore_threads``
lists thread names that are never leaks. A test marked
``@pytest.mark.actors_allow_leaks`` skips the check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from actors._clock import ManualClock
from actors.testing._cluster import Cluster, ServiceEntry
from actors.testing._factory import ActorFactory
from actors.testing._leaks import LeakCheck
from actors.testing._simfixture import pytest_configure as _configure_simulation
from actors.testing._simfixture import pytest_runtest_makereport, sim

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

__all__ = [
    "actor_factory",
    "cluster",
    "leak_check",
    "manual_clock",
    "pytest_runtest_makereport",
    "sim",
]

LEAK_TIMEOUT_INI = "actors_leak_timeout"
IGNORE_THREADS_INI = "actors_leak_ignore_threads"
ALLOW_LEAKS_MARK = "actors_allow_leaks"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the plugin's ini option."""
    parser.addini(
        LEAK_TIMEOUT_INI,
        "seconds the actors leak check waits for actors, threads and sockets to stop",
        default="5.0",
    )
    parser.addini(
        IGNORE_THREADS_INI,
        "names of threads the actors leak check never reports (one per line)",
        type="linelist",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the plugin's markers (so ``--strict-markers`` accepts them)."""
    config.addinivalue_line(
        "markers", f"{ALLOW_LEAKS_MARK}: do not fail this test when actors' leak check finds leaks"
    )
    _configure_simulation(config)


@pytest.fixture
def manual_clock() -> ManualClock:
    """A `ManualClock` at 0: time moves only through ``advance`` and ``set``."""
    return ManualClock()


@pytest.fixture
def leak_check(request: pytest.FixtureRequest) -> Iterator[LeakCheck]:
    """Fail the test at teardown if an actor, thread, socket or descriptor it made is left."""
    timeout = float(request.config.getini(LEAK_TIMEOUT_INI))
    ignored: list[str] = request.config.getini(IGNORE_THREADS_INI)
    check = LeakCheck(timeout=timeout, ignore_threads=ignored)
    yield check
    if request.node.get_closest_marker(ALLOW_LEAKS_MARK) is None:
        check.check()


@pytest.fixture
def actor_factory(
    leak_check: LeakCheck, manual_clock: ManualClock, tmp_path: Path
) -> Iterator[ActorFactory]:
    """Start actors with test dependencies: ``actor_factory(VolumeManager, host="h1")``.

    Defaults: a SQLite file in ``tmp_path``, the ``manual_clock``, a recording
    publisher. Every actor it started is stopped at teardown.
    """
    factory = ActorFactory(tmp_path, clock=manual_clock)
    try:
        yield factory
    finally:
        factory.stop()


@pytest.fixture
def cluster(
    leak_check: LeakCheck, manual_clock: ManualClock, tmp_path: Path
) -> Iterator[Callable[..., Cluster]]:
    """Make clusters of real node stacks: ``cluster(n=3, services=[VolumeManager])``.

    Each call returns a started `Cluster` with nodes ``node-1`` .. ``node-n``
    running `services` (add more with ``add_node``); keyword options go to
    `Cluster`. Every cluster shares the ``manual_clock`` and is stopped at teardown.
    """
    made: list[Cluster] = []

    def make(n: int = 0, services: Iterable[ServiceEntry] = (), **options: Any) -> Cluster:
        directory = tmp_path / f"cluster-{len(made) + 1}"
        directory.mkdir()
        options.setdefault("clock", manual_clock)
        built = Cluster(directory, **options)
        made.append(built)
        entries = list(services)
        for i in range(1, n + 1):
            built.add_node(f"node-{i}", entries)
        return built

    try:
        yield make
    finally:
        for built in reversed(made):
            built.stop()
