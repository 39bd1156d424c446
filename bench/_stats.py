"""Small helpers the benchmarks share: medians over repetitions, RSS, a table."""

from __future__ import annotations

import gc
import os
import statistics
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


def median_of(repeats: int, run: Callable[[], float]) -> tuple[float, list[float]]:
    """Run `run` `repeats` times; return the median and every sample."""
    samples = [run() for _ in range(repeats)]
    return statistics.median(samples), samples


def rss_bytes() -> int:
    """This process's resident set size, from /proc (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a rich table to stdout."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column != columns[0] else "left")
    for row in rows:
        table.add_row(*row)
    Console(width=120).print(table)


def freeze_startup() -> None:
    """Keep the objects built so far out of future collections, as ``actors node`` does."""
    gc.collect()
    gc.freeze()
