"""A/B the bridge's server side: this tree against a git revision, in one run.

    python -m bench.ab [--base REV] [--rounds N] [--seconds S]

Run-to-run noise on these machines (±20 % between runs) hides most single
optimisations, so this runs a server from each tree in turn (alternating the
order every round) against one client and reports the medians side by side.
The base tree is a temporary ``git worktree`` of REV (default ``HEAD``: what
your uncommitted change is measured against); the client is always this tree's.

Measures: casts/s (delivery confirmed), sequential call p50, pipelined calls/s
(500 in flight), and the same calls with a 64 KiB payload.

Calibration: two identical trees differed by up to 15 % with ``--rounds 2``;
trust only a change that holds across two runs of ``--rounds 4`` or more.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._stats import freeze_startup, print_table  # noqa: E402

MEASURES = (
    "casts small /s",
    "call p50 small us",
    "pipelined small /s",
    "call p50 64KiB us",
    "pipelined 64KiB /s",
)
PAYLOAD = b"\xab" * 65536


def serve(tree: str) -> None:
    """Serve one manager with `tree`'s ``actors`` and ``transport`` packages."""
    sys.path.insert(0, tree)
    import transport  # noqa: PLC0415
    from actors import Manager  # noqa: PLC0415

    class Sink(Manager):
        received = 0

        def tally(self, value: Any) -> None:
            self.received += 1

        def count(self) -> int:
            return self.received

        def echo(self, value: Any) -> Any:
            return value

    ref = Sink.start(host="ab")
    bridge = transport.Bridge("tcp://127.0.0.1:*")
    bridge.expose("sink", ref)
    bridge.start()
    freeze_startup()
    print(bridge.endpoint, flush=True)
    try:
        sys.stdin.read()
    finally:
        bridge.stop()
        ref.stop()


def _until(seconds: float, step: Any) -> float:
    """Run `step()` (which returns how many it did) for `seconds`; return the rate."""
    start = time.perf_counter()
    done = 0
    while time.perf_counter() - start < seconds:
        done += step()
    return done / (time.perf_counter() - start)


def _p50_us(call: Any, n: int) -> float:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples[n // 10 :]) * 1e6


def measure(tree: Path, seconds: float) -> dict[str, float]:
    """Start a server from `tree`, measure it with this tree's client, stop it."""
    import transport  # noqa: PLC0415

    proc = subprocess.Popen(
        [sys.executable, __file__, "serve", str(tree)],
        cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    conn = None
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()
        if not endpoint:
            msg = f"the server from {tree} did not start"
            raise RuntimeError(msg)
        conn = transport.connect(endpoint, timeout=30)
        sink = conn.proxy("sink", check=False)  # unchecked: a base revision may predate describe
        sink.count().get(timeout=30)

        def casts() -> int:
            for _ in range(1000):
                sink.tally.defer(1)
            sink.count().get(timeout=30)  # same connection: every cast before it has run
            return 1000

        def pipelined(payload: Any, window: int) -> Any:
            def step() -> int:
                futures = [sink.echo(payload) for _ in range(window)]
                for future in futures:
                    future.get(timeout=30)
                return window

            return step

        return {
            "casts small /s": _until(seconds, casts),
            "call p50 small us": _p50_us(lambda: sink.count().get(timeout=30), 1500),
            "pipelined small /s": _until(seconds, pipelined(1, 500)),
            "call p50 64KiB us": _p50_us(lambda: sink.echo(PAYLOAD).get(timeout=30), 800),
            "pipelined 64KiB /s": _until(seconds, pipelined(PAYLOAD, 200)),
        }
    finally:
        if conn is not None:
            conn.close()
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def main() -> None:
    """Parse the arguments; serve, or run the A/B."""
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="the git revision to compare against")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per tree")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each rate measure")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"base": [], "this tree": []}
    with tempfile.TemporaryDirectory(prefix="actors-ab-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(base), args.base],
            cwd=ROOT, check=True,
        )  # fmt: skip
        try:
            trees = {"base": base, "this tree": ROOT}
            for round_ in range(args.rounds):
                order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
                for name in order:
                    results[name].append(measure(trees[name], args.seconds))
                    print(f"round {round_ + 1}/{args.rounds}: {name} measured", flush=True)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base)],
                cwd=ROOT, check=False,
            )  # fmt: skip
    rows = []
    for key in MEASURES:
        before = statistics.median(r[key] for r in results["base"])
        after = statistics.median(r[key] for r in results["this tree"])
        better = after / before if key.endswith("/s") else before / after
        rows.append([key, f"{before:,.0f}", f"{after:,.0f}", f"{better:.2f}x"])
    print_table(
        f"A/B of the server side, medians of {args.rounds} alternating rounds (base: {args.base})",
        ["measure", "base", "this tree", "this tree is"],
        rows,
    )


if __name__ == "__main__":
    main()
