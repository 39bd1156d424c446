"""What a benchmark prints and writes: ours beside the floor, targets, tables, JSON, plots.

A benchmark's figures are `Row`s: one measure, a value per series (ours and
the floor measured in the same run, or more series), an optional `Target`.
`Output` prints them as a table, and, when asked, writes them with the raw
results as JSON (``--json FILE``, one schema for every benchmark: `SCHEMA`)
and draws them as bars (``--plot FILE.png``).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

SCHEMA = "actors-bench/1"
"""The ``schema`` field of every benchmark's JSON."""

_OPS = {
    "<=": lambda value, bound: value <= bound,
    "<": lambda value, bound: value < bound,
    ">=": lambda value, bound: value >= bound,
    ">": lambda value, bound: value > bound,
}


@dataclass(frozen=True)
class Target:
    """A bound on a figure: ``Target("<=", 1.3)`` (a ratio), ``Target(">=", 0.5, "%")``.

    `style` says how the figure reads: ``x`` a ratio (1.25x), ``%`` a fraction
    (62 %), ``+%`` a change (+1.2 %), anything else a unit (``ms``).
    """

    op: str
    bound: float
    style: str = "x"

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"unknown comparison {self.op!r}; one of {', '.join(_OPS)}")

    def met(self, value: float) -> bool:
        """Whether `value` is within the bound."""
        return bool(_OPS[self.op](value, self.bound))

    def show(self, value: float) -> str:
        """`value` written in this target's style."""
        return show(value, self.style)

    def __str__(self) -> str:
        return f"{self.op} {self.show(self.bound)}"


def show(value: float, style: str = "") -> str:
    """A figure for a table: ``x`` ratio, ``%`` fraction, ``+%`` change, else about 3 digits."""
    if style == "x":
        return f"{value:.2f}x"
    if style == "%":
        return f"{value:.0%}".replace("%", " %")
    if style == "+%":
        return f"{value:+.1%}".replace("%", " %")
    if not math.isfinite(value):
        text = str(value)
    elif value == 0 or abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:,.1f}"
    elif abs(value) >= 0.1:
        text = f"{value:,.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {style}" if style else text


@dataclass
class Row:
    """One measure: a value per series (ours first), which series is the floor, a target.

    The target checks `figure` when given (e.g. a median of paired ratios),
    else ours / floor, else ours alone.
    """

    measure: str
    values: dict[str, float]
    unit: str = ""
    floor: str | None = None
    target: Target | None = None
    figure: float | None = None
    note: str = ""
    subject: str | None = None
    """The series the target is about (default: the first that is not the floor)."""

    @property
    def ours(self) -> str:
        """The series the target is about."""
        if self.subject is not None:
            return self.subject
        return next(name for name in self.values if name != self.floor)

    def ratios(self) -> dict[str, float]:
        """Each other series over the floor (empty without a floor)."""
        if self.floor is None or self.floor not in self.values:
            return {}
        floor = self.values[self.floor]
        return {
            name: value / floor if floor else float("inf")
            for name, value in self.values.items()
            if name != self.floor
        }

    @property
    def checked(self) -> float:
        """The figure the target is checked on."""
        if self.figure is not None:
            return self.figure
        return self.ratios().get(self.ours, self.values[self.ours])

    @property
    def met(self) -> bool | None:
        """Whether the target is met (None without one)."""
        return None if self.target is None else self.target.met(self.checked)

    def as_json(self) -> dict[str, Any]:
        """The row as JSON (`from_json` reads it back)."""
        return {
            "measure": self.measure,
            "unit": self.unit,
            "values": self.values,
            "floor": self.floor,
            "ratios": self.ratios(),
            "target": None if self.target is None else {
                "op": self.target.op, "bound": self.target.bound, "style": self.target.style,
                "text": str(self.target),
            },
            "figure": self.figure,
            "checked": self.checked if self.target is not None else None,
            "met": self.met,
            "note": self.note,
            "subject": self.subject,
            "ours": self.ours,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        """A row from `as_json`'s output."""
        target = data.get("target")
        return cls(
            measure=data["measure"],
            values={k: float(v) for k, v in data["values"].items()},
            unit=data.get("unit", ""),
            floor=data.get("floor"),
            target=None if target is None else Target(
                target["op"], target["bound"], target.get("style", "x")
            ),
            figure=data.get("figure"),
            note=data.get("note", ""),
            subject=data.get("subject"),
        )  # fmt: skip


def all_met(rows: Sequence[Row]) -> bool | None:
    """Whether every target among `rows` is met (None when none has a target)."""
    verdicts = [row.met for row in rows if row.met is not None]
    return all(verdicts) if verdicts else None


# -- tables ------------------------------------------------------------------------------


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    caption: str | None = None,
    lines: bool = False,
    file: TextIO | None = None,
) -> None:
    """Print a table (rich); the first column left-aligned, the others right."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=title, caption=caption, show_lines=lines)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    out = file or sys.stdout
    Console(file=out, width=max(120, Console(file=out).width)).print(table)


def rows_table(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """The columns and cells of `rows`: each series, each ratio to the floor, target, ok."""
    series = list(dict.fromkeys(name for row in rows for name in row.values))
    floors = list(dict.fromkeys(row.floor for row in rows if row.floor is not None))
    compared = [
        name for name in series
        if any(row.floor not in (None, name) and name in row.values for row in rows)
    ]  # fmt: skip
    floor_name = floors[0] if len(floors) == 1 else "floor"
    targets = any(row.target is not None for row in rows)
    notes = any(row.note for row in rows)
    columns = ["measure", *series, *(f"{name}/{floor_name}" for name in compared)]
    columns += ["target", "ok"] if targets else []
    columns += ["note"] if notes else []
    cells = []
    for row in rows:
        ratios = row.ratios()
        style = row.target.style if row.target is not None and row.figure is None else "x"
        line = [row.measure + (f" ({row.unit})" if row.unit else "")]
        line += [show(row.values[name]) if name in row.values else "-" for name in series]
        line += [
            show(ratios[name], style if name == row.ours else "x") if name in ratios else "-"
            for name in compared
        ]
        if targets:
            if row.target is None:
                line += ["", ""]
            else:
                shown = "" if row.figure is None else f"{row.target.show(row.figure)} "
                line += [f"{shown}{row.target}", "yes" if row.met else "NO"]
        if notes:
            line.append(row.note)
        cells.append(line)
    return columns, cells


# -- the command line and its outputs ---------------------------------------------------------


def parser(doc: str | None, *, plot: bool = True, full: bool = False) -> argparse.ArgumentParser:
    """A benchmark's argument parser: its docstring (first line, or all with `full`), outputs."""
    import argparse  # noqa: PLC0415

    if full:
        made = argparse.ArgumentParser(
            description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
        )
    else:
        made = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    output_options(made, plot=plot)
    return made


def output_options(parser: argparse.ArgumentParser, *, plot: bool = True) -> None:
    """Add ``--json FILE`` (``-``: stdout) and, with `plot`, ``--plot FILE.png``."""
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON (- for stdout)")
    if plot:
        parser.add_argument("--plot", metavar="FILE.png", help="draw the figures (matplotlib)")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_1m": os.getloadavg()[0],
    }


def write_json(
    path: str | os.PathLike[str],
    benchmark: str,
    results: Any,
    *,
    rows: Sequence[Row] = (),
    options: dict[str, Any] | None = None,
    elapsed: float | None = None,
) -> dict[str, Any]:
    """Write one benchmark's figures in the common schema to `path` (``-``: stdout)."""
    document = {
        "schema": SCHEMA,
        "benchmark": benchmark,
        "argv": sys.argv[1:],
        "options": options or {},
        "machine": machine(),
        "finished_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "elapsed_s": elapsed,
        "rows": [row.as_json() for row in rows],
        "ok": all_met(rows),
        "results": results,
    }
    text = json.dumps(document, indent=2, default=str)
    if str(path) == "-":
        print(text, flush=True)
    else:
        Path(path).write_text(text + "\n")
    return document


def read_json(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[Row]]:
    """A document `write_json` wrote, and its rows.

    Raises:
        ValueError: it is not in the common schema.
    """
    document = json.loads(Path(path).read_text())
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a benchmark result (schema {SCHEMA})")
    return document, [Row.from_json(row) for row in document["rows"]]


@dataclass
class Output:
    """One run's outputs: tables as it goes, then JSON and a plot as the options ask.

    With ``--json -`` the tables go to stderr, so stdout is only the JSON.
    """

    benchmark: str
    options: argparse.Namespace
    rows: list[Row] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def parse(cls, parser: argparse.ArgumentParser, benchmark: str) -> Output:
        """Parse the command line; the run's outputs (its options are ``.options``)."""
        return cls(benchmark, parser.parse_args())

    def __post_init__(self) -> None:
        if getattr(self.options, "plot", None):
            from bench._harness._plot import require_matplotlib  # noqa: PLC0415

            require_matplotlib()

    @property
    def file(self) -> TextIO:
        """Where tables go."""
        return sys.stderr if getattr(self.options, "json", None) == "-" else sys.stdout

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]],
              **kwargs: Any) -> None:  # fmt: skip
        """Print a table (`print_table`)."""
        print_table(title, columns, rows, file=self.file, **kwargs)

    def print(self, text: str) -> None:
        """Print a line where the tables go."""
        print(text, file=self.file, flush=True)

    def compare(self, title: str, rows: Sequence[Row], **kwargs: Any) -> bool | None:
        """Print `rows` as a table, keep them for JSON and the plot; whether targets are met."""
        columns, cells = rows_table(rows)
        self.table(title, columns, cells, **kwargs)
        self.rows.extend(rows)
        self.titles.append(title)
        return all_met(rows)

    def finish(
        self, results: Any, *, title: str | None = None, plot: bool = True
    ) -> dict[str, Any] | None:
        """Write the JSON and (unless not `plot`) draw the rows, if asked; the JSON written."""
        document = None
        if plot and getattr(self.options, "plot", None) and self.rows:
            from bench._harness._plot import plot_rows  # noqa: PLC0415

            heading = title or "\n".join([self.benchmark, *self.titles])
            plot_rows(self.options.plot, heading, self.rows)
        if getattr(self.options, "json", None):
            public = {
                k: v for k, v in vars(self.options).items()
                if k not in ("json", "plot") and not k.startswith("_")
            }  # fmt: skip
            document = write_json(
                self.options.json, self.benchmark, results, rows=self.rows, options=public,
                elapsed=round(time.monotonic() - self.started, 3),
            )  # fmt: skip
        return document
