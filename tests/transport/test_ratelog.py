"""The refusal log: every refusal counted, at most one line per interval."""

from __future__ import annotations

import logging

import pytest

from actors import ManualClock
from transport._ratelog import RefusalLog


def test_first_refusal_at_once_then_one_summary_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock(start=100.0)
    log = RefusalLog(logging.getLogger("test.refusals"), interval=10.0, clock=clock.monotonic)
    caplog.set_level(logging.INFO, logger="test.refusals")
    for i in range(1000):
        log.note("malformed", f"frame {i}")
    log.note("overloaded", "call 7")
    assert [r.getMessage() for r in caplog.records] == ["malformed: frame 0"]
    assert log.flush() == pytest.approx(10.0)  # not yet due
    clock.advance(10.0)
    assert log.flush() is None
    assert [r.getMessage() for r in caplog.records][1:] == [
        "refused in the last 10 s: 999 malformed (e.g. frame 1); 1 overloaded (e.g. call 7)"
    ]
    log.note("malformed", "frame 1000")  # inside the next interval: summarised later
    assert len(caplog.records) == 2
    clock.advance(10.0)
    log.flush()
    clock.advance(60.0)
    assert log.flush() is None  # nothing pending: nothing written
    log.note("malformed", "after a quiet spell")  # logged at once again
    assert [r.getMessage() for r in caplog.records][2:] == [
        "refused in the last 10 s: 1 malformed (e.g. frame 1000)",
        "malformed: after a quiet spell",
    ]
    assert log.totals() == {"malformed": 1002, "overloaded": 1}


def test_a_summary_becoming_due_is_announced_once() -> None:
    clock = ManualClock(start=0.0)
    calls: list[int] = []
    log = RefusalLog(
        logging.getLogger("test.refusals"), interval=5.0, clock=clock.monotonic,
        on_pending=lambda: calls.append(1),
    )  # fmt: skip
    log.note("expired", "first")  # logged at once: nothing to announce
    assert calls == []
    for _ in range(10):
        log.note("expired", "more")
    assert calls == [1]  # once, when the summary became due
    clock.advance(5.0)
    log.flush()
    log.note("expired", "again")  # inside the next interval: due again
    assert calls == [1, 1]
