"""The same data layer on a real PostgreSQL server: a URL change and nothing else."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from typing import Any

import pytest
from sqlalchemy import String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from actors import Manager
from actors.db import Database, ServiceRecord, service_is_up
from tests._postgres import PostgresServer

_names = itertools.count()


@pytest.fixture
def pg_db(postgres: PostgresServer) -> Any:
    db = Database(postgres.create_database(f"actors_test_{next(_names)}"))
    yield db
    db.dispose()


def test_services_round_trip(pg_db: Database, postgres: PostgresServer) -> None:
    t0 = dt.datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=dt.UTC)
    with pg_db.begin() as session:
        session.add(ServiceRecord(host="node-1", binary="actors-volume", topic="volume",
                                  endpoint="tcp://127.0.0.1:1", rpc_version="1.0",
                                  created_at=t0, updated_at=t0))
    again = Database(pg_db.url)  # another engine: what another host sees
    with again.session() as session:
        row = session.scalars(select(ServiceRecord)).one()
    assert row.updated_at == t0
    assert row.updated_at.tzinfo is not None
    assert service_is_up(row, down_time=60, now=t0 + dt.timedelta(seconds=60))
    assert not service_is_up(row, down_time=60, now=t0 + dt.timedelta(seconds=61))
    with pytest.raises(IntegrityError), again.begin() as session:
        session.add(ServiceRecord(host="node-1", binary="actors-volume", topic="volume"))
    again.dispose()


class ShelfBase(DeclarativeBase):
    pass


class Item(ShelfBase):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32))


class Shelf(Manager):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.db.create_all(ShelfBase.metadata)

    def put(self, name: str) -> int:
        with self.db.begin() as session:
            item = Item(name=name)
            session.add(item)
            session.flush()
            return item.id


def test_manager_table_on_postgres(pg_db: Database) -> None:
    shelf = Shelf.start(host="h", db=pg_db).proxy()
    ids = [shelf.put(f"item-{i}").get(timeout=10) for i in range(10)]
    assert ids == sorted(ids)
    with pg_db.session() as session:
        assert session.scalars(select(Item.name).order_by(Item.id)).all() == [
            f"item-{i}" for i in range(10)
        ]


def test_concurrent_table_creation_from_many_hosts(postgres: PostgresServer) -> None:
    url = postgres.create_database(f"actors_race_{next(_names)}")

    class RaceBase(DeclarativeBase):
        pass

    class Raced(RaceBase):
        __tablename__ = "raced"
        id: Mapped[int] = mapped_column(primary_key=True)

    databases = [Database(url, create=False) for _ in range(6)]
    barrier = threading.Barrier(len(databases))
    errors: list[BaseException] = []

    def create(db: Database) -> None:
        barrier.wait(timeout=10)
        try:
            db.create_all(RaceBase.metadata)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    with databases[0].session() as session:
        assert session.scalars(select(Raced)).all() == []
    for db in databases:
        db.dispose()
