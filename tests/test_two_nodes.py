"""Two real node processes: a stop is seen at once; a start is callable as soon as it is ready.

The nodes heartbeat every 30 s and count as down after 90 s, so neither can pass by a
heartbeat falling at the right moment: a stopped node is down because it said so, and
a started one is up because it said so before printing "ready".
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import transport
from actors.cli import app
from tests.test_node import NodeProcess

SETTINGS = "report_interval = 30\nservice_down_time = 90\n"


def config(tmp_path: Path, host: str) -> Path:
    path = tmp_path / f"{host}.toml"
    path.write_text(
        f'host = "{host}"\ndatabase_url = "sqlite:///{tmp_path / "cluster.sqlite3"}"\n'
        f'{SETTINGS}periodic_fuzzy_delay = 0\nrpc_timeout = 10\nstop_timeout = 20\n'
        f'[[services]]\nmanager = "tests.node_managers:Recorder"\n'
        f'options = {{ journal = "{tmp_path / host}.journal" }}\n'
    )
    return path


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[dict[str, NodeProcess]]:
    started: dict[str, NodeProcess] = {}
    yield started
    for process in started.values():
        process.kill()


def states(cfg: Path) -> dict[str, str]:
    result = CliRunner().invoke(app, ["services", "--config", str(cfg), "--json"])
    assert result.exit_code == 0, result.output
    return {row["host"]: row["state"] for row in json.loads(result.output)}


def test_stop_is_seen_at_once_and_start_is_callable_when_ready(
    tmp_path: Path, nodes: dict[str, NodeProcess]
) -> None:
    cfg_a, cfg_b = config(tmp_path, "node-a"), config(tmp_path, "node-b")
    nodes["b"] = NodeProcess(cfg_b)
    nodes["a"] = NodeProcess(cfg_a)
    # ready means discoverable: no heartbeat has run yet (30 s), and no wait here
    called = CliRunner().invoke(app, ["call", "recorder@node-a", "ping", "--config", str(cfg_b)])
    assert called.exit_code == 0, called.output
    assert json.loads(called.output) == "pong from node-a"
    b = transport.connect(nodes["b"].endpoint, timeout=10)
    recorder_b = b.proxy("recorder.node-b")
    assert recorder_b.call_ping("recorder", "node-a").get(timeout=15) == "pong from node-a"
    assert states(cfg_b) == {"node-a": "up", "node-b": "up"}

    os.kill(nodes["a"].proc.pid, signal.SIGTERM)
    assert nodes["a"].proc.wait(timeout=30) == 0
    nodes["a"].wait_for_log("marked down")
    # at once, far inside the 90 s down time: down to the CLI and to the other node
    assert states(cfg_b) == {"node-a": "stopped", "node-b": "up"}
    # an answer from the table, not a call to the gone node timing out (MessagingTimeout)
    assert recorder_b.call_ping("recorder", "node-a").get(timeout=15) == "ServiceUnavailable"
    refused = CliRunner().invoke(app, ["call", "recorder@node-a", "ping", "--config", str(cfg_b)])
    assert refused.exit_code == 1
    assert "ServiceUnavailable" in refused.output

    nodes["a"].kill()
    nodes["a"] = NodeProcess(cfg_a)  # restarted: callable as soon as it prints ready
    assert recorder_b.call_ping("recorder", "node-a").get(timeout=15) == "pong from node-a"
    assert states(cfg_b) == {"node-a": "up", "node-b": "up"}
    b.close()
