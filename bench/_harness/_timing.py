"""Timed loops and their reduction: latencies, windows of calls in flight, rates, medians."""

from __future__ import annotations

import statistics
import time
from collections import deque
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

T = TypeVar("T")


def timed_calls(call: Callable[[], object], n: int) -> list[float]:
    """Call `call` `n` times; return each call's latency in seconds."""
    samples = []
    clock = time.perf_counter
    for _ in range(n):
        start = clock()
        call()
        samples.append(clock() - start)
    return samples


def pipelined(issue: Callable[[], T], finish: Callable[[T], object], n: int, window: int) -> float:
    """`n` operations with up to `window` in flight; return operations per second.

    `issue` starts one (a call's future, or a request sent) and `finish` waits
    for one (``future.get()``, or a reply read), oldest first.
    """
    start = time.perf_counter()
    flight: deque[T] = deque()
    for _ in range(n):
        if len(flight) >= window:
            finish(flight.popleft())
        flight.append(issue())
    while flight:
        finish(flight.popleft())
    return n / (time.perf_counter() - start)


async def timed_awaits(call: Callable[[], Awaitable[object]], n: int) -> list[float]:
    """Await `call()` `n` times, one at a time; return each one's latency in seconds."""
    samples = []
    clock = time.perf_counter
    for _ in range(n):
        start = clock()
        await call()
        samples.append(clock() - start)
    return samples


async def pipelined_awaits(
    issue: Callable[[], Awaitable[T]], finish: Callable[[T], Awaitable[object]], n: int,
    window: int,
) -> float:  # fmt: skip
    """`pipelined` for asyncio: `issue` and `finish` are awaited; operations per second."""
    start = time.perf_counter()
    flight: deque[T] = deque()
    for _ in range(n):
        if len(flight) >= window:
            await finish(flight.popleft())
        flight.append(await issue())
    while flight:
        await finish(flight.popleft())
    return n / (time.perf_counter() - start)


def in_rounds(issue: Callable[[], T], finish: Callable[[T], object], n: int, size: int) -> float:
    """`n` operations in rounds: issue `size`, then finish them all; return the rate per second."""
    start = time.perf_counter()
    for first in range(0, n, size):
        flight = [issue() for _ in range(min(size, n - first))]
        for item in flight:
            finish(item)
    return n / (time.perf_counter() - start)


def rate_of(n: int, run: Callable[[], object]) -> float:
    """`n` divided by the seconds `run()` takes (it does `n` of something)."""
    start = time.perf_counter()
    run()
    return n / (time.perf_counter() - start)


def rate(seconds: float, step: Callable[[], int]) -> float:
    """Run `step()` (which returns how many it did) for `seconds`; return the rate per second."""
    start = time.perf_counter()
    done = 0
    while time.perf_counter() - start < seconds:
        done += step()
    return done / (time.perf_counter() - start)


def interleaved(
    calls: Mapping[str, Callable[[], object]], n: int, block: int = 250, warm: int = 10
) -> dict[str, list[float]]:
    """About `n` timed calls of each of `calls`, in alternating blocks (the same noise for all).

    Each block is `warm` untimed calls (they bring that server back into the
    caches) and then `block` timed ones.
    """
    return interleaved_blocks(
        {name: _block_of(call, warm) for name, call in calls.items()}, n, block
    )


def _block_of(call: Callable[[], object], warm: int) -> Callable[[int], list[float]]:
    return lambda size: timed_calls(call, size + warm)[warm:]


def interleaved_blocks(
    blocks: Mapping[str, Callable[[int], Sequence[float]]], n: int, block: int = 250
) -> dict[str, list[float]]:
    """About `n` samples of each of `blocks`, in alternating blocks (the same noise for all).

    ``blocks[name](size)`` times `size` calls and returns their latencies: in
    this process (`interleaved`), or in a child process that times its own
    calls (``bench.critical``).
    """
    samples: dict[str, list[float]] = {name: [] for name in blocks}
    for _ in range(max(1, n // block)):
        for name, run in blocks.items():
            samples[name] += run(block)
    return samples


def median_of(repeats: int, run: Callable[[], float]) -> tuple[float, list[float]]:
    """Run `run` `repeats` times; return the median and every sample."""
    samples = [run() for _ in range(repeats)]
    return statistics.median(samples), samples


def medians(samples: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """The median of each list of samples."""
    return {key: float(statistics.median(values)) for key, values in samples.items()}


def pct(values: Sequence[float], p: float) -> float:
    """The `p` quantile (0..1) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def ratio(ours: float, floor: float) -> float:
    """`ours` / `floor` (inf when the floor is zero)."""
    return ours / floor if floor else float("inf")
