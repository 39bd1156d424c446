"""A database outage never stalls a manager: real PostgreSQL stopped or frozen, SQLite locked.

The heartbeat's write runs on the service's heartbeat thread; the manager's
mailbox waits for it at most ``heartbeat_wait``. Each test checks that a tick
(which runs the heartbeat in the mailbox) comes back within that bound while the
database is away, that the manager keeps answering calls that need no database,
that the outage is logged once when it starts and once when it ends, and that the
first beat after the database returns writes again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from actors import Manager, ManualClock, Service, TimerActor
from actors.db import Database, ServiceRecord, _engine_options
from tests._postgres import PostgresServer, start_postgres_or_skip

WAIT = 0.3  # heartbeat_wait: the longest a beat may hold the mailbox
SLACK = 3.0  # what a loaded 2-core machine may add to a bounded wait


class Pinger(Manager):
    TOPIC = "pinger"

    def ping(self) -> str:
        return "pong"


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this module's own: the tests stop and freeze it."""
    server = start_postgres_or_skip()
    try:
        yield server
    finally:
        resume(server)
        server.stop()


def _pg_ctl(server: PostgresServer, *args: str) -> None:
    subprocess.run(
        [str(server.bin_dir / "pg_ctl"), "-D", str(server.root / "data"), *args],
        user=server.user, check=True, capture_output=True, timeout=60,
    )


def stop_keeping_data(server: PostgresServer) -> None:
    _pg_ctl(server, "-m", "immediate", "-w", "-t", "30", "stop")


def start_again(server: PostgresServer) -> None:
    options = (f"-p {server.port} -k {server.root} -c listen_addresses=127.0.0.1 "
               "-c fsync=off")
    _pg_ctl(server, "-o", options, "-l", str(server.root / "server.log"), "-w", "-t", "60",
            "start")
    server.pid = int((server.root / "data" / "postmaster.pid").read_text().split()[0])


def _server_pids(server: PostgresServer) -> list[int]:
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    found = [int(pid) for pid in children.read_text().split()] if children.exists() else []
    return [server.pid, *found]


_paused: dict[int, list[int]] = {}


def pause(server: PostgresServer) -> None:
    """Freeze every server process: connections stay open, nothing answers."""
    pids = _server_pids(server)
    _paused[server.pid] = pids
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)


def resume(server: PostgresServer) -> None:
    for pid in _paused.pop(server.pid, []):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


class Harness:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.clock = ManualClock()
        self.timer = TimerActor.start(clock=self.clock)
        self.service = Service(
            Pinger, host="node-1", db=db, timer=self.timer, clock=self.clock,
            report_interval=10, periodic_fuzzy_delay=0, heartbeat_wait=WAIT,
        )
        self.service.start()

    def beat(self) -> float:
        """One report interval: return how long the tick held the caller (seconds)."""
        started = time.monotonic()
        self.timer.proxy().advance(10).get(timeout=WAIT + SLACK + 10)
        return time.monotonic() - started

    def ping_answers(self) -> bool:
        return bool(self.service.proxy.ping().get(timeout=WAIT + SLACK) == "pong")

    def disconnected(self) -> bool:
        return self.service.model_disconnected

    def settle(self) -> None:
        assert self.service.wait_for_heartbeat_write(timeout=30)

    def report_count(self) -> int:
        with self.db.session() as session:
            row = session.get(ServiceRecord, self.service.service_id)
        assert row is not None
        return row.report_count

    def close(self) -> None:
        self.service.stop(timeout=10)
        self.timer.stop()
        self.db.dispose()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


def count(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records)


def test_postgres_stopped_then_back(own_postgres: PostgresServer, logs: Any) -> None:
    url = own_postgres.create_database("stopped")
    harness = Harness(Database(url, connect_timeout=2, statement_timeout=5))
    try:
        harness.beat()
        harness.settle()
        assert harness.report_count() == 1
        stop_keeping_data(own_postgres)
        for _ in range(3):  # three beats into the outage
            assert harness.beat() < WAIT + SLACK
            assert harness.ping_answers()
            harness.settle()
        assert harness.disconnected()
        assert count(logs, "model server went away") == 1  # once, when it started
        start_again(own_postgres)
        harness.beat()  # the first beat after the database is back writes again
        harness.settle()
        assert not harness.disconnected()
        assert count(logs, "Recovered model server connection!") == 1
        assert harness.report_count() == 2
        assert harness.ping_answers()
    finally:
        harness.close()


def test_postgres_frozen_mid_write(own_postgres: PostgresServer, logs: Any) -> None:
    """The server keeps its connections but answers nothing: the write hangs, not the manager."""
    url = own_postgres.create_database("frozen")
    harness = Harness(Database(url, connect_timeout=2, statement_timeout=5))
    try:
        harness.beat()
        harness.settle()
        pause(own_postgres)
        try:
            assert harness.beat() < WAIT + SLACK  # this write hangs in the heartbeat thread
            assert harness.ping_answers()
            assert harness.beat() < WAIT + SLACK  # skipped: the previous write is in flight
            assert harness.ping_answers()
            assert not harness.service.wait_for_heartbeat_write(timeout=0.1)
        finally:
            resume(own_postgres)
        harness.settle()
        assert count(logs, "previous heartbeat is still being written") == 1
        harness.beat()
        harness.settle()
        assert harness.report_count() == 3  # the one that hung, then a fresh one
    finally:
        harness.close()


def test_sqlite_locked_then_released(tmp_path: Path, logs: Any) -> None:
    path = tmp_path / "locked.sqlite3"
    harness = Harness(Database(f"sqlite:///{path}", statement_timeout=20))
    other = sqlite3.connect(path, isolation_level=None)
    try:
        harness.beat()
        harness.settle()
        other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        assert harness.beat() < WAIT + SLACK
        assert harness.ping_answers()
        assert not harness.service.wait_for_heartbeat_write(timeout=0.1)  # still waiting
        other.execute("COMMIT")
        harness.settle()
        assert harness.report_count() == 2
        assert count(logs, "model server went away") == 0  # a wait, not an outage
    finally:
        other.close()
        harness.close()


def test_sqlite_table_gone_then_back(tmp_path: Path, logs: Any) -> None:
    path = tmp_path / "renamed.sqlite3"
    harness = Harness(Database(f"sqlite:///{path}"))
    other = sqlite3.connect(path)
    try:
        harness.beat()
        harness.settle()
        other.execute("ALTER TABLE services RENAME TO services_away")
        other.commit()
        for _ in range(3):
            assert harness.beat() < WAIT + SLACK
            assert harness.ping_answers()
            harness.settle()
        assert count(logs, "model server went away") == 1
        other.execute("ALTER TABLE services_away RENAME TO services")
        other.commit()
        harness.beat()
        harness.settle()
        assert count(logs, "Recovered model server connection!") == 1
        assert harness.report_count() == 2
    finally:
        other.close()
        harness.close()


def test_statement_timeout_is_enforced_by_postgres(own_postgres: PostgresServer) -> None:
    db = Database(own_postgres.create_database("slow"), statement_timeout=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="statement timeout"), db.session() as s:
            s.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < 0.5 + SLACK
    finally:
        db.dispose()


def test_engine_options_bound_every_backend() -> None:
    pg = _engine_options("postgresql+psycopg2://u@h/db", 2, 7)
    assert pg["pool_pre_ping"] is True
    assert pg["pool_timeout"] == 2
    assert pg["connect_args"] == {
        "connect_timeout": 2,
        "options": "-c statement_timeout=7000",
        "keepalives": 1,
        "keepalives_idle": 2,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": 2000,
    }
    tuned = _engine_options("postgresql://u@h/db?connect_timeout=1&tcp_user_timeout=900", 2, 7)
    assert "connect_timeout" not in tuned["connect_args"]  # the URL's own value wins
    assert "tcp_user_timeout" not in tuned["connect_args"]
    assert _engine_options("sqlite:///x.db", 2, 7) == {"connect_args": {"timeout": 7}}
    mysql = _engine_options("mysql+pymysql://u@h/db", 2, 7)
    assert mysql["connect_args"] == {"connect_timeout": 2, "read_timeout": 7, "write_timeout": 7}
