"""The data layer: SQLite file round trip, aware timestamps, liveness, a manager's own table."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import String, func, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from actors import Manager
from actors.db import Database, ServiceRecord, default_url, service_is_up

T0 = dt.datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=dt.UTC)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def test_sqlite_file_round_trip(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "state.sqlite3")
    db = Database(url)
    with db.begin() as session:
        session.add(
            ServiceRecord(
                host="node-1",
                binary="actors-volume",
                topic="volume",
                endpoint="tcp://127.0.0.1:5555",
                rpc_version="1.2",
                report_count=3,
                created_at=T0,
                updated_at=T0.astimezone(dt.timezone(dt.timedelta(hours=2))),
            )
        )
    db.dispose()

    reopened = Database(url)  # a second engine on the same file: what another process sees
    with reopened.session() as session:
        row = session.scalars(select(ServiceRecord)).one()
    assert (row.host, row.binary, row.topic) == ("node-1", "actors-volume", "volume")
    assert (row.endpoint, row.rpc_version, row.report_count) == ("tcp://127.0.0.1:5555", "1.2", 3)
    assert row.disabled is False
    assert row.cluster is None
    assert row.updated_at == T0
    assert row.updated_at.tzinfo is not None
    assert row.created_at == T0
    assert (tmp_path / "state.sqlite3").stat().st_size > 0
    reopened.dispose()


def test_host_binary_is_unique(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "u.sqlite3"))
    with db.begin() as session:
        session.add(ServiceRecord(host="h", binary="b", topic="t"))
    with pytest.raises(IntegrityError), db.begin() as session:
        session.add(ServiceRecord(host="h", binary="b", topic="t"))


def test_naive_datetimes_are_refused(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "n.sqlite3"))
    naive = ServiceRecord(host="h", binary="b", topic="t", updated_at=dt.datetime(2026, 1, 1))
    with db.session() as session:
        session.add(naive)
        with pytest.raises(StatementError, match="naive datetime"):
            session.commit()


def test_created_at_defaults_to_now(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "c.sqlite3"))
    before = dt.datetime.now(dt.UTC)
    with db.begin() as session:
        session.add(ServiceRecord(host="h", binary="b", topic="t"))
    with db.session() as session:
        row = session.scalars(select(ServiceRecord)).one()
    assert before <= row.created_at <= dt.datetime.now(dt.UTC)
    assert row.updated_at is None


@pytest.mark.parametrize(
    ("age", "up"),
    [
        (dt.timedelta(0), True),
        (dt.timedelta(seconds=59, microseconds=999999), True),
        (dt.timedelta(seconds=60), True),  # the boundary itself is up
        (dt.timedelta(seconds=60, microseconds=1), False),
        (dt.timedelta(seconds=61), False),
        (dt.timedelta(seconds=-30), True),  # a heartbeat from a clock ahead of ours
    ],
)
def test_liveness_boundary(age: dt.timedelta, up: bool) -> None:
    row = ServiceRecord(host="h", binary="b", topic="t", updated_at=T0)
    assert service_is_up(row, down_time=60, now=T0 + age) is up


def test_never_heartbeat_is_down() -> None:
    row = ServiceRecord(host="h", binary="b", topic="t", updated_at=None)
    assert service_is_up(row, down_time=60, now=T0) is False


def test_default_url_is_a_sqlite_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ACTORS_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_url() == f"sqlite:///{tmp_path / 'actors.sqlite3'}"
    monkeypatch.setenv("ACTORS_DATABASE_URL", "postgresql://u@127.0.0.1/x")
    assert default_url() == "postgresql://u@127.0.0.1/x"


# -- a manager's own table, written through self.db and kept serial by the mailbox --


class NotesBase(DeclarativeBase):
    pass


class Note(NotesBase):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    author: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int]


class Notebook(Manager):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.db.create_all(NotesBase.metadata)

    def write(self, author: str, seq: int) -> int:
        with self.db.begin() as session:
            session.add(Note(author=author, seq=seq))
            # read-modify-write would race without the mailbox; here it cannot
            return session.scalar(select(func.count()).select_from(Note)) or 0


def test_manager_writes_its_own_table(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "notes.sqlite3"))
    notebook = Notebook.start(host="h", db=db).proxy()
    futures = [notebook.write(f"author-{i % 3}", i) for i in range(60)]
    counts = [f.get(timeout=10) for f in futures]
    assert counts == list(range(1, 61))
    with db.session() as session:
        seqs = session.scalars(select(Note.seq).order_by(Note.id)).all()
    assert seqs == list(range(60))


def test_concurrent_table_creation_from_many_processes(tmp_path: Path) -> None:
    """Several nodes creating the same tables at once on one SQLite file."""
    url = sqlite_url(tmp_path / "race.sqlite3")
    script = (
        "import sys\n"
        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n"
        "from actors.db import Database\n"
        "class B(DeclarativeBase): pass\n"
        "class T(B):\n"
        "    __tablename__ = 'raced'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "sys.stdin.readline()\n"  # all start together
        f"Database({url!r}).create_all(B.metadata)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    errors = []
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            errors.append(err)
    assert errors == []
