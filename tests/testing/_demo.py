"""The demo's scheduler and volume managers, unmodified, under the simulator."""

from __future__ import annotations

from typing import Any

from actors import ServiceUnavailable
from actors.demo import SchedulerManager, VolumeManager
from actors.demo.volume import Volume
from actors.testing import Simulation
from transport import MessagingTimeout

BACKENDS = (("vol-1", 50), ("vol-2", 80))
SIZES = (20, 30, 25, 10, 40, 15)


def run_demo(sim: Simulation, sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    """Two schedulers and two volume backends place volumes; return what each side believes."""
    # as a node runs them: each gets exactly its declared DEPENDENCIES (directory,
    # publisher, ...) over the simulated bridge, and its [[services]] options
    for name in ("sched-1", "sched-2"):
        sim.service(SchedulerManager, host=name, rpc_timeout=30.0)
    for host, capacity in BACKENDS:
        sim.service(
            VolumeManager,
            host=host,
            options={
                "driver": "memory",
                "driver_options": {"capacity_gb": capacity},
                "capabilities_interval": 10.0,
            },
        )
    sim.advance(11)
    client = sim.directory("client")
    futures: list[tuple[str, Any]] = []
    outcomes: dict[str, Any] = {}
    for i, size in enumerate(sizes):
        volume_id = f"v{i}"
        try:
            scheduler = client.proxy("scheduler", host=f"sched-{i % 2 + 1}")
        except (ServiceUnavailable, MessagingTimeout) as exc:  # a fault took it down or away
            outcomes[volume_id] = type(exc).__name__  # (its describe round trip got no answer)
            continue
        futures.append((volume_id, scheduler.create_volume(volume_id, size)))
    for volume_id, future in futures:
        try:
            outcomes[volume_id] = future.get()["backend"]
        except Exception as exc:  # a refusal or a timeout is an outcome
            outcomes[volume_id] = type(exc).__name__
    sim.advance(30)
    with sim.db.session() as session:
        rows = [(v.id, v.host, v.size_gb) for v in session.query(Volume).all()]
    return {"outcomes": outcomes, "rows": rows}


def check_invariant(result: dict[str, Any], sizes: tuple[int, ...] = SIZES) -> None:
    """No backend over-committed; every volume in at most one place, created ones in exactly one."""
    rows = result["rows"]
    capacity = dict(BACKENDS)
    used: dict[str, int] = {}
    places: dict[str, list[str]] = {}
    for volume_id, host, size in rows:
        used[host] = used.get(host, 0) + size
        places.setdefault(volume_id, []).append(host)
    for host, total in used.items():
        assert total <= capacity[host], f"{host} over-committed: {total} > {capacity[host]} GB"
    for volume_id, where in places.items():
        assert len(where) == 1, f"{volume_id} is in {len(where)} places: {where}"
    for volume_id, outcome in result["outcomes"].items():
        if outcome in capacity:
            assert places.get(volume_id) == [outcome], (
                f"{volume_id} was placed on {outcome} but the tables say {places.get(volume_id)}"
            )
