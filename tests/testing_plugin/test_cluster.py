"""`Cluster` used directly: managers it can load, time across nodes, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors import Manager, ManualClock, ServiceStartError, periodic_task
from actors.testing import Cluster, LeakCheck

RUNS: list[tuple[float, str]] = []


class Ticking(Manager):
    """Records (clock reading, host) each time its periodic task runs."""

    TOPIC = "ticking"
    OPTIONS = ("spacing",)  # what a node's config may set (nodes check it once declared)

    def __init__(self, *, spacing: float = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.set_periodic_spacing("record", spacing)

    def where(self) -> str:
        return self.host

    @periodic_task(spacing=1)
    def record(self, context: Any) -> None:
        RUNS.append((self.clock.monotonic(), self.host))


def test_advance_runs_every_nodes_work_in_time_order(tmp_path: Path) -> None:
    RUNS.clear()
    with Cluster(tmp_path, clock=ManualClock(), report_interval=100) as cluster:
        cluster.add_node("a", [(Ticking, {"spacing": 3})])
        cluster.add_node("b", [(Ticking, {"spacing": 5})])
        RUNS.clear()
        start = cluster.clock.monotonic()
        cluster.advance(15)
        assert cluster.clock.monotonic() == start + 15
    times = [t for t, _ in RUNS]
    assert times == sorted(times)
    assert len([h for _, h in RUNS if h == "a"]) == 5
    assert len([h for _, h in RUNS if h == "b"]) == 3


def test_a_manager_defined_in_a_function_runs_on_a_node(tmp_path: Path) -> None:
    class Local(Manager):
        TOPIC = "local"

        def where(self) -> str:
            return f"{type(self).__name__} on {self.host}"

    with Cluster(tmp_path) as cluster:
        cluster.add_node("n1", [Local])
        assert cluster.proxy("local", host="n1").where().get(timeout=10) == "Local on n1"


def test_round_robin_over_the_up_nodes(tmp_path: Path) -> None:
    with Cluster(tmp_path) as cluster:
        for host in ("n1", "n2"):
            cluster.add_node(host, [Ticking])
        hosts = [cluster.proxy("ticking").where().get(timeout=10) for _ in range(4)]
        assert sorted(hosts) == ["n1", "n1", "n2", "n2"]


def test_bad_services_and_hosts_are_clear_errors(tmp_path: Path) -> None:
    with Cluster(tmp_path) as cluster:
        with pytest.raises(TypeError, match="Manager subclass"):
            cluster.add_node("n1", [dict])  # type: ignore[list-item]
        cluster.add_node("n2", [Ticking])
        with pytest.raises(ValueError, match="already has a node 'n2'"):
            cluster.add_node("n2", [Ticking])
        with pytest.raises(KeyError, match="no node 'n3'"):
            cluster.node("n3")


class FailsToStart(Manager):
    TOPIC = "failing"

    def init_host(self, service_id: Any = None, added_to_cluster: Any = None) -> None:
        raise OSError("no backend")


class NotWorking(Manager):
    TOPIC = "idle"

    def is_working(self) -> bool:
        return False


def test_a_node_that_fails_to_start_is_still_stopped_cleanly(tmp_path: Path) -> None:
    with LeakCheck(timeout=5), Cluster(tmp_path) as cluster:
        with pytest.raises(ServiceStartError, match="no backend"):
            cluster.add_node("n1", [Ticking, FailsToStart])
        assert list(cluster.nodes) == ["n1"]


def test_a_service_that_never_heartbeats_is_named(tmp_path: Path) -> None:
    with (
        Cluster(tmp_path) as cluster,
        pytest.raises(RuntimeError, match=r"idle\.n1 of node 'n1' not up"),
    ):
        cluster.add_node("n1", [Ticking, NotWorking])
