"""A cast flood at one manager: memory, refusals, and a second client's latency, before and after.

    python bench/flood.py [--seconds 10] [--repeat 1] [--before REV] [--json]

One node-like server process serves two managers: ``flooded`` (each cast
takes 1 ms: ``time.sleep(0.001)``) and ``other`` (``ping()``). A separate
process floods ``flooded`` with casts through the reference client for
`--seconds`; meanwhile this process calls ``other.ping()`` back to back and
samples the server's RSS from /proc every 0.25 s.

Each repetition runs two servers, one after the other, with the same client
code: *before* (the bridge of git revision `--before`, default ``e2dd6f5``,
the commit before flow control; or, with ``--before unbounded``, this tree
with the bound set to 10**9) and *after* (this tree, default bounds). Printed
per run: casts/s offered and accepted, the server's RSS growth, the second
client's p99 unloaded (measured on the same server just before the flood) and
under the flood, and whether every accepted cast ran (after: the server waits
for the flooded mailbox to drain; before, draining 100,000s of 1 ms casts
would take minutes, so the backlog still queued is reported instead).

Targets (issue 13): RSS growth under a 10 s flood < 50 MiB; p99 under flood
< 10x unloaded p99; no accepted cast lost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_TREE = os.environ.get("FLOOD_TREE")  # the server of another revision: its tree first
for _path in (str(ROOT), _TREE):
    if _path:
        if _path in sys.path:
            sys.path.remove(_path)
        sys.path.insert(0, _path)

import zmq  # noqa: E402

import transport  # noqa: E402
from actors import Manager  # noqa: E402
from bench._stats import freeze_startup, print_table  # noqa: E402

DEFAULT_BEFORE = "e2dd6f5"
PROCESSED = [0]  # casts the flooded manager ran (read by Control from another thread)


# -- the server (its own process) ------------------------------------------------------


class Flooded(Manager):
    """Each cast takes 1 ms (sleeping: the GIL is free meanwhile, as in real I/O work)."""

    def work(self, seq: int) -> None:
        time.sleep(0.001)
        PROCESSED[0] += 1


class Other(Manager):
    def ping(self) -> str:
        return "pong"


class Control(Manager):
    def __init__(self, bridge: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bridge = bridge

    def stats(self) -> dict[str, Any]:
        counts = self.bridge.stats() if hasattr(self.bridge, "stats") else {}
        return {"processed": PROCESSED[0], "bridge": counts, "new": hasattr(self.bridge, "stats")}


def serve(unbounded: bool) -> None:
    kwargs: dict[str, Any] = {}
    if unbounded:
        kwargs["mailbox_limit"] = 10**9
    bridge = transport.Bridge("tcp://127.0.0.1:*", **kwargs)
    bridge.expose("flooded", Flooded.start(host="flood"))
    bridge.expose("other", Other.start(host="flood"))
    bridge.expose("control", Control.start(bridge=bridge, host="flood"))
    bridge.start()
    freeze_startup()
    print(bridge.endpoint, flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
    bridge.stop(timeout=5)
    os._exit(0)  # the flooded mailbox may hold minutes of work: do not drain it


# -- the flooding client (its own process) ---------------------------------------------


def flood(endpoint: str, seconds: float) -> None:
    sent = 0
    conn = transport.connect(endpoint, timeout=30)
    work = conn.proxy("flooded", check=False).work  # unchecked: the "before" bridge has no describe
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(100):
            work.defer(sent)
            sent += 1
    print(json.dumps({"offered": sent}), flush=True)
    conn.close(linger=60)  # deliver every cast handed over: what the bridge does with them counts
    zmq.Context.instance().term()  # waits for that delivery


# -- the benchmark ----------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def pings(proxy: Any, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        proxy.ping().get(timeout=30)
        out.append(time.perf_counter() - start)


def spawn_server(tree: str | None, *, unbounded: bool) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ)
    if tree is not None:
        env["FLOOD_TREE"] = tree
        env["PYTHONPATH"] = tree
    args = [sys.executable, str(Path(__file__)), "--serve"] + (["--unbounded"] if unbounded else [])
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def stop_server(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def one_run(label: str, tree: str | None, seconds: float, *, unbounded: bool) -> dict[str, Any]:
    proc, endpoint = spawn_server(tree, unbounded=unbounded)
    try:
        with transport.connect(endpoint, timeout=30) as conn:
            other = conn.proxy("other", check=False)
            for _ in range(200):  # warm up
                other.ping().get(timeout=10)
            unloaded: list[float] = []
            stop = threading.Event()
            worker = threading.Thread(target=pings, args=(other, stop, unloaded))
            worker.start()
            stop.wait(3.0)
            stop.set()
            worker.join()
            rss_start = rss_mib(proc.pid)
            flooder = subprocess.Popen(
                [sys.executable, str(Path(__file__)), "--flood", endpoint, str(seconds)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            loaded: list[float] = []
            stop = threading.Event()
            worker = threading.Thread(target=pings, args=(other, stop, loaded))
            worker.start()
            timeline = []
            started = time.monotonic()
            assert flooder.stdout is not None
            lines: list[str] = []  # "offered", printed when the flood's time is up
            reader = threading.Thread(target=lambda: lines.append(flooder.stdout.readline()))  # type: ignore[union-attr]
            reader.start()
            while flooder.poll() is None:  # then it waits until the bridge read every cast
                timeline.append((time.monotonic() - started, rss_mib(proc.pid)))
                stop.wait(0.25)
            reader.join()
            line = lines[0]
            stop.set()
            worker.join()
            timeline.append((time.monotonic() - started, rss_mib(proc.pid)))
            offered = json.loads(line)["offered"]
            control = conn.proxy("control", check=False)
            stats = control.stats().get(timeout=30)
            if stats["new"]:  # the bridge counts what it accepted; wait until it ran
                deadline = time.monotonic() + 60
                while True:  # the last casts may still be in the socket buffers
                    accepted = stats["bridge"]["accepted.flooded"]
                    refused = stats["bridge"].get("overloaded_cast", 0)
                    if accepted + refused >= offered or time.monotonic() > deadline:
                        break
                    stop.wait(0.1)
                    stats = control.stats().get(timeout=30)
                assert accepted + refused == offered, (accepted, refused, offered)
                while stats["processed"] < accepted and time.monotonic() < deadline:
                    stop.wait(0.2)
                    stats = control.stats().get(timeout=30)
            else:  # everything is accepted; running it all would take minutes
                accepted = offered
            drained = stats["processed"] == accepted
            rss_peak = max(rss for _, rss in timeline)
            return {
                "label": label,
                "flood_wall_s": timeline[-1][0],
                "seconds": seconds,
                "offered_per_s": offered / seconds,
                "accepted_per_s": accepted / seconds,
                "processed": stats["processed"],
                "accepted": accepted,
                "still_queued": accepted - stats["processed"],
                "rss_start_mib": rss_start,
                "rss_growth_mib": rss_peak - rss_start,
                "rss_end_growth_mib": timeline[-1][1] - rss_start,
                "timeline": [(round(t, 2), round(r, 1)) for t, r in timeline],
                "p99_unloaded_ms": p99(unloaded) * 1000,
                "p99_flood_ms": p99(loaded) * 1000,
                "p50_flood_ms": statistics.median(loaded) * 1000,
                "max_flood_ms": max(loaded) * 1000,
                "pings_under_flood": len(loaded),
                "lost_accepted": 0 if drained else None,
            }
    finally:
        stop_server(proc)


def extract(rev: str) -> tempfile.TemporaryDirectory[str]:
    tmp = tempfile.TemporaryDirectory(prefix="flood-before-")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "actors", "transport"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(["tar", "-x", "-C", tmp.name], input=archive.stdout, check=True)
    return tmp


def medians(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per label: the median of each figure over its repetitions."""
    out = []
    for label in dict.fromkeys(r["label"] for r in runs):
        mine = [r for r in runs if r["label"] == label]
        row: dict[str, Any] = {"label": f"{label}, median of {len(mine)}", "timeline": []}
        for key, value in mine[0].items():
            if isinstance(value, int | float) and key != "lost_accepted":
                row[key] = statistics.median(r[key] for r in mine)
        lost = [r["lost_accepted"] for r in mine]
        row["lost_accepted"] = 0 if all(x == 0 for x in lost) else None
        row["ratio"] = statistics.median(r["p99_flood_ms"] / r["p99_unloaded_ms"] for r in mine)
        out.append(row)
    return out


def report(runs: list[dict[str, Any]]) -> None:
    rows = []
    for r in [*runs, *(medians(runs) if len(runs) > 2 else [])]:
        ratio = r.get("ratio", r["p99_flood_ms"] / r["p99_unloaded_ms"])
        rows.append(
            [
                r["label"],
                f"{r['offered_per_s']:,.0f}",
                f"{r['accepted_per_s']:,.0f}",
                f"{r['rss_growth_mib']:.1f}",
                f"{r['p99_unloaded_ms']:.2f}",
                f"{r['p99_flood_ms']:.2f}",
                f"{ratio:.1f}x",
                f"{r['max_flood_ms']:.1f}",
                "0" if r["lost_accepted"] == 0 else f"{r['still_queued']:,} queued",
            ]
        )
    print_table(
        f"cast flood at a 1 ms/cast manager ({runs[0]['seconds']:.0f} s); "
        "a second client pings another manager",
        ["run", "casts/s offered", "accepted", "RSS growth MiB", "p99 unloaded ms",
         "p99 flood ms", "ratio", "max ms", "accepted lost"],
        rows,
    )  # fmt: skip
    for r in runs:
        points = ", ".join(f"{t:.0f}s {rss:.0f}" for t, rss in r["timeline"][::8])
        print(f"{r['label']} RSS MiB over time: {points}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--before", default=DEFAULT_BEFORE,
                        help="git revision of the 'before' server, or 'unbounded'")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--unbounded", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--flood", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve(options.unbounded)
        return
    if options.flood:
        flood(options.flood[0], float(options.flood[1]))
        return
    runs = []
    tmp = None if options.before == "unbounded" else extract(options.before)
    try:
        for _ in range(options.repeat):
            if tmp is None:
                runs.append(one_run("before (unbounded)", None, options.seconds, unbounded=True))
            else:
                label = f"before ({options.before})"
                runs.append(one_run(label, tmp.name, options.seconds, unbounded=False))
            runs.append(one_run("after", None, options.seconds, unbounded=False))
    finally:
        if tmp is not None:
            tmp.cleanup()
    if options.json:
        print(json.dumps(runs, indent=1))
    report(runs)
    after = [r for r in runs if r["label"] == "after"]
    rss_ok = all(r["rss_growth_mib"] < 50 for r in after)
    lost_ok = all(r["lost_accepted"] == 0 for r in after)
    ratio = statistics.median(r["p99_flood_ms"] / r["p99_unloaded_ms"] for r in after)
    print(
        f"targets (after): RSS growth < 50 MiB in every run: {'met' if rss_ok else 'NOT met'}; "
        f"no accepted cast lost: {'met' if lost_ok else 'NOT met'}; "
        f"median p99 ratio {ratio:.1f}x < 10x: {'met' if ratio < 10 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
