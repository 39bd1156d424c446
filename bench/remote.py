"""Bridge vs. raw pyzmq: latency and throughput over tcp loopback, server in its own process.

    python -m bench.remote [--quick] [--sockets own|shared] [--json FILE] [--plot FILE.png]

Every figure is the median over repetitions; raw and bridge runs alternate
within each repetition (sequential calls in blocks of 250), so both see the
same machine noise. Floors (all with msgpack on both ends, `bench._floors`):
REQ/REP round trip, DEALER/ROUTER pipelined echo, PUSH/PULL one-way.
"""

from __future__ import annotations

import argparse
import collections
import functools
import queue
import statistics
from typing import Any

import pykka

try:
    from bench import _floors
    from bench import _harness as h
except ModuleNotFoundError:  # run as a file: the package is not on the path
    raise SystemExit("run it as: python -m bench.remote") from None
import transport
from actors import Manager

SMALL, LARGE, WINDOW = _floors.SMALL, _floors.LARGE, _floors.WINDOW
SEQ_BLOCK = 250
SEQ_WARM = 10
"""Sequential calls are timed in alternating blocks of `SEQ_BLOCK` (raw, then ours),
each after `SEQ_WARM` untimed calls that bring its server back into the caches."""


# -- servers (run in a child process) ---------------------------------------------


class Sink(pykka.ThreadingActor):
    """The served actor; a SimpleQueue inbox, as actors.Manager uses."""

    @staticmethod
    def _create_actor_inbox() -> Any:
        return queue.SimpleQueue()

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def echo(self, value: Any) -> Any:
        return value

    def sink(self, value: Any, seq: int) -> None:
        self.count += 1

    def take_count(self) -> int:
        count, self.count = self.count, 0
        return count


class ManagedSink(Manager, Sink):
    """`Sink` as a node serves it: an `actors.Manager`, so it can own its socket.

    Its mailbox bound is above the casts a run sends at once: a run measures
    throughput, and a bound reached drops casts (flow control, bench.flood).
    """

    MAILBOX_LIMIT = 100_000

    def __init__(self, **kwargs: Any) -> None:
        Manager.__init__(self, **{"host": "bench", **kwargs})
        self.count = 0


def serve_bridge(own: bool) -> None:
    """Serve the sink: on the bridge's shared socket, or (`own`) a Manager on its own socket."""
    ref = ManagedSink.start() if own else Sink.start()
    h.serve_exposed({"sink": ref}, own_sockets=own, line_of="sink")


# -- our loops (the floors' are `bench._floors.Floors`) -----------------------------------


def bridge_call(proxy: transport.RemoteProxy[Any], payload: Any) -> Any:
    """One call of ``echo(payload)``."""
    return proxy.echo(payload).get()


def bridge_seq(proxy: transport.RemoteProxy[Any], payload: Any, n: int) -> list[float]:
    """`n` sequential calls of ``echo(payload)``; seconds each."""
    return h.timed_calls(functools.partial(bridge_call, proxy, payload), n)


def bridge_pipelined(proxy: transport.RemoteProxy[Any], payload: Any, n: int) -> float:
    """`n` calls of ``echo(payload)``, `WINDOW` in flight; per second."""
    return h.pipelined(lambda: proxy.echo(payload), transport.RemoteFuture.get, n, WINDOW)


def bridge_casts(proxy: transport.RemoteProxy[Any], payload: Any, n: int) -> float:
    """`n` casts, until the sink's count shows them all; per second."""

    def run() -> None:
        for i in range(n):
            proxy.sink.defer(payload, i)
        count = proxy.take_count().get()
        assert count == n, (count, n)

    return h.rate_of(n, run)


def run(quick: bool, sockets: str = "own") -> dict[str, dict[str, float]]:
    """Every measure: the median of ours, of raw, and their ratio."""
    reps = 3 if quick else 7
    n_seq = 500 if quick else 2000
    n_thru = 2000 if quick else 10000
    n_large = 200 if quick else 1000
    kind = "own" if sockets == "own" else "bridge"
    samples: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    with (
        h.spawn("bench.remote", "--serve", kind) as bridge,
        h.spawn("bench.remote", "--serve", "raw") as raw_server,
        transport.connect(bridge.line, timeout=60) as conn,
    ):
        floors = _floors.Floors(raw_server.line)
        proxy = conn.proxy("sink")
        try:
            floors.seq(SMALL, 200)  # warm-up
            bridge_seq(proxy, SMALL, 200)
            for _ in range(reps):
                for label, payload, n in (("small", SMALL, n_seq), ("64KiB", LARGE, n_large)):
                    lat = h.interleaved(
                        {"raw": functools.partial(floors.call, payload),
                         "ours": functools.partial(bridge_call, proxy, payload)},
                        n, SEQ_BLOCK, SEQ_WARM,
                    )  # fmt: skip
                    for q, name in ((0.5, "p50"), (0.99, "p99")):
                        samples[f"call {name} {label} (us)"].append(
                            (h.pct(lat["ours"], q) * 1e6, h.pct(lat["raw"], q) * 1e6)
                        )
                for label, payload, n in (("small", SMALL, n_thru), ("64KiB", LARGE, n_large)):
                    raw_t = floors.pipelined(payload, n)
                    ours_t = bridge_pipelined(proxy, payload, n)
                    samples[f"pipelined calls {label} (msg/s)"].append((ours_t, raw_t))
                    raw_c = floors.oneway(payload, n)
                    ours_c = bridge_casts(proxy, payload, n)
                    samples[f"casts {label} (msg/s)"].append((ours_c, raw_c))
        finally:
            floors.close()
            conn.close(linger=0)
    results: dict[str, dict[str, float]] = {}
    for key, pairs in samples.items():
        ours_m = statistics.median(p[0] for p in pairs)
        raw_m = statistics.median(p[1] for p in pairs)
        results[key] = {"bridge": ours_m, "raw": raw_m, "ratio": ours_m / raw_m}
    return results


TARGETS: dict[str, tuple[h.Target | None, str]] = {  # issue 14's (were 2.0x, 30 %, 15 %)
    "call p50 small (us)": (h.Target("<=", 1.3), "REQ/REP"),
    "call p50 64KiB (us)": (h.Target("<=", 1.3), "REQ/REP"),
    "call p99 small (us)": (None, "REQ/REP"),
    "call p99 64KiB (us)": (None, "REQ/REP"),
    "pipelined calls small (msg/s)": (h.Target(">=", 0.50, "%"), "DEALER/ROUTER"),
    "pipelined calls 64KiB (msg/s)": (h.Target(">=", 0.50, "%"), "DEALER/ROUTER"),
    "casts small (msg/s)": (h.Target(">=", 0.30, "%"), "PUSH/PULL"),
    "casts 64KiB (msg/s)": (h.Target(">=", 0.30, "%"), "PUSH/PULL"),
}
"""Measure -> (its target on ours/raw, the floor's pattern)."""


def rows(results: dict[str, dict[str, float]]) -> list[h.Row]:
    """The results as rows: the bridge beside the raw floor, each with its target."""
    out = []
    for key, (target, floor) in TARGETS.items():
        measure, unit = key.removesuffix(")").split(" (")
        r = results[key]
        out.append(h.Row(
            f"{measure} [{floor}]", {"bridge": r["bridge"], "raw": r["raw"]}, unit=unit,
            floor="raw", target=target,
        ))  # fmt: skip
    return out


def main() -> None:
    parser = h.parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer messages and repetitions")
    parser.add_argument(
        "--sockets", choices=["own", "shared"], default="own",
        help="the manager's own socket (as a node serves it) or the bridge's shared one",
    )  # fmt: skip
    parser.add_argument("--serve", choices=["bridge", "own", "raw"], help=argparse.SUPPRESS)
    out = h.Output.parse(parser, "bench.remote")
    options = out.options
    if options.serve == "raw":
        _floors.serve()
        return
    if options.serve:
        serve_bridge(options.serve == "own")
        return
    results = run(options.quick, options.sockets)
    out.compare(
        f"transport bridge ({options.sockets} socket) vs raw pyzmq (tcp loopback, medians)",
        rows(results),
    )
    out.finish(results)


if __name__ == "__main__":
    main()
