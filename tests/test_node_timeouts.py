"""The database timeouts and the heartbeat's wait, set in a node's TOML, reach their use.

Each test loads a real config file, starts what the node starts and observes the
value where it acts: SQLite's ``busy_timeout`` and the pool's wait on a real file,
PostgreSQL's session settings on a real server, and a heartbeat that holds its
manager's mailbox for the configured wait while the database is locked.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pykka
import pytest
from sqlalchemy import QueuePool, text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from actors import Directory, ManualClock, Node, NodeConfig
from actors.db import Database, ServiceRecord
from tests._postgres import PostgresServer

SERVICE = '\n[[services]]\nmanager = "tests.node_managers:Recorder"\n'


def load(tmp_path: Path, keys: str, url: str | None = None) -> NodeConfig:
    url = url or f"sqlite:///{tmp_path / 'node.sqlite3'}"
    path = tmp_path / "node.toml"
    path.write_text(f'host = "n1"\ndatabase_url = "{url}"\n{keys}{SERVICE}', encoding="utf-8")
    return NodeConfig.load(path)


def busy_timeout_ms(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one())


def pool_timeout(db: Database) -> float:
    pool = db.engine.pool
    assert isinstance(pool, QueuePool), pool
    return pool.timeout()


def test_sqlite_timeouts_from_toml_reach_the_nodes_engine(tmp_path: Path) -> None:
    cfg = load(tmp_path, "database_statement_timeout = 7\ndatabase_pool_timeout = 0.2\n")
    node = Node(cfg, clock=ManualClock())
    node.start()
    try:
        assert node.db is not None
        assert busy_timeout_ms(node.db) == 7000  # how long a locked file is waited for
        held = [node.db.engine.connect() for _ in range(15)]  # QueuePool: 5, plus 10 overflow
        try:
            with pytest.raises(PoolTimeout, match=r"timeout 0\.20"):
                node.db.engine.connect()  # a 16th waits the pool timeout, then gives up
        finally:
            for conn in held:
                conn.close()
    finally:
        node.stop()


def test_sqlite_defaults_are_unchanged_without_the_keys(tmp_path: Path) -> None:
    db = load(tmp_path, "").open_database()
    try:
        assert busy_timeout_ms(db) == 30_000
        assert pool_timeout(db) == 30
    finally:
        db.dispose()


def test_an_in_memory_database_has_no_pool_to_wait_for(tmp_path: Path) -> None:
    db = load(tmp_path, "database_pool_timeout = 1\n", url="sqlite://").open_database()
    try:  # SingletonThreadPool: no pool_timeout option, and none is passed
        assert not isinstance(db.engine.pool, QueuePool)
        with db.session() as session:
            assert session.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        db.dispose()


def test_a_directory_built_from_the_config_uses_its_timeouts(tmp_path: Path) -> None:
    directory = Directory.from_config(load(tmp_path, "database_statement_timeout = 2.5\n"))
    try:
        assert busy_timeout_ms(directory.db) == 2500
    finally:
        directory.close()
        directory.db.dispose()


def test_the_heartbeat_holds_the_mailbox_for_the_configured_wait(tmp_path: Path) -> None:
    """Locked database, ``heartbeat_wait = 30``: the tick is still held long after 1 s
    (the built-in wait), and ends as soon as the write can go through."""
    cfg = load(
        tmp_path,
        "heartbeat_wait = 30\ndatabase_statement_timeout = 60\nreport_interval = 10\n"
        "periodic_fuzzy_delay = 0\n",
    )
    assert cfg.heartbeat_wait == 30
    node = Node(cfg, clock=ManualClock())
    node.start()
    other = sqlite3.connect(tmp_path / "node.sqlite3", isolation_level=None)
    try:
        assert node.timer is not None
        service = node.services[0]
        assert service.wait_for_heartbeat_write(timeout=10)
        other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        ticks: pykka.Future[int] = node.timer.proxy().advance(10, timeout=60)
        with pytest.raises(pykka.Timeout):
            ticks.get(timeout=2.5)  # the beat still holds the mailbox: its wait is not 1 s
        assert not service.wait_for_heartbeat_write(timeout=0)  # the write is waiting
        other.execute("COMMIT")
        assert ticks.get(timeout=30) >= 1  # the write went through: the wait ended with it
        assert service.wait_for_heartbeat_write(timeout=10)
        assert node.db is not None
        with node.db.session() as session:
            row = session.get(ServiceRecord, service.service_id)
        assert row is not None
        assert row.report_count >= 1
    finally:
        if other.in_transaction:
            other.execute("COMMIT")
        other.close()
        node.stop()


def test_postgres_timeouts_from_toml_reach_each_session(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    url = postgres.create_database("node_timeouts")
    cfg = load(
        tmp_path,
        "database_connect_timeout = 3\ndatabase_statement_timeout = 0.75\n"
        "database_pool_timeout = 4\n",
        url=url,
    )
    db = cfg.open_database()
    try:
        with db.engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "750ms"
            dbapi: Any = conn.connection.dbapi_connection
            parameters = dbapi.get_dsn_parameters()  # psycopg2: what libpq connected with
            assert parameters["connect_timeout"] == "3"
            assert parameters["tcp_user_timeout"] == "3000"
        assert pool_timeout(db) == 4
    finally:
        db.dispose()


def test_a_pool_timeout_left_out_follows_the_connect_timeout(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    cfg = load(tmp_path, "database_connect_timeout = 2\n", url=postgres.url)
    db = cfg.open_database(create=False)
    try:
        assert pool_timeout(db) == 2
    finally:
        db.dispose()
