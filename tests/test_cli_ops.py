"""Operating from the CLI: the node's config as the source, service rows, big arguments."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import transport
from actors import Directory, Manager
from actors.cli import app
from actors.db import Database, ServiceRecord

ROOT = Path(__file__).resolve().parent.parent
LONG_IPC = "ipc:///tmp/" + "a-rather-long-directory-name/" * 3 + "bridge.sock"


class Store(Manager):
    TOPIC = "store"

    def size(self, blob: str) -> int:
        return len(blob)

    def echo(self, value: Any) -> Any:
        return value


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.delenv("ACTORS_CONFIG", raising=False)
    monkeypatch.delenv("ACTORS_DATABASE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'cluster.sqlite3'}"
    db = Database(url)
    bridge = transport.Bridge("tcp://127.0.0.1:*")
    bridge.start()
    bridge.expose("store.s1", Store.start(host="s1"))
    now = dt.datetime.now(dt.UTC)
    with db.begin() as session:
        session.add(ServiceRecord(host="s1", binary="actors-store", topic="store",
                                  endpoint=bridge.endpoint, rpc_version="1.0", down_time=60,
                                  updated_at=now))
        # its node uses a 6 s rule and has been silent for 10 s: down, whoever reads
        session.add(ServiceRecord(host="s2", binary="actors-store", topic="store",
                                  endpoint=LONG_IPC, rpc_version="1.0", down_time=6,
                                  updated_at=now - dt.timedelta(seconds=10)))
    config = tmp_path / "node.toml"
    config.write_text(
        f'host = "s1"\ndatabase_url = "{url}"\nrpc_timeout = 10\n'
        '[[services]]\nmanager = "tests.test_cli_ops:Store"\n'
    )
    yield {"db": db, "config": config, "url": url, "now": now}
    bridge.stop()
    db.dispose()


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input)


def test_services_without_a_config_or_database_says_so_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACTORS_CONFIG", raising=False)
    monkeypatch.delenv("ACTORS_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    result = run("services")
    assert result.exit_code == 2
    assert "no database to read: give --config FILE (or set ACTORS_CONFIG)" in result.output
    missing = run("services", "-d", f"sqlite:///{tmp_path / 'typo.sqlite3'}")
    assert missing.exit_code == 2
    assert "no database file" in missing.output
    assert list(tmp_path.iterdir()) == []  # it used to create ./actors.sqlite3


def test_services_reads_the_nodes_config_and_each_rows_rule(
    cluster: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run("services", "--config", str(cluster["config"]), "--json")
    assert result.exit_code == 0, result.output
    rows = {r["host"]: r for r in json.loads(result.output)}
    assert (rows["s1"]["state"], rows["s2"]["state"]) == ("up", "down")
    assert rows["s2"]["down_time"] == 6
    monkeypatch.setenv("ACTORS_CONFIG", str(cluster["config"]))
    from_env = run("services", "--json")
    assert from_env.exit_code == 0, from_env.output
    assert json.loads(from_env.output) == json.loads(result.output)


def test_the_table_does_not_cut_endpoints_or_times(cluster: dict[str, Any]) -> None:
    result = run("services", "--config", str(cluster["config"]))
    assert result.exit_code == 0, result.output
    assert LONG_IPC in result.output  # longer than the 80 columns of a pipe
    assert cluster["now"].isoformat(timespec="seconds") in result.output
    line = next(line for line in result.output.splitlines() if LONG_IPC in line)
    assert "s2" in line  # the row stays on one line


def test_call_through_the_config(cluster: dict[str, Any]) -> None:
    result = run("call", "store@s1", "echo", '["hi"]', "--config", str(cluster["config"]))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == "hi"
    down = run("call", "store@s2", "echo", '["hi"]', "--config", str(cluster["config"]))
    assert down.exit_code == 1
    assert "ServiceUnavailable: no 'store' service is up on 's2' (last heartbeat " in down.output
    assert "down after 6 s)" in down.output  # its own node's rule, named


def test_call_arguments_from_a_file_or_stdin(cluster: dict[str, Any], tmp_path: Path) -> None:
    blob = "x" * 200_000  # "Argument list too long" on a command line
    args = tmp_path / "args.json"
    args.write_text(json.dumps([blob]))
    config = str(cluster["config"])
    from_file = run("call", "store", "size", "--args-file", str(args), "--config", config)
    assert from_file.exit_code == 0, from_file.output
    assert json.loads(from_file.output) == 200_000
    from_stdin = run("call", "store", "size", "-", "--config", config, input=json.dumps([blob]))
    assert from_stdin.exit_code == 0, from_stdin.output
    assert json.loads(from_stdin.output) == 200_000
    both = run("call", "store", "size", "[1]", "--args-file", str(args), "--config", config)
    assert both.exit_code == 2
    assert "not both" in both.output
    gone = run("call", "store", "size", "--args-file", str(tmp_path / "no.json"),
               "--config", config)
    assert gone.exit_code == 2
    assert "cannot read --args-file" in gone.output


def test_call_reads_stdin_in_a_real_process(cluster: dict[str, Any]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACTORS_CONFIG": str(cluster["config"])}
    done = subprocess.run(
        [sys.executable, "-m", "actors", "call", "store@s1", "size", "-"],
        input=json.dumps({"blob": "y" * 300_000}), capture_output=True, text=True,
        timeout=60, check=False, env=env, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == 300_000


def state_of(db: Database, host: str) -> ServiceRecord:
    with db.session() as session:
        return session.scalars(select(ServiceRecord).where(ServiceRecord.host == host)).one()


def test_service_disable_enable_remove(cluster: dict[str, Any]) -> None:
    config, db = str(cluster["config"]), cluster["db"]
    directory = Directory(db)
    result = run("service", "disable", "s1", "store", "--reason", "disk swap", "--config", config)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "disabled store on s1 (disk swap)"
    assert (state_of(db, "s1").disabled, state_of(db, "s1").disabled_reason) == (True, "disk swap")
    assert directory.services("store", up_only=True) == []  # no longer chosen
    refused = run("call", "store@s1", "echo", '["x"]', "--config", config)
    assert refused.exit_code == 1
    assert "is up on 's1' (disabled: disk swap)" in refused.output
    listed = {r["host"]: r for r in json.loads(run("services", "--config", config,
                                                     "--json").output)}
    assert (listed["s1"]["state"], listed["s1"]["disabled"], listed["s1"]["up"]) == (
        "up", True, False)  # running, but not to be chosen
    assert "up, disabled (disk swap)" in run("services", "--config", config).output
    assert run("service", "enable", "s1", "store", "--config", config).exit_code == 0
    assert [r.host for r in directory.services("store", up_only=True)] == ["s1"]
    refused = run("service", "remove", "s1", "store", "--config", config)
    assert refused.exit_code == 1
    assert "is up" in refused.output
    assert "--force" in refused.output
    assert run("service", "remove", "s2", "store", "--config", config).exit_code == 0  # down
    assert run("service", "remove", "s1", "store", "--force", "--config", config).exit_code == 0
    with db.session() as session:
        assert session.scalars(select(ServiceRecord)).all() == []
    unknown = run("service", "disable", "s9", "store", "--config", config)
    assert unknown.exit_code == 1
    assert "no 'store' service on 's9'" in unknown.output
    directory.close()


def test_an_older_services_table_is_named_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3  # noqa: PLC0415

    monkeypatch.delenv("ACTORS_CONFIG", raising=False)
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE services (id INTEGER PRIMARY KEY, host VARCHAR(255), "
                     "binary VARCHAR(255), topic VARCHAR(255), updated_at DATETIME)")
    conn.close()
    result = run("services", "-d", f"sqlite:///{path}")
    assert result.exit_code == 2
    assert "the services table lacks cluster, created_at, disabled" in result.output
    assert "start one node of this release" in result.output


def test_info_shows_the_configs_database(cluster: dict[str, Any]) -> None:
    result = run("info", "--json", "--config", str(cluster["config"]))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["database"] == cluster["url"]
