"""Data: SQLAlchemy 2 models and sessions, the services table, liveness.

A manager reaches its data through ``self.db``, a `Database`. The default is a
SQLite file (``actors.sqlite3`` in the working directory, or the URL in
``$ACTORS_DATABASE_URL``); a PostgreSQL URL works unchanged (``postgresql://``, with
the ``postgres`` extra or any installed driver), which is how hosts share one
services table. Managers declare their own tables on `Base` and write
them through ``self.db``; the manager's mailbox is what keeps its writes serial.

Example:
    >>> import datetime as dt
    >>> db = Database("sqlite://")  # in memory
    >>> with db.begin() as session:
    ...     session.add(ServiceRecord(host="node-1", binary="actors-volume", topic="volume"))
    >>> with db.session() as session:
    ...     row = session.scalars(select(ServiceRecord)).one()
    >>> row.host, row.report_count, row.updated_at
    ('node-1', 0, None)
    >>> service_is_up(row, down_time=60, now=dt.datetime.now(dt.UTC))
    False
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from sqlalchemy import (
    DateTime,
    Dialect,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    make_url,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "Base",
    "Database",
    "ServiceRecord",
    "UTCDateTime",
    "default_url",
    "resolve_url",
    "select",
    "service_is_up",
]

_DDL_LOCK_KEY = 0x6163746F7273  # "actors": one advisory lock for schema changes

ENV_URL = "ACTORS_DATABASE_URL"
"""The environment variable that overrides the default database URL."""


def default_url() -> str:
    """Return ``$ACTORS_DATABASE_URL``, or a SQLite file in the working directory."""
    return os.environ.get(ENV_URL) or f"sqlite:///{os.path.abspath('actors.sqlite3')}"


POSTGRES_DRIVERS = (("psycopg", "psycopg"), ("psycopg2", "psycopg2"))
"""(SQLAlchemy driver name, module) pairs a plain ``postgresql://`` URL may use, in order."""


def resolve_url(url: str) -> str:
    """Give a plain ``postgresql://`` URL the PostgreSQL driver that is installed.

    SQLAlchemy 2.1 reads a plain URL as psycopg 3 and 2.0 as psycopg2; either one
    (psycopg 3 comes with the ``postgres`` extra) makes the URL work unchanged. Other
    URLs, and URLs that name their driver, are returned as they are.

    Raises:
        ModuleNotFoundError: a plain PostgreSQL URL and no driver installed; the message
            says what to install.
    """
    parsed = make_url(url)
    if parsed.drivername not in ("postgresql", "postgres"):
        return url
    for driver, module in POSTGRES_DRIVERS:
        if importlib.util.find_spec(module) is not None:
            return parsed.set(drivername=f"postgresql+{driver}").render_as_string(
                hide_password=False
            )
    msg = (
        f"{parsed.render_as_string()}: no PostgreSQL driver is installed; "
        "pip install 'actors[postgres]' (psycopg 3)"
    )
    raise ModuleNotFoundError(msg)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime, stored as naive UTC on every backend.

    Naive datetimes are refused: a timestamp without a zone is a bug waiting
    for a host in another one.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        """Convert an aware datetime to naive UTC for storage."""
        if value is None:
            return None
        if value.tzinfo is None:
            msg = f"naive datetime {value!r}: use a timezone-aware one"
            raise ValueError(msg)
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        """Mark a stored naive UTC datetime as UTC."""
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    """The declarative base of the runtime's tables; managers may add theirs to it."""

    metadata = MetaData()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ServiceRecord(Base):
    """A row of the ``services`` table: one service (a manager) on one host."""

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("host", "binary", name="uq_services_host_binary"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255), index=True)
    cluster: Mapped[str | None] = mapped_column(String(255), default=None)
    endpoint: Mapped[str | None] = mapped_column(String(1024), default=None)
    rpc_version: Mapped[str | None] = mapped_column(String(32), default=None)
    report_count: Mapped[int] = mapped_column(default=0)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=_utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    # Added after the first release (`Database.create_all` adds them to older tables):
    disabled_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    down_time: Mapped[float | None] = mapped_column(default=None)
    """The liveness rule of the node that runs it: seconds without a heartbeat before down."""
    stopped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    """Set while the service is stopped or starting (down whatever its heartbeat says)."""

    def __repr__(self) -> str:
        return (
            f"ServiceRecord(id={self.id!r}, host={self.host!r}, topic={self.topic!r}, "
            f"report_count={self.report_count!r}, updated_at={self.updated_at!r})"
        )


class _Heartbeating(Protocol):
    @property
    def updated_at(self) -> dt.datetime | None: ...


def service_is_up(row: _Heartbeating, down_time: float, now: dt.datetime) -> bool:
    """Return whether a service is up: it heartbeat within `down_time` seconds of `now`.

    Cinder's rule (``objects.Service.is_up``): ``updated_at`` is set and
    ``now - updated_at <= down_time``; the boundary itself counts as up. A row
    that never heartbeat is down. A `ServiceRecord` is judged by the rule its own
    node recorded (its ``down_time``; `down_time` is for rows without one) and is
    down while ``stopped_at`` is set (stopped gracefully, or not ready yet).
    """
    updated_at = row.updated_at
    if updated_at is None:
        return False
    if isinstance(row, ServiceRecord):
        if row.stopped_at is not None:
            return False
        if row.down_time is not None:
            down_time = row.down_time
    return (now - updated_at).total_seconds() <= down_time


def _add_missing_columns(conn: Connection, table: Any) -> None:
    """Add the nullable columns a table created by an older release lacks (an upgrade)."""
    present = {column["name"] for column in inspect(conn).get_columns(table.name)}
    for column in table.columns:
        if column.name in present:
            continue
        if not column.nullable:
            msg = f"table {table.name!r} lacks column {column.name!r}, which cannot be added"
            raise RuntimeError(msg)
        kind = column.type.compile(dialect=conn.dialect)
        conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


_WAL_RETRY_S = 0.01


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms:d}")
        _switch_to_wal(cursor, busy_timeout_ms / 1000)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def _switch_to_wal(cursor: Any, timeout: float) -> None:
    """``PRAGMA journal_mode=WAL``, retried while another connection holds the file's lock.

    Switching a new file to WAL upgrades a shared lock to an exclusive one;
    when several processes open the same new file at once, SQLite refuses that
    upgrade at once ("database is locked", without its busy handler: waiting
    could deadlock). The switch is retried for at most `timeout` seconds (the
    connection's busy timeout); by then another connection has made the file
    WAL, which a database keeps.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(_WAL_RETRY_S)  # the other connection's switch takes milliseconds
        else:
            return


def _engine_options(
    url: str, connect_timeout: float, statement_timeout: float, pool_timeout: float | None = None
) -> dict[str, Any]:
    """The engine's keyword arguments that bound how long any database call can block.

    SQLite: a lock is waited for at most `statement_timeout` (``busy_timeout``); a
    pooled connection of a database file at most `pool_timeout` when given (else
    SQLAlchemy's 30 s; an in-memory database has no pool to wait for).
    PostgreSQL (libpq drivers): ``connect_timeout`` (libpq waits 2 s at least),
    a server-side ``statement_timeout``, and ``tcp_user_timeout`` (the connect
    timeout: a live server acknowledges within milliseconds, however long its
    query runs) plus keepalives, so that a server that vanished from the network
    (packets dropped, no reset) fails a statement instead of hanging until the
    kernel gives up; stale pooled connections are replaced by the pre-ping.
    MySQL drivers: connect, read and write timeouts. Everywhere: waiting for a
    pooled connection is bounded too, by `pool_timeout` (default: `connect_timeout`).
    A driver option given in the URL's query (``?connect_timeout=1``) wins over the
    one derived here.
    """
    parsed = make_url(url)
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite":
        sqlite: dict[str, Any] = {"connect_args": {"timeout": statement_timeout}}
        memory = parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory"
        if pool_timeout is not None and not memory:
            sqlite["pool_timeout"] = pool_timeout
        return sqlite
    waited = connect_timeout if pool_timeout is None else pool_timeout
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_timeout": waited}
    whole = max(1, math.ceil(connect_timeout))
    if backend == "postgresql" and driver in ("psycopg2", "psycopg"):
        statement_ms = max(1, round(statement_timeout * 1000))
        connect_ms = max(1, round(connect_timeout * 1000))
        connect_args: dict[str, Any] = {
            "connect_timeout": whole,
            "options": f"-c statement_timeout={statement_ms}",
            "keepalives": 1,
            "keepalives_idle": whole,
            "keepalives_interval": whole,
            "keepalives_count": 3,
            "tcp_user_timeout": connect_ms,  # unacknowledged data: no server is listening
        }
    elif backend == "mysql" and driver in ("pymysql", "mysqldb"):
        connect_args = {
            "connect_timeout": whole,
            "read_timeout": max(1, math.ceil(statement_timeout)),
            "write_timeout": max(1, math.ceil(statement_timeout)),
        }
    else:
        return options
    options["connect_args"] = {k: v for k, v in connect_args.items() if k not in parsed.query}
    return options


class Database:
    """One database: an engine, sessions, and the tables.

    Args:
        url: a SQLAlchemy URL (default: `default_url`).
        create: create the tables of `Base.metadata` that do not exist yet.
        echo: log every statement.
        connect_timeout: seconds a new connection (or a free pooled one) is
            waited for at most.
        statement_timeout: seconds one statement (or a SQLite lock) may take at
            most; see `_engine_options` for how each backend enforces it.
        pool_timeout: seconds a session waits at most for a pooled connection when
            all are in use (default: `connect_timeout`; SQLite files: 30).

    Use ``with db.begin() as session:`` for a unit of work that commits on
    success and rolls back on error, ``with db.session() as session:`` to read.
    """

    _shared: ClassVar[dict[str, Database]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        url: str | None = None,
        *,
        create: bool = True,
        echo: bool = False,
        connect_timeout: float = 5.0,
        statement_timeout: float = 30.0,
        pool_timeout: float | None = None,
    ):
        self.url = resolve_url(url or default_url())
        is_sqlite = self.url.startswith("sqlite")
        kwargs = _engine_options(self.url, connect_timeout, statement_timeout, pool_timeout)
        self.engine: Engine = create_engine(self.url, echo=echo, **kwargs)
        if is_sqlite and self.url not in ("sqlite://", "sqlite:///:memory:"):
            busy_ms = max(1, round(statement_timeout * 1000))
            event.listen(self.engine, "connect", _sqlite_pragmas(busy_ms))
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if create:
            self.create_all()

    @classmethod
    def shared(cls, url: str | None = None) -> Database:
        """Return this process's one `Database` for `url` (default: `default_url`)."""
        url = url or default_url()
        with cls._shared_lock:
            db = cls._shared.get(url)
            if db is None:
                db = cls._shared[url] = cls(url)
            return db

    def create_all(self, *metadatas: MetaData) -> None:
        """Create the missing tables of `Base` and of any further `metadatas`.

        Safe when several processes do it at once: the check and the creation
        run under a lock, so the second one waits and then finds the tables. On
        PostgreSQL that is an advisory transaction lock; on SQLite, whose Python
        driver opens no transaction for DDL, an explicit ``BEGIN IMMEDIATE``
        (the database's write lock).
        """
        with self.engine.begin() as conn:
            dialect = conn.dialect.name
            if dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DDL_LOCK_KEY})
            elif dialect == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            for metadata in (Base.metadata, *metadatas):
                metadata.create_all(conn)
            _add_missing_columns(conn, ServiceRecord.__table__)

    def session(self) -> Session:
        """Open a session (use it as a context manager; it does not commit)."""
        return self._sessions()

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """Open a session in a transaction that commits on success, rolls back on error."""
        with self._sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"
