"""HeartbeatWriter: writes on its own thread, waits a bound, skips while a write is in flight."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest

from actors._heartbeat import HeartbeatWriter

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Store:
    """A write function the test can hold up."""

    def __init__(self) -> None:
        self.written: list[dt.datetime] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()
        self.fail = False

    def write(self, now: dt.datetime) -> None:
        self.entered.set()
        assert self.release.wait(timeout=30)
        if self.fail:
            raise RuntimeError("database away")
        self.written.append(now)


def test_a_quick_write_is_waited_for() -> None:
    store = Store()
    writer = HeartbeatWriter(store.write, name="hb-test")
    try:
        assert writer.beat(T0, wait=30) is True
        assert store.written == [T0]  # written before beat() returned
    finally:
        writer.stop(timeout=5)


def test_a_stuck_write_holds_the_caller_at_most_the_wait_and_later_beats_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store()
    store.release.clear()
    writer = HeartbeatWriter(store.write, name="hb-test")
    try:
        assert writer.beat(T0, wait=0.05) is False  # the write goes on in the background
        assert store.entered.wait(timeout=10)
        later = T0 + dt.timedelta(seconds=10)
        with caplog.at_level(logging.WARNING):
            assert writer.beat(later, wait=30) is False  # in flight: skipped at once
            assert writer.beat(later, wait=30) is False
        assert writer.skipped == 2
        assert caplog.text.count("still being written") == 1
        assert not writer.wait_idle(timeout=0.01)
        store.release.set()
        assert writer.wait_idle(timeout=10)
        assert store.written == [T0]  # the skipped beats were not queued
        assert writer.beat(later, wait=30) is True
        assert store.written == [T0, later]
    finally:
        store.release.set()
        writer.stop(timeout=5)


def test_a_failing_write_is_logged_and_the_writer_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store()
    store.fail = True
    writer = HeartbeatWriter(store.write, name="hb-test")
    try:
        assert writer.beat(T0, wait=30) is True  # it ended (in failure) within the wait
        assert "heartbeat write failed" in caplog.text
        store.fail = False
        assert writer.beat(T0, wait=30) is True
        assert store.written == [T0]
    finally:
        writer.stop(timeout=5)


def test_stop_ends_the_thread_and_later_beats_write_nothing() -> None:
    store = Store()
    writer = HeartbeatWriter(store.write, name="hb-stop-test")
    assert writer.beat(T0, wait=30) is True
    writer.stop(timeout=5)
    assert not any(t.name == "hb-stop-test" for t in threading.enumerate())
    assert writer.beat(T0, wait=30) is False
    assert store.written == [T0]
