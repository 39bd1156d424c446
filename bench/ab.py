"""A/B the bridge's server side: this tree against a git revision, in one run.

    python -m bench.ab [--base REV] [--rounds N] [--seconds S] [--json FILE] [--plot FILE.png]

Run-to-run noise on these machines (±20 % between runs) hides most single
optimisations, so this runs a server from each tree in turn (alternating the
order every round) against one client and reports the medians side by side.
The base server runs REV's ``actors`` and ``transport`` (``git archive`` into a
temporary directory; default ``HEAD``: what your uncommitted change is measured
against); the client is always this tree's.

Measures: casts/s (delivery confirmed), sequential call p50, pipelined calls/s
(500 in flight), and the same calls with a 64 KiB payload.

Calibration: two identical trees differed by up to 15 % with ``--rounds 2``;
trust only a change that holds across two runs of ``--rounds 4`` or more.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

try:
    from bench import _harness as h
except ModuleNotFoundError:  # run as a file: the package is not on the path
    raise SystemExit("run it as: python -m bench.ab") from None

MEASURES = (
    "casts small /s",
    "call p50 small us",
    "pipelined small /s",
    "call p50 64KiB us",
    "pipelined 64KiB /s",
)
PAYLOAD = b"\xab" * 65536


def serve() -> None:
    """Serve one manager with the ``actors`` and ``transport`` first on the path."""
    from actors import Manager  # noqa: PLC0415

    class Sink(Manager):
        received = 0

        def tally(self, value: Any) -> None:
            self.received += 1

        def count(self) -> int:
            return self.received

        def echo(self, value: Any) -> Any:
            return value

    h.serve_exposed({"sink": Sink.start(host="ab")})


def _p50_us(call: Any, n: int) -> float:
    return statistics.median(h.timed_calls(call, n)[n // 10 :]) * 1e6


def measure(tree: Any, seconds: float) -> dict[str, float]:
    """Start a server on `tree`'s runtime (None: this tree's), measure it, stop it."""
    import transport  # noqa: PLC0415

    with (
        h.spawn("bench.ab", "--serve", tree=tree) as server,
        transport.connect(server.line, timeout=30) as conn,
    ):
        sink = conn.proxy("sink", check=False)  # unchecked: a base revision may predate describe
        sink.count().get(timeout=30)

        def casts() -> int:
            for _ in range(1000):
                sink.tally.defer(1)
            sink.count().get(timeout=30)  # same connection: every cast before it has run
            return 1000

        def pipelined(payload: Any, window: int) -> Any:
            def step() -> int:  # one round: `window` calls issued, then all their replies
                h.in_rounds(lambda: sink.echo(payload), lambda f: f.get(timeout=30), window, window)
                return window

            return step

        return {
            "casts small /s": h.rate(seconds, casts),
            "call p50 small us": _p50_us(lambda: sink.count().get(timeout=30), 1500),
            "pipelined small /s": h.rate(seconds, pipelined(1, 500)),
            "call p50 64KiB us": _p50_us(lambda: sink.echo(PAYLOAD).get(timeout=30), 800),
            "pipelined 64KiB /s": h.rate(seconds, pipelined(PAYLOAD, 200)),
        }


def main() -> None:
    """Parse the arguments; serve, or run the A/B."""
    parser = h.parser(__doc__)
    parser.add_argument("--base", default="HEAD", help="the git revision to compare against")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per tree")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each rate measure")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    out = h.Output.parse(parser, "bench.ab")
    args = out.options
    if args.serve:
        serve()
        return
    results: dict[str, list[dict[str, float]]] = {"base": [], "this tree": []}
    with h.revision_tree(args.base) as base:
        trees = {"base": base, "this tree": None}
        for round_ in range(args.rounds):
            order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for name in order:
                results[name].append(measure(trees[name], args.seconds))
                out.print(f"round {round_ + 1}/{args.rounds}: {name} measured")
    rows = []
    for key in MEASURES:
        before = statistics.median(r[key] for r in results["base"])
        after = statistics.median(r[key] for r in results["this tree"])
        measure_name, unit = key.rsplit(" ", 1)
        rows.append(h.Row(measure_name, {"this tree": after, "base": before}, unit=unit,
                          floor="base"))  # fmt: skip
    out.compare(
        f"A/B of the server side, medians of {args.rounds} alternating rounds (base: {args.base})",
        rows,
    )
    out.finish(results)


if __name__ == "__main__":
    main()
