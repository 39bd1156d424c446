"""What metrics cost: the remote benchmark against a manager with its probe on and one without.

    python -m bench.metrics [--quick] [--json FILE] [--plot FILE.png]

One server process serves three identical managers on one bridge. In each
round one plays ``on`` (it has a `ManagerProbe`, what a node with
``[metrics]`` gives each manager) and the others ``off`` and ``off2`` (no
probe); the roles move to other managers every round, so that where each
manager's thread happens to run does not favour a role. Each round measures
200 sequential calls, 1,000 pipelined calls and 2,000 casts per role, in an
order rotated and reversed between rounds, so all roles see the same noise.
Figures are medians over rounds; the overhead is the median of each round's
paired ratio; ``off`` is the floor; "A/A noise" is ``off2`` against ``off``,
the resolution of the overhead figure in this run.

Beside each wall-clock figure, the server process's CPU time per message in
the same rounds (``time.process_time()`` before and after each run).

The bridge's traffic counters are on in every role (they always are);
``python -m bench.ab --base <rev>`` measures them against a tree without them.
``BENCH_NOP=1`` gives ``on`` a probe that only runs the handler: the cost of
the hook alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import TYPE_CHECKING, Any

try:
    from bench import _harness as h
except ModuleNotFoundError:  # run as a file: the package is not on the path
    raise SystemExit("run it as: python -m bench.metrics") from None
import transport
from actors._metrics import ManagerProbe
from bench.remote import (
    SEQ_WARM,
    SMALL,
    ManagedSink,
    bridge_casts,
    bridge_pipelined,
    bridge_seq,
)

if TYPE_CHECKING:
    from collections.abc import Callable

MODES = ("on", "off", "off2")  # off2: a second manager without a probe, the A/A noise
MANAGERS = ("m0", "m1", "m2")  # each takes every role in turn


class SinkManager(ManagedSink):
    """The served manager: `bench.remote`'s sink (echo, count casts), with a probe to turn on."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.probe: Any = NopProbe() if os.environ.get("BENCH_NOP") else ManagerProbe()

    def cpu(self) -> float:
        """The server process's CPU seconds so far (all threads)."""
        return time.process_time()

    def measured(self, on: bool) -> None:
        """Turn this manager's probe on or off (from the next message on)."""
        self.mailbox_probe = self.probe if on else None

    def handled(self) -> int:
        """Messages this manager's probe counted: proof that it ran."""
        return int(sum(self.probe.counts.values()))


class NopProbe:
    """A probe that only runs the handler: the cost of the hook itself (BENCH_NOP=1)."""

    counts: dict[str, int] = {"nop": 10**9}

    def run(self, handle: Any, message: Any, reply_to: Any, context: Any) -> Any:
        return handle(message) if context is None else context.run(handle, message)

    def failed(self) -> None:
        pass

    def task_ran(self, name: str, *, failed: bool) -> None:
        pass


def serve() -> None:
    refs = {name: SinkManager.start(host=name) for name in MANAGERS}
    # A throughput run, not a flood test: no mailbox bound is reached.
    h.serve_exposed(refs, expose={"mailbox_limit": 10**6})


def run(quick: bool) -> dict[str, dict[str, float]]:
    rounds = 12 if quick else 60
    n_seq, n_pipe, n_cast = 200, 1000, 2000
    server = h.spawn("bench.metrics", "--serve")
    conn = transport.connect(server.line, timeout=60)
    managers = {name: conn.proxy(name) for name in MANAGERS}
    measures: dict[str, Callable[[transport.RemoteProxy[Any]], float]] = {
        "call p50 small (us)": lambda proxy: (
            h.pct(bridge_seq(proxy, SMALL, n_seq + SEQ_WARM)[SEQ_WARM:], 0.5) * 1e6
        ),
        "pipelined calls small (msg/s)": lambda proxy: bridge_pipelined(proxy, SMALL, n_pipe),
        "casts small (msg/s)": lambda proxy: bridge_casts(proxy, SMALL, n_cast),
    }
    sizes = {"call p50 small (us)": n_seq + SEQ_WARM, "pipelined calls small (msg/s)": n_pipe,
             "casts small (msg/s)": n_cast}  # fmt: skip
    cpu_keys = {key: key.split(" small")[0] + ": server CPU/msg (us)" for key in measures}
    samples: dict[str, dict[str, list[float]]] = {
        key: {mode: [] for mode in MODES} for key in (*measures, *cpu_keys.values())
    }
    clock = managers["m0"]
    try:
        for proxy in managers.values():
            bridge_seq(proxy, SMALL, 500)
        for i in range(rounds):
            # Each round gives the roles to other managers (threads sit differently on the
            # cores), and rotates and reverses the order: all see the same noise and drift.
            names = MANAGERS[i % 3 :] + MANAGERS[: i % 3]
            proxies = {mode: managers[name] for mode, name in zip(MODES, names, strict=True)}
            for mode, proxy in proxies.items():
                proxy.measured(mode == "on").get()
            order = MODES[(i // 3) % 3 :] + MODES[: (i // 3) % 3]
            order = order if i % 2 == 0 else order[::-1]
            for key, measure in measures.items():
                for mode in order:
                    before = clock.cpu().get()
                    samples[key][mode].append(measure(proxies[mode]))
                    used = clock.cpu().get() - before
                    samples[cpu_keys[key]][mode].append(used / sizes[key] * 1e6)
        counted = sum(proxy.handled().get() for proxy in managers.values())
        assert counted >= n_cast * rounds, counted
    finally:
        conn.close(linger=0)
        server.stop()
    results: dict[str, dict[str, float]] = {}
    for key, by_mode in samples.items():
        on, off, off2 = by_mode["on"], by_mode["off"], by_mode["off2"]

        def cost(a: list[float], b: list[float], key: str = key) -> float:
            # Extra latency for times, lost throughput for rates; the median of each
            # round's paired ratio, which cancels the drift between rounds.
            pairs = zip(a, b, strict=True)
            return statistics.median(x / y - 1 if "us)" in key else 1 - x / y for x, y in pairs)

        results[key] = {
            "on": statistics.median(on),
            "off": statistics.median(off),
            "overhead": cost(on, off),
            "noise": cost(off2, off),
            "rounds": len(on),
        }
    return results


def rows(results: dict[str, dict[str, float]]) -> list[h.Row]:
    """On beside off (the floor), each wall figure then its CPU figure; overhead <= 3 %."""
    out = []
    for wall in (key for key in results if "CPU" not in key):
        name = wall.split(" small")[0]
        for key in (wall, *(k for k in results if "CPU" in k and k.startswith(name))):
            r = results[key]
            measure, unit = key.removesuffix(")").rsplit(" (", 1)
            out.append(h.Row(
                measure, {"metrics on": r["on"], "off (floor)": r["off"]}, unit=unit,
                floor="off (floor)", figure=r["overhead"],
                target=None if "CPU" in key else h.Target("<=", 0.03, "+%"),
                note=f"A/A noise {r['noise']:+.1%}",
            ))  # fmt: skip
    return out


def main() -> None:
    parser = h.parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer messages and repetitions")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    out = h.Output.parse(parser, "bench.metrics")
    options = out.options
    if options.serve:
        serve()
        return
    results = run(options.quick)
    out.compare("metrics on vs off: remote benchmark, tcp loopback, medians", rows(results))
    out.finish(results)


if __name__ == "__main__":
    main()
