"""The harness's loops and reductions, driven by recording callables."""

from __future__ import annotations

import asyncio
import math

import pytest

from bench import _harness as h


def test_timed_calls_times_each_call() -> None:
    calls: list[int] = []
    samples = h.timed_calls(lambda: calls.append(1), 25)
    assert len(samples) == len(calls) == 25
    assert all(s >= 0 for s in samples)


@pytest.mark.parametrize(("n", "window"), [(10, 3), (3, 10), (64, 64), (1, 1)])
def test_pipelined_keeps_at_most_window_in_flight_and_finishes_oldest_first(
    n: int, window: int
) -> None:
    issued: list[int] = []
    finished: list[int] = []
    most = [0]

    def issue() -> int:
        issued.append(len(issued))
        most[0] = max(most[0], len(issued) - len(finished))
        return issued[-1]

    rate = h.pipelined(issue, finished.append, n, window)
    assert finished == issued == list(range(n))
    assert most[0] == min(n, window)
    assert rate > 0


def test_in_rounds_issues_a_round_then_finishes_it() -> None:
    log: list[str] = []

    def issue() -> int:
        log.append("i")
        return len(log)

    h.in_rounds(issue, lambda _: log.append("f"), 5, 2)
    assert "".join(log) == "iiffiiffif"


def test_interleaved_alternates_blocks_and_drops_each_blocks_warm_up() -> None:
    order: list[str] = []
    samples = h.interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                            n=10, block=5, warm=2)  # fmt: skip
    assert order == ["a"] * 7 + ["b"] * 7 + ["a"] * 7 + ["b"] * 7
    assert [len(s) for s in samples.values()] == [10, 10]


def test_rate_runs_steps_for_the_given_time() -> None:
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 10

    per_second = h.rate(0.02, step)
    assert steps[0] >= 1
    assert per_second > 0
    assert h.rate_of(100, lambda: None) > 0


def test_medians_quantiles_and_ratios() -> None:
    assert h.median_of(3, iter([3.0, 1.0, 2.0]).__next__) == (2.0, [3.0, 1.0, 2.0])
    assert h.medians({"x": [1, 5, 2, 4], "y": [7]}) == {"x": 3.0, "y": 7.0}
    values = list(range(1, 101))
    assert h.pct(values, 0.5) == 51  # nearest rank
    assert h.pct(values, 0.99) == 100
    assert h.pct(values, 1.0) == 100
    assert h.ratio(3, 2) == 1.5
    assert math.isinf(h.ratio(1, 0))


def test_the_asyncio_loops_keep_the_same_window() -> None:
    issued: list[int] = []
    finished: list[int] = []
    most = [0]

    async def issue() -> int:
        issued.append(len(issued))
        most[0] = max(most[0], len(issued) - len(finished))
        return issued[-1]

    async def finish(item: int) -> None:
        finished.append(item)

    async def main() -> tuple[float, list[float]]:
        rate = await h.pipelined_awaits(issue, finish, 10, 4)
        return rate, await h.timed_awaits(lambda: asyncio.sleep(0), 5)

    rate, samples = asyncio.run(main())
    assert finished == issued == list(range(10))
    assert most[0] == 4
    assert rate > 0
    assert len(samples) == 5
