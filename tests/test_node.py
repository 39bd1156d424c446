"""The node as a real process: config, discovery from another process, SIGTERM, SIGHUP."""

from __future__ import annotations

import datetime as dt
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

import transport
from actors import Directory
from actors._node import ConfigError, NodeConfig
from actors.cli import app
from actors.db import Database, ServiceRecord

ROOT = Path(__file__).resolve().parent.parent


class NodeProcess:
    """A node started with ``python -m actors node``; its stderr is collected line by line."""

    def __init__(self, config: Path, *options: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "actors", "node", "--config", str(config), *options],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
        )
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self.endpoint = self._wait_ready()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def _wait_ready(self) -> str:
        assert self.proc.stdout is not None
        found: queue.SimpleQueue[str] = queue.SimpleQueue()
        threading.Thread(target=lambda: found.put(self.proc.stdout.readline()),  # type: ignore[union-attr]
                         daemon=True).start()
        try:
            line = found.get(timeout=30)
        except queue.Empty:
            self.kill()
            pytest.fail("the node did not get ready:\n" + "".join(self.stderr))
        assert line.startswith("ready "), line + "".join(self.stderr)
        return line.split()[2]

    def wait_for_log(self, text: str, timeout: float = 15) -> str:
        for line in self.stderr:
            if text in line:
                return line
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no log line with {text!r}:\n" + "".join(self.stderr))
            if text in line:
                return line

    def kill(self) -> None:
        """Stop the process by PID (if it still runs) and close its pipes."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def write_config(tmp_path: Path, host: str, db_url: str, extra: str = "") -> Path:
    journal = tmp_path / f"{host}.journal"
    text = f"""
host = "{host}"
database_url = "{db_url}"
bind = "tcp://127.0.0.1:*"
report_interval = 1
service_down_time = 5
periodic_fuzzy_delay = 0
stop_timeout = 20

[[services]]
manager = "tests.node_managers:Recorder"
options = {{ journal = "{journal}" }}

[[services]]
manager = "tests.node_managers:Other"
options = {{ journal = "{journal}.other" }}
{extra}
"""
    config = tmp_path / f"{host}.toml"
    config.write_text(text)
    return config


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[NodeProcess, str, Path]]:
    db_url = f"sqlite:///{tmp_path / 'cluster.sqlite3'}"
    process = NodeProcess(write_config(tmp_path, "node-a", db_url))
    yield process, db_url, tmp_path / "node-a.journal"
    process.kill()


def test_node_serves_and_is_found_through_the_services_table(
    node: tuple[NodeProcess, str, Path],
) -> None:
    process, db_url, _ = node
    directory = Directory(Database(db_url), service_down_time=5, timeout=10)
    rows = directory.services()
    assert {(r.topic, r.host, r.rpc_version) for r in rows} == {
        ("recorder", "node-a", "1.2"),
        ("other", "node-a", "1.2"),
    }
    # By default each manager is called on its own socket, on the node's host
    # (transport/_direct.py), not on the bridge's shared endpoint.
    endpoints = {r.endpoint or "" for r in rows}
    assert len(endpoints) == 2
    assert process.endpoint not in endpoints
    host = process.endpoint.rpartition(":")[0]
    assert {e.rpartition(":")[0] for e in endpoints} == {host}
    # the first heartbeat comes after report_interval (1 s): wait for the row to turn up
    assert wait_until(lambda: len(directory.services("recorder", up_only=True)) == 1)
    assert directory.proxy("recorder", host="node-a").ping().get(timeout=10) == "pong from node-a"
    directory.close()


def test_without_own_sockets_every_row_names_the_bridges_endpoint(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'cluster.sqlite3'}"
    config = write_config(tmp_path, "node-a", db_url)
    config.write_text("own_sockets = false\n" + config.read_text())
    process = NodeProcess(config)
    try:
        directory = Directory(Database(db_url), service_down_time=5, timeout=10)
        assert wait_until(lambda: len(directory.services(up_only=True)) == 2)
        assert {r.endpoint for r in directory.services()} == {process.endpoint}
        proxy = directory.proxy("recorder", host="node-a")
        assert proxy.ping().get(timeout=10) == "pong from node-a"
        directory.close()
    finally:
        process.kill()


def wait_until(predicate: Any, timeout: float = 15) -> bool:
    """Poll a condition about another process's writes, with a bound (no fixed sleeps)."""
    done = threading.Event()
    deadline = threading.Timer(timeout, done.set)
    deadline.start()
    try:
        while not done.is_set():
            if predicate():
                return True
            done.wait(0.05)
        return bool(predicate())
    finally:
        deadline.cancel()


def test_sigterm_drains_the_mailbox(node: tuple[NodeProcess, str, Path]) -> None:
    process, _, journal = node
    conn = transport.connect(process.endpoint, timeout=10)
    for i in range(15):
        conn.proxy("recorder.node-a").work.defer(i)
    # Same connection, another actor: when this returns, the bridge has put every cast
    # above into the recorder's mailbox (it dispatches one connection's frames in order).
    assert conn.proxy("other.node-a").ping().get(timeout=10) == "pong from node-a"
    os.kill(process.proc.pid, signal.SIGTERM)
    assert process.proc.wait(timeout=30) == 0
    assert journal.read_text().splitlines() == [f"work {i}" for i in range(15)]
    assert any("stopping gracefully" in line for line in process.stderr)
    conn.close()


def test_sighup_resets_every_manager_without_restart(node: tuple[NodeProcess, str, Path]) -> None:
    process, _, journal = node
    conn = transport.connect(process.endpoint, timeout=10)
    os.kill(process.proc.pid, signal.SIGHUP)
    process.wait_for_log("SIGHUP: resetting 2 service(s)")
    process.wait_for_log("SIGHUP: reset done")
    assert conn.proxy("recorder.node-a").reset_count().get(timeout=10) == 1
    assert conn.proxy("other.node-a").reset_count().get(timeout=10) == 1
    assert journal.read_text().splitlines() == ["reset"]
    assert process.proc.poll() is None  # the same process: nothing was restarted
    conn.close()


def test_logs_carry_the_request_id(node: tuple[NodeProcess, str, Path]) -> None:
    process, _, _ = node
    conn = transport.connect(process.endpoint, timeout=10)
    with transport.use_context(transport.RequestContext(request_id="req-from-the-test")):
        conn.proxy("recorder.node-a").say("hello").get(timeout=10)
    line = process.wait_for_log("saying hello")
    assert "[req-from-the-test]" in line  # the caller's request id, logged on the server
    os.kill(process.proc.pid, signal.SIGHUP)
    line = process.wait_for_log("SIGHUP: reset done")
    assert "[-]" in line  # a signal belongs to no request
    conn.close()


def test_config_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('host = "x"\nbogus = 1\n[[services]]\nmanager = "a:B"\n')
    with pytest.raises(ConfigError, match="bogus = 1: unknown key; valid keys: host, "):
        NodeConfig.load(bad)
    empty = tmp_path / "empty.toml"
    empty.write_text('host = "x"\n')
    with pytest.raises(ConfigError, match="services: missing; expected at least one"):
        NodeConfig.load(empty)
    result = CliRunner().invoke(app, ["node", "--config", str(bad)])
    assert result.exit_code == 2
    assert "bogus = 1: unknown key" in result.output


def test_sighup_raises_the_version_cap(node: tuple[NodeProcess, str, Path]) -> None:
    process, db_url, _ = node
    db = Database(db_url)
    now = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)  # up for the whole test
    with db.begin() as session:
        for host, version in (("old-1", "2.1"), ("new-1", "2.3")):
            session.add(ServiceRecord(host=host, binary="actors-billing", topic="billing",
                                      endpoint="tcp://127.0.0.1:9", rpc_version=version,
                                      updated_at=now))
    conn = transport.connect(process.endpoint, timeout=10)
    recorder = conn.proxy("recorder.node-a")
    assert recorder.can_send("billing", "2.1").get(timeout=10) is True
    assert recorder.can_send("billing", "2.3").get(timeout=10) is False  # pinned at 2.1
    with db.begin() as session:  # the last old node is upgraded
        session.execute(update(ServiceRecord).where(ServiceRecord.host == "old-1")
                        .values(rpc_version="2.3"))
    assert recorder.can_send("billing", "2.3").get(timeout=10) is False  # the pin is cached
    os.kill(process.proc.pid, signal.SIGHUP)
    process.wait_for_log("SIGHUP: reset done")
    assert recorder.can_send("billing", "2.3").get(timeout=10) is True  # no restart needed
    assert process.proc.poll() is None
    conn.close()
    db.dispose()


def test_curve_keys_in_the_node_config(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    transport.write_keypair(keys, "cluster")
    transport.write_keypair(keys / "clients", "node-b")
    transport.write_keypair(keys, "stranger")
    extra = """
[curve]
server_keys = "keys/cluster.key_secret"
client_keys = "keys/clients/node-b.key_secret"
allowed_clients = "keys/clients"
"""
    db_url = f"sqlite:///{tmp_path / 'cluster.sqlite3'}"
    process = NodeProcess(write_config(tmp_path, "node-b", db_url, extra))
    try:
        server = transport.load_keypair(keys / "cluster.key_secret")
        allowed = transport.connect(
            process.endpoint, timeout=10, server_key=server.public,
            keypair=transport.load_keypair(keys / "clients" / "node-b.key_secret"),
        )
        assert allowed.proxy("recorder.node-b").ping().get(timeout=10) == "pong from node-b"
        stranger = transport.connect(
            process.endpoint, timeout=1, server_key=server.public,
            keypair=transport.load_keypair(keys / "stranger.key_secret"),
        )
        with pytest.raises(transport.MessagingTimeout):
            stranger.proxy("recorder.node-b").ping().get(timeout=5)
        plain = transport.connect(process.endpoint, timeout=1)
        with pytest.raises(transport.MessagingTimeout):
            plain.proxy("recorder.node-b").ping().get(timeout=5)
        for conn in (allowed, stranger, plain):
            conn.close()
        # the CLI, given the node's config, calls with the node's client keys
        called = CliRunner().invoke(app, ["call", "recorder@node-b", "ping",
                                          "--config", str(tmp_path / "node-b.toml")])
        assert called.exit_code == 0, called.output
        assert called.output.strip() == '"pong from node-b"'
        without = CliRunner().invoke(app, ["call", "recorder@node-b", "ping", "--timeout", "2",
                                           "--database", db_url])
        assert without.exit_code == 1
        assert "MessagingTimeout" in without.output  # no keys: the bridge does not answer
    finally:
        process.kill()
