"""Fixtures for the demo volume service: a SQLite file shared by every manager."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from actors.db import Database

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'demo.sqlite3'}"


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()
