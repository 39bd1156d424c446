"""``actors top``: a live view of a node's managers, read from its metrics endpoint.

Each refresh scrapes ``/metrics`` (see `actors._metrics`) and shows one row per
manager: whether it runs, mailbox depth, calls and casts per second since the
previous scrape, errors since the node started, handler and mailbox-wait p99
(interpolated within the histogram's buckets, as PromQL's
``histogram_quantile`` does, over the scrape interval, or over the node's life
when nothing was timed in it), and the ages of the last timer tick and the
last heartbeat; a caption gives the bridge's messages per second and its
refusals by reason.
"""

from __future__ import annotations

import math
import time
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families
from rich.live import Live
from rich.table import Table

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Sample", "render", "run_top", "scrape"]

Key = tuple[str, str, str]  # manager, topic, host


@dataclass
class _Row:
    values: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


@dataclass
class Sample:
    """One scrape: when it was taken and each manager's numbers."""

    taken: float
    rows: dict[Key, _Row]
    bridge: dict[str, float] = field(default_factory=dict)
    """The bridge's counters: ``in``, ``out`` and ``refused:<reason>``."""


def scrape(url: str, *, timeout: float = 5.0) -> Sample:
    """Read a node's metrics endpoint.

    Raises:
        OSError: the endpoint cannot be read (``urllib.error.URLError`` included).
    """
    if not url.startswith(("http://", "https://")):
        msg = f"not an http(s) URL: {url!r}"
        raise ValueError(msg)
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - checked above
        text = response.read().decode()
    taken = time.monotonic()
    rows: dict[Key, _Row] = {}
    bridge: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "actors_bridge_messages":
            bridge.update({s.labels["direction"]: s.value for s in family.samples})
            continue
        if family.name == "actors_bridge_refused":
            bridge.update({f"refused:{s.labels['reason']}": s.value for s in family.samples})
            continue
        if not family.name.startswith("actors_"):
            continue
        for sample in family.samples:
            labels = sample.labels
            if "manager" not in labels or "task" in labels:
                continue
            row = rows.setdefault((labels["manager"], labels["topic"], labels["host"]), _Row())
            if sample.name.endswith("_bucket"):
                bound = math.inf if labels["le"] == "+Inf" else float(labels["le"])
                row.buckets.setdefault(family.name, []).append((bound, sample.value))
            else:
                row.values[sample.name] = sample.value
    return Sample(taken, rows, bridge)


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Estimate quantile `q` from cumulative buckets (linear within a bucket)."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # beyond the last finite bucket: its bound is all we know
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return None  # pragma: no cover - the +Inf bucket always holds the rank


def _window(
    name: str, row: _Row, before: _Row | None
) -> list[tuple[float, float]]:
    """The histogram's buckets over the interval, or all of them if nothing ran in it."""
    now = row.buckets.get(name, [])
    if before is None or name not in before.buckets:
        return now
    old = dict(before.buckets[name])
    delta = [(bound, count - old.get(bound, 0.0)) for bound, count in now]
    return delta if delta and max(count for _, count in delta) > 0 else now


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.1f} s"


def render(current: Sample, previous: Sample | None = None, *, title: str = "") -> Table:
    """Build the table of one refresh (rates need the previous scrape)."""
    table = Table(title=title or None)
    names = ("manager", "topic", "host")
    for column in (*names, "up", "mailbox", "calls/s", "casts/s", "errors", "handler p99",
                   "wait p99", "last tick", "heartbeat"):  # fmt: skip
        table.add_column(column, justify="left" if column in names else "right", no_wrap=True)
    elapsed = current.taken - previous.taken if previous is not None else 0.0
    for key in sorted(current.rows):
        row = current.rows[key]
        before = previous.rows.get(key) if previous is not None else None
        v = row.values

        def rate(name: str, v: dict[str, float] = v, before: _Row | None = before) -> str:
            if before is None or elapsed <= 0:
                return "-"
            return f"{(v.get(name, 0.0) - before.values.get(name, 0.0)) / elapsed:,.1f}"

        up = v.get("actors_manager_up", 0.0) == 1.0
        tick = v.get("actors_last_tick_age_seconds")
        beat = v.get("actors_heartbeat_age_seconds")
        table.add_row(
            *key,
            "[green]yes[/]" if up else "[red]no[/]",
            f"{v.get('actors_mailbox_depth', 0.0):.0f}",
            rate("actors_calls_total"),
            rate("actors_casts_total"),
            f"{v.get('actors_handler_errors_total', 0.0):.0f}",
            _seconds(_quantile(0.99, _window("actors_handler_duration_seconds", row, before))),
            _seconds(_quantile(0.99, _window("actors_mailbox_wait_seconds", row, before))),
            "-" if tick is None else f"{_seconds(tick)} ago",
            "-" if beat is None else f"{_seconds(beat)} ago",
        )
    table.caption = _bridge_line(current, previous, elapsed)
    return table


def _bridge_line(current: Sample, previous: Sample | None, elapsed: float) -> str:
    """A caption: the bridge's messages per second and its refusals so far."""
    if not current.bridge:
        return ""
    parts = []
    for direction in ("in", "out"):
        if previous is not None and elapsed > 0:
            change = current.bridge.get(direction, 0.0) - previous.bridge.get(direction, 0.0)
            parts.append(f"{direction} {change / elapsed:,.1f}/s")
        else:
            parts.append(f"{direction} {current.bridge.get(direction, 0.0):,.0f}")
    refused = ", ".join(
        f"{key.partition(':')[2]} {count:,.0f}"
        for key, count in sorted(current.bridge.items())
        if key.startswith("refused:") and count
    )
    return f"bridge: {', '.join(parts)}; refused: {refused or 'none'}"


def run_top(
    url: str, console: Console, *, interval: float = 2.0, once: bool = False,
    count: int | None = None,
) -> None:  # fmt: skip
    """Show the managers of the node at `url`, refreshing every `interval` seconds.

    With `once`, scrape twice `interval` apart (for the rates), print one table
    and return; otherwise refresh until interrupted, or `count` refreshes.
    """
    title = f"actors top: {url}"
    previous = scrape(url)
    if once:
        time.sleep(interval)  # the sampling window of the rates
        console.print(render(scrape(url), previous, title=title))
        return
    refreshes = 0
    with Live(render(previous, title=title), console=console, auto_refresh=False) as live:
        while count is None or refreshes < count:
            time.sleep(interval)
            current = scrape(url)
            live.update(render(current, previous, title=title), refresh=True)
            previous = current
            refreshes += 1
