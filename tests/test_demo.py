"""The main job, ``actors demo``, in a short run: real node processes on loopback."""

from __future__ import annotations

import io
import os
from collections import Counter
from pathlib import Path

from rich.console import Console

from actors.demo.cluster import VOLUME_NODES, DemoSettings, run_demo


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def greedy(free: dict[str, float], size: int, count: int) -> list[str]:
    chosen = []
    for _ in range(count):
        host = min(free, key=lambda h: (-free[h], h))
        free[host] -= size
        chosen.append(host)
    return chosen


def test_demo_short_run(tmp_path: Path) -> None:
    output = io.StringIO()
    settings = DemoSettings(volumes=9, more_volumes=4, workdir=tmp_path,
                            console=Console(file=output, width=120))
    result = run_demo(settings)
    text = output.getvalue()

    # most free capacity first (ties: the lowest name), each placement reserved
    assert [p["host"] for p in result["placements"]] == greedy(
        {host: float(gb) for host, _, gb in VOLUME_NODES}, settings.size_gb, 9
    )
    placed = Counter(p["host"] for p in result["placements"])
    for host, _, total in VOLUME_NODES:
        assert result["capacity"][host]["free_capacity_gb"] == total - 20 * placed[host]

    stopped = result["stopped"]
    assert stopped in {host for host, _, _ in VOLUME_NODES}
    assert len(result["after_stop"]) == 4
    assert all(p["host"] != stopped for p in result["after_stop"])
    assert "down" in text
    assert "avoided" in text

    assert result["seconds"] < 60
    assert len(result["pids"]) == 4
    assert not any(pid_alive(pid) for pid in result["pids"])  # nothing left running
