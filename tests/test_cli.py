"""The ``actors`` command, in process and as a real process."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import transport
from actors import Manager
from actors.cli import app
from actors.db import Database, ServiceRecord


def test_info_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ACTORS_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    result = CliRunner().invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    assert facts["database"] == f"sqlite:///{tmp_path / 'x.sqlite3'}"
    assert facts["version"]


def test_python_dash_m_actors() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "actors", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("actors ")


def test_unknown_command_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["no-such-command"])
    assert result.exit_code != 0
    assert "No such command" in result.output


# -- services, call, keys -----------------------------------------------------------


class Echo(Manager):
    TOPIC = "echo"

    def echo(self, value: Any, suffix: str = "") -> Any:
        return f"{value}{suffix}" if suffix else value

    def fail(self) -> None:
        raise ValueError("it went wrong over there")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    db = Database(url)
    bridge = transport.Bridge("tcp://127.0.0.1:*")
    bridge.start()
    bridge.expose("echo.h1", Echo.start(host="h1"))
    now = dt.datetime.now(dt.UTC)
    with db.begin() as session:
        session.add(ServiceRecord(host="h1", binary="actors-echo", topic="echo",
                                  endpoint=bridge.endpoint, rpc_version="1.0", updated_at=now))
        session.add(ServiceRecord(host="h0", binary="actors-echo", topic="echo",
                                  endpoint="tcp://127.0.0.1:9", rpc_version="1.0",
                                  updated_at=now - dt.timedelta(hours=1)))
    yield url
    bridge.stop()
    db.dispose()


def test_services_table(served: str) -> None:
    result = CliRunner().invoke(app, ["services", "-d", served, "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["host"]: r for r in json.loads(result.output)}
    assert rows["h1"]["up"] is True
    assert rows["h0"]["up"] is False
    assert rows["h1"]["topic"] == "echo"
    pretty = CliRunner().invoke(app, ["services", "-d", served])
    assert pretty.exit_code == 0
    assert "down" in pretty.output
    assert "up" in pretty.output


def test_call_prints_the_result(served: str) -> None:
    result = CliRunner().invoke(app, ["call", "echo@h1", "echo", '["hi"]', "-d", served])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == "hi"
    keywords = CliRunner().invoke(
        app, ["call", "echo", "echo", '{"value": "a", "suffix": "b"}', "-d", served]
    )
    assert json.loads(keywords.output) == "ab"  # topic only: the one up service


def test_call_prints_the_remote_error(served: str) -> None:
    result = CliRunner().invoke(app, ["call", "echo@h1", "fail", "-d", served])
    assert result.exit_code == 1
    assert "ValueError" in result.output
    assert "it went wrong over there" in result.output
    down = CliRunner().invoke(app, ["call", "echo@h0", "echo", '["x"]', "-d", served])
    assert down.exit_code == 1
    assert "ServiceUnavailable" in down.output
    bad = CliRunner().invoke(app, ["call", "echo@h1", "echo", "not json", "-d", served])
    assert bad.exit_code == 2


def test_keys(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["keys", "node-1", "--dir", str(tmp_path / "k")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "k" / "node-1.key").exists()
    assert (tmp_path / "k" / "node-1.key_secret").exists()
    keypair = transport.load_keypair(tmp_path / "k" / "node-1.key_secret")
    assert len(keypair.public) == 40
