"""Many hosts for real: node processes sharing one PostgreSQL database.

Four node processes (a scheduler and three volume nodes) register in the same
services table on a real PostgreSQL server, find each other through it, fan
their capabilities out to the scheduler over the bridge, and the scheduler
places volumes across them; then one node stops and is avoided.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import func, select

from actors.db import Database, ServiceRecord
from actors.demo import Volume, cluster
from actors.demo.cluster import VOLUME_NODES, DemoSettings, run_demo
from tests._postgres import PostgresServer


def test_nodes_share_one_postgres(
    postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The services are up for only ~0.2-0.7 s of the demo, and a service's first
    # periodic heartbeat comes one report_interval after it starts (the ready mark
    # is not counted): at the demo's 0.5 s, all four rows often had no beat at all
    # (2 runs in 5, on main as on c15). At 0.1 s each service beats a few times.
    monkeypatch.setattr(cluster, "REPORT_INTERVAL", 0.1)
    url = postgres.create_database("multihost")
    settings = DemoSettings(volumes=6, more_volumes=3, workdir=tmp_path, database_url=url,
                            console=Console(file=io.StringIO(), width=120))
    result = run_demo(settings)

    db = Database(url)
    with db.session() as session:
        rows = session.scalars(select(ServiceRecord)).all()
        # every node registered in the one shared table
        assert {(r.topic, r.host) for r in rows} == {("scheduler", "scheduler-1")} | {
            ("volume", host) for host, _, _ in VOLUME_NODES
        }
        # each marked itself up when ready and down when it stopped (the demo stops them all)
        assert all(r.updated_at is not None and r.stopped_at is not None for r in rows)
        assert sum(r.report_count for r in rows) > 0  # and heartbeat into it meanwhile
        assert len({r.endpoint for r in rows}) == 4  # four processes, four bridges
        # each volume manager wrote its own volumes into the shared database
        counts = select(Volume.host, func.count()).group_by(Volume.host)
        per_host: dict[str, int] = {}
        for host, count in session.execute(counts).all():
            per_host[host] = count
    db.dispose()

    placed = Counter(p["host"] for p in result["placements"] + result["after_stop"])
    assert per_host == dict(placed)
    assert len(placed) >= 2  # placement across hosts
    # fan-out capabilities reached the scheduler: it knew every backend's capacity
    assert {host for host, _, _ in VOLUME_NODES} <= set(result["capacity"])
    assert all(p["host"] != result["stopped"] for p in result["after_stop"])
