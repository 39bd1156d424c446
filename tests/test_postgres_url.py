"""A plain ``postgresql://`` URL works unchanged, as the README says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

import actors.db
from actors.cli import app
from actors.db import Database, ServiceRecord, resolve_url
from tests._postgres import PostgresServer


def test_a_plain_url_gets_the_installed_driver() -> None:
    assert resolve_url("postgresql://actors:s3cret@db.example:5433/actors") == (
        "postgresql+psycopg://actors:s3cret@db.example:5433/actors"
    )
    assert resolve_url("postgres://db.example/a").startswith("postgresql+psycopg://")
    for unchanged in ("postgresql+psycopg2://u@h/d", "sqlite:////tmp/x.sqlite3", "sqlite://"):
        assert resolve_url(unchanged) == unchanged


def test_no_driver_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(actors.db, "POSTGRES_DRIVERS", (("nodriver", "no_such_module_x"),))
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'actors\[postgres\]'"):
        Database("postgresql://u:pw@h/d")


def test_a_plain_url_on_a_real_server(postgres: PostgresServer, tmp_path: Path) -> None:
    driver_url = postgres.create_database("plain_url")
    plain = make_url(driver_url).set(drivername="postgresql").render_as_string(False)
    assert plain.startswith("postgresql://")
    db = Database(plain)
    with db.begin() as session:
        session.add(ServiceRecord(host="pg-1", binary="actors-kv", topic="kv"))
    with db.session() as session:
        assert session.scalars(select(ServiceRecord.host)).all() == ["pg-1"]
    db.dispose()
    config = tmp_path / "node.toml"
    config.write_text(f'database_url = "{plain}"\n[[services]]\nmanager = "a.b:C"\n')
    result = CliRunner().invoke(app, ["services", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert [row["host"] for row in json.loads(result.output)] == ["pg-1"]
