"""Our bridge vs. other RPC systems and the raw pyzmq floors, each server in its own process.

    .venv/bin/python -m bench.peers [--quick] [--json FILE] [--plot FILE.png] [--only KIND,...]

Every system serves the same service from a separate process on 127.0.0.1:
``add(a, b)``, ``echo(payload)`` and a counting cast ``tally(payload)`` (one-way;
it increments a counter that the client then reads until it shows every cast).
Systems (``--only`` kinds): ``ours`` (`transport.Bridge` serving an
`actors.Manager` subclass), ``floor`` (raw pyzmq with msgpack: REQ/REP,
DEALER/ROUTER with 64 in flight, PUSH/PULL; from `bench._floors`),
``pyro-msgpack`` and ``pyro-serpent`` (Pyro5 with its msgpack serializer and
with its default, serpent), ``zerorpc``, ``ray`` (an actor of a private local
Ray instance) and ``oslo`` (oslo.messaging over a private RabbitMQ node started
from Debian's ``rabbitmq-server``). How each one is served and what "pipelined"
means for it is in its module's docstring in `bench/_peers/`.

Rows (columns in the table, one row per system):

- call p50/p99 small, 64KiB (us): sequential calls, one at a time;
  small is ``add(1, 2)``, 64KiB is ``echo`` of 64 KiB (bytes; oslo: ASCII str).
- pipelined small, 64KiB (calls/s): the same calls with many in flight, by
  each system's idiomatic way (ours: issue N = 500 calls, then get them
  all, round after round).
- casts small, 64KiB (delivered/s): N counting casts (argument ``1`` or the
  64 KiB payload), timed until the server's counter shows all N.

Each client runs in a fresh process (``python -m bench._peers client KIND``),
one system at a time; ``ours`` runs first and last and its samples are pooled.
Every measure runs ``reps`` times, each sized by a calibration run to take about
``budget`` seconds; a cell is the median over repetitions and the ``x`` under it
is how many times better ours is (its latency or rate against the other's: above
1 means ours wins). Targets (checked on those medians): 2x on every row against
zerorpc, Ray and oslo.messaging; against Pyro5 with msgpack 3x on pipelined and
casts and a p50 within 1.6x of Pyro's; ahead of Pyro5 with serpent on every row.
A system that is not installed or cannot start gets a row saying why.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from rich.console import Console

try:
    from bench import _harness as h
except ModuleNotFoundError:  # run as a file: the package is not on the path
    raise SystemExit("run it as: python -m bench.peers") from None
from bench._peers.common import MEASURES, Unavailable
from bench._peers.rabbit import rabbitmq

SYSTEMS: dict[str, tuple[str, str | None]] = {
    "ours": ("ours (bridge)", None),
    "floor": ("raw pyzmq floor", None),
    "pyro-msgpack": ("Pyro5 msgpack", "Pyro5"),
    "pyro-serpent": ("Pyro5 serpent", "Pyro5"),
    "zerorpc": ("zerorpc", "zerorpc"),
    "ray": ("Ray", "ray"),
    "oslo": ("oslo.messaging", "oslo.messaging"),
}
"""Kind -> (label, the distribution it needs)."""

EVERY_ROW = dict.fromkeys(MEASURES, 2.0)
TARGETS: dict[str, tuple[dict[str, float], str]] = {
    "pyro-msgpack": (
        {
            "call p50 small (us)": 1 / 1.6,
            "call p50 64KiB (us)": 1 / 1.6,
            **{m: 3.0 for m in MEASURES if "/s" in m},
        },
        "pipelined and casts >= 3x, p50 within 1.6x",
    ),
    "pyro-serpent": (dict.fromkeys(MEASURES, 1.0), "ahead on every row"),
    "zerorpc": (EVERY_ROW, ">= 2x on every row"),
    "ray": (EVERY_ROW, ">= 2x on every row"),
    "oslo": (EVERY_ROW, ">= 2x on every row"),
}
"""Kind -> (the least "x" per measure, the target in words)."""

SHORT = {
    "call p50 small (us)": "p50 small\nus",
    "call p99 small (us)": "p99 small\nus",
    "call p50 64KiB (us)": "p50 64KiB\nus",
    "call p99 64KiB (us)": "p99 64KiB\nus",
    "pipelined small (calls/s)": "pipelined\nsmall /s",
    "pipelined 64KiB (calls/s)": "pipelined\n64KiB /s",
    "casts small (delivered/s)": "casts\nsmall /s",
    "casts 64KiB (delivered/s)": "casts\n64KiB /s",
}


def advantage(measure: str, ours: float, other: float) -> float:
    """How many times better ours is: a latency's inverse ratio, a rate's ratio."""
    return other / ours if "(us)" in measure else ours / other


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def rabbitmq_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "rabbitmq-server"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        return out.stdout.split("-")[0]
    return ""


# -- running one system ---------------------------------------------------------------


def run_client(kind: str, options: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Measure one system in a fresh process; its samples, or ``{"error": why}``.

    The child runs in its own session, killed with its whole group (by its PID)
    if it overstays `timeout`; its stderr is shown only if it fails.
    """
    done = h.run_module("bench._peers", "client", kind, json.dumps(options), timeout=timeout)
    if done.timed_out:
        result: dict[str, Any] = {"error": f"timed out after {timeout:.0f} s"}
    else:
        result = {"error": f"client exited with status {done.returncode}"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line.removeprefix("RESULT "))
    if "error" in result and not result["error"].startswith("not installed"):
        tail = done.stderr.strip().splitlines()[-8:]
        print(f"[{kind}] {result['error']}\n  " + "\n  ".join(tail), file=sys.stderr)
    return result


def run_system(kind: str, options: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One system's samples or error; for ``oslo``, inside a private RabbitMQ node."""
    dist = SYSTEMS[kind][1]
    if dist and not version(dist):
        return {"error": f"not installed (pip install {dist})"}
    if kind != "oslo":
        return run_client(kind, options, timeout)
    try:
        with rabbitmq() as url:
            return run_client(kind, {**options, "url": url}, timeout)
    except Unavailable as exc:
        return {"error": f"RabbitMQ {exc}"}


def run(kinds: list[str], quick: bool, log: Console) -> dict[str, Any]:
    """Every system in turn (``ours`` first and last, pooled); results by kind."""
    options = {"reps": 3 if quick else 5, "budget": 0.25 if quick else 1.0}
    timeout = 150.0 if quick else 600.0
    order = ["ours", *(k for k in kinds if k != "ours"), "ours"]
    raw: dict[str, dict[str, Any]] = {}
    for kind in order:
        t = time.monotonic()
        log.print(f"[dim]measuring {SYSTEMS[kind][0]}...[/dim]", end=" ")
        result = run_system(kind, options, timeout)
        log.print(f"[dim]{time.monotonic() - t:.0f} s[/dim]")
        if kind in raw and "samples" in raw[kind] and "samples" in result:
            for m in MEASURES:
                raw[kind]["samples"][m] += result["samples"][m]
        elif kind not in raw or "samples" in result:
            raw[kind] = result
    ours = raw["ours"].get("samples")
    systems: dict[str, Any] = {}
    for kind in ["ours", *kinds]:
        if kind in systems:
            continue
        label, dist = SYSTEMS[kind]
        entry: dict[str, Any] = {"label": label, "version": version(dist) if dist else ""}
        if kind == "oslo":
            entry["rabbitmq"] = rabbitmq_version()
        samples = raw[kind].get("samples")
        if samples is None:
            entry["error"] = raw[kind]["error"]
            systems[kind] = entry
            continue
        entry["samples"] = samples
        entry["notes"] = raw[kind].get("notes") or {}
        entry["median"] = {m: statistics.median(samples[m]) for m in MEASURES}
        if ours is not None and kind != "ours":
            ours_m = {m: statistics.median(ours[m]) for m in MEASURES}
            entry["advantage"] = {m: advantage(m, ours_m[m], entry["median"][m]) for m in MEASURES}
            least, _ = TARGETS.get(kind, ({}, ""))
            entry["targets"] = {
                m: {"least": bound, "met": entry["advantage"][m] >= bound}
                for m, bound in least.items()
            }
        systems[kind] = entry
    return {"options": {**options, "quick": quick}, "systems": systems}


# -- the table ------------------------------------------------------------------------


def cell(measure: str, entry: dict[str, Any]) -> str:
    value = entry["median"][measure]
    text = f"{value:,.0f}"
    if "advantage" in entry:
        text += f"\n{entry['advantage'][measure]:.2f}x"
        target = entry.get("targets", {}).get(measure)
        if target is not None:
            text += " ok" if target["met"] else " NO"
    return text


def rows(results: dict[str, Any]) -> list[h.Row]:
    """One row per measure: each measured system's median, the raw floor as the floor."""
    measured = [e for e in results["systems"].values() if "median" in e]
    floor = results["systems"].get("floor", {}).get("label")
    return [
        h.Row(m.removesuffix(")").split(" (")[0], {e["label"]: e["median"][m] for e in measured},
              unit=m.removesuffix(")").split(" (")[1],
              floor=floor if any(e["label"] == floor for e in measured) else None)
        for m in MEASURES
    ]  # fmt: skip


def report(results: dict[str, Any], out: h.Output) -> bool:
    """Print the table and the target verdicts; whether every target was met."""
    opts = results["options"]
    cells = []
    for entry in results["systems"].values():
        name = entry["label"] + (f"\n{entry['version']}" if entry["version"] else "")
        if entry.get("rabbitmq"):
            name += f" / RabbitMQ {entry['rabbitmq']}"
        if entry.get("notes", {}).get("pipelined threads"):
            name += f"\npipelined: {entry['notes']['pipelined threads']} threads"
        if "error" in entry:
            cells.append([f"{name}\n{entry['error']}", *["-"] * len(MEASURES)])
        else:
            cells.append([name, *(cell(m, entry) for m in MEASURES)])
    out.table(
        "ours vs peers (tcp loopback, server in its own process; medians of "
        f"{opts['reps']} reps, ours {2 * opts['reps']})",
        ["system", *(SHORT[m] for m in MEASURES)], cells,
        caption='under each value: "x" = how many times better ours is (>1: ours wins); '
        "ok/NO: its target",
        lines=True,
    )  # fmt: skip
    all_ok = True
    met = total = 0
    for kind, entry in results["systems"].items():
        if kind not in TARGETS:
            continue
        words = TARGETS[kind][1]
        if "targets" not in entry:
            why = entry.get("error") or "ours was not measured"
            out.print(f"{entry['label']}: {words}: not measured ({why})")
            continue
        missed = [
            f"{m} {entry['advantage'][m]:.2f}x < {t['least']:.2f}x"
            for m, t in entry["targets"].items()
            if not t["met"]
        ]
        all_ok &= not missed
        total += len(entry["targets"])
        met += len(entry["targets"]) - len(missed)
        verdict = "PASS" if not missed else "FAIL: " + "; ".join(missed)
        out.print(f"{entry['label']}: {words}: {verdict}")
    out.print(f"targets met: {met} of {total} measured")
    return all_ok


def main() -> None:
    parser = h.parser(__doc__, full=True)
    parser.add_argument("--quick", action="store_true", help="CI size: fewer, shorter runs")
    parser.add_argument(
        "--only", metavar="KIND,...", help=f"measure only these of {','.join(SYSTEMS)}"
    )
    out = h.Output.parse(parser, "bench.peers")
    options = out.options
    kinds = list(SYSTEMS) if not options.only else options.only.split(",")
    unknown = set(kinds) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    log = Console(stderr=True)
    started = time.monotonic()
    results = run(kinds, options.quick, log)
    results["options"]["seconds"] = round(time.monotonic() - started, 1)
    log.print(f"[dim]total {results['options']['seconds']:.0f} s[/dim]")
    report(results, out)
    out.rows.extend(rows(results))
    out.finish(results, title="bench.peers: server in its own process, tcp loopback, medians")


if __name__ == "__main__":
    main()
