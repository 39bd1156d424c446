"""Shared fixtures: every test ends with no actor left running."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pykka
import pytest
from hypothesis import HealthCheck, settings

from actors import ManualClock
from tests._postgres import PostgresServer, start_postgres_or_skip

if TYPE_CHECKING:
    from collections.abc import Iterator

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("default")


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=10)
    assert not pykka.ActorRegistry.get_all(), "actors left running after the test"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1000.0)


@pytest.fixture
def caplog_errors(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server, or a skip that says why (never a skip under CI)."""
    server = start_postgres_or_skip()
    try:
        yield server
    finally:
        server.stop()
