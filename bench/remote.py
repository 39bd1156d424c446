"""Bridge vs. raw pyzmq: latency and throughput over tcp loopback, server in its own process.

    python bench/remote.py [--quick] [--json] [--sockets own|shared]

Every figure is the median over repetitions; raw and bridge runs alternate
within each repetition (sequential calls in blocks of 250), so both see the
same machine noise. Floors (all with
msgpack on both ends): REQ/REP round trip, DEALER/ROUTER pipelined echo,
PUSH/PULL one-way.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pykka
import zmq
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import transport  # noqa: E402
from actors import Manager  # noqa: E402
from bench._stats import freeze_startup  # noqa: E402

SMALL: Any = [1, "x"]
LARGE = b"\xab" * 65536
WINDOW = 64
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
    throughput, and a bound reached drops casts (flow control, bench/flood.py).
    """

    MAILBOX_LIMIT = 100_000

    def __init__(self) -> None:
        Manager.__init__(self, host="bench")
        self.count = 0


def serve_bridge(own: bool, *, managed: bool = False) -> None:
    """Serve the sink: on the bridge's shared socket, or (`own`) a Manager on its own socket.

    `managed` serves the Manager on the shared socket too (the fair comparison).
    """
    ref = ManagedSink.start() if own or managed else Sink.start()
    bridge = transport.Bridge("tcp://127.0.0.1:*", own_sockets=own)
    bridge.expose("sink", ref)
    bridge.start()
    freeze_startup()
    print(bridge.endpoint_of("sink"), flush=True)
    try:
        sys.stdin.read()
    finally:
        bridge.stop()
        ref.stop()


def serve_raw() -> None:
    """The floors: one thread per socket, each a blocking loop (the fastest raw server).

    A poller over all four sockets would add its own cost to every floor; blocked
    threads cost nothing, and only one pattern is measured at a time.
    """
    ctx = zmq.Context()
    rep, router, pull, back = (ctx.socket(t) for t in (zmq.REP, zmq.ROUTER, zmq.PULL, zmq.PUSH))
    ports = [s.bind_to_random_port("tcp://127.0.0.1") for s in (rep, router, pull, back)]

    def reqrep() -> None:
        while True:
            rep.send(msgpack.packb(msgpack.unpackb(rep.recv())))

    def dealer_router() -> None:
        while True:
            ident, body = router.recv_multipart()
            router.send_multipart([ident, msgpack.packb(msgpack.unpackb(body))])

    def one_way() -> None:
        count = 0
        while True:
            body = pull.recv()
            if body == b"END":
                back.send(msgpack.packb(count))
                count = 0
            else:
                msgpack.unpackb(body)
                count += 1

    for loop in (reqrep, dealer_router, one_way):
        threading.Thread(target=loop, daemon=True).start()
    print(" ".join(map(str, ports)), flush=True)
    sys.stdin.read()
    os._exit(0)  # the loops block in recv(); nothing to clean up


# -- clients -----------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def raw_reqrep(sock: zmq.Socket[bytes], payload: Any, n: int) -> list[float]:
    lat = []
    for i in range(n):
        t = time.perf_counter()
        sock.send(msgpack.packb([1, 1, i, "sink", "echo", [payload], {}, None, {}]))
        msgpack.unpackb(sock.recv())
        lat.append(time.perf_counter() - t)
    return lat


def raw_pipelined(sock: zmq.Socket[bytes], payload: Any, n: int) -> float:
    t = time.perf_counter()
    sent = 0
    for _ in range(min(WINDOW, n)):
        sock.send(msgpack.packb([1, 1, sent, "sink", "echo", [payload], {}, None, {}]))
        sent += 1
    for _ in range(n):
        msgpack.unpackb(sock.recv())
        if sent < n:
            sock.send(msgpack.packb([1, 1, sent, "sink", "echo", [payload], {}, None, {}]))
            sent += 1
    return n / (time.perf_counter() - t)


def raw_oneway(push: zmq.Socket[bytes], back: zmq.Socket[bytes], payload: Any, n: int) -> float:
    t = time.perf_counter()
    for i in range(n):
        push.send(msgpack.packb([1, 2, 0, "sink", "sink", [payload, i], {}, None, {}]))
    push.send(b"END")
    assert msgpack.unpackb(back.recv()) == n
    return n / (time.perf_counter() - t)


def bridge_seq(proxy: transport.RemoteProxy[Any], payload: Any, n: int) -> list[float]:
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        proxy.echo(payload).get()
        lat.append(time.perf_counter() - t)
    return lat


def bridge_pipelined(proxy: transport.RemoteProxy[Any], payload: Any, n: int) -> float:
    t = time.perf_counter()
    window: collections.deque[transport.RemoteFuture[Any]] = collections.deque()
    sent = 0
    while sent < min(WINDOW, n):
        window.append(proxy.echo(payload))
        sent += 1
    while window:
        window.popleft().get()
        if sent < n:
            window.append(proxy.echo(payload))
            sent += 1
    return n / (time.perf_counter() - t)


def bridge_casts(proxy: transport.RemoteProxy[Any], payload: Any, n: int) -> float:
    t = time.perf_counter()
    for i in range(n):
        proxy.sink.defer(payload, i)
    assert proxy.take_count().get() == n
    return n / (time.perf_counter() - t)


def spawn(kind: str) -> tuple[subprocess.Popen[str], str]:
    """Start a server (``raw``, ``bridge`` or ``own``); return it and its first line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        proc.kill()
        raise RuntimeError(f"{kind} server did not start")
    return proc, line


def run(quick: bool, sockets: str = "own") -> dict[str, dict[str, float]]:
    reps = 3 if quick else 7
    n_seq = 500 if quick else 2000
    n_thru = 2000 if quick else 10000
    n_large = 200 if quick else 1000
    bridge_proc, endpoint = spawn("own" if sockets == "own" else "bridge")
    raw_proc, ports_line = spawn("raw")
    ports = ports_line.split()
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    req, dealer, push, back = (ctx.socket(t) for t in (zmq.REQ, zmq.DEALER, zmq.PUSH, zmq.PULL))
    for sock, port in zip((req, dealer, push, back), ports, strict=True):
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(f"tcp://127.0.0.1:{port}")
    conn = transport.connect(endpoint, timeout=60)
    proxy = conn.proxy("sink")
    samples: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    try:
        # warm-up
        raw_reqrep(req, SMALL, 200)
        bridge_seq(proxy, SMALL, 200)
        for _ in range(reps):
            for label, payload, n in (("small", SMALL, n_seq), ("64KiB", LARGE, n_large)):
                # Interleaved in short blocks, so that both see the same machine noise.
                raw, ours = [], []
                for _ in range(max(1, n // SEQ_BLOCK)):
                    raw += raw_reqrep(req, payload, SEQ_BLOCK + SEQ_WARM)[SEQ_WARM:]
                    ours += bridge_seq(proxy, payload, SEQ_BLOCK + SEQ_WARM)[SEQ_WARM:]
                samples[f"call p50 {label} (us)"].append(
                    (pct(ours, 0.5) * 1e6, pct(raw, 0.5) * 1e6)
                )
                samples[f"call p99 {label} (us)"].append(
                    (pct(ours, 0.99) * 1e6, pct(raw, 0.99) * 1e6)
                )
            for label, payload, n in (("small", SMALL, n_thru), ("64KiB", LARGE, n_large)):
                raw_t = raw_pipelined(dealer, payload, n)
                ours_t = bridge_pipelined(proxy, payload, n)
                samples[f"pipelined calls {label} (msg/s)"].append((ours_t, raw_t))
                raw_c = raw_oneway(push, back, payload, n)
                ours_c = bridge_casts(proxy, payload, n)
                samples[f"casts {label} (msg/s)"].append((ours_c, raw_c))
    finally:
        conn.close(linger=0)
        for sock in (req, dealer, push, back):
            sock.close(linger=0)
        for proc in (bridge_proc, raw_proc):
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()
    results: dict[str, dict[str, float]] = {}
    for key, pairs in samples.items():
        ours_m = statistics.median(p[0] for p in pairs)
        raw_m = statistics.median(p[1] for p in pairs)
        results[key] = {"bridge": ours_m, "raw": raw_m, "ratio": ours_m / raw_m}
    return results


TARGETS = {  # issue 14's targets (were 2.0x, 30 %, 15 %)
    "call p50 small (us)": ("<=", 1.3, "REQ/REP"),
    "call p50 64KiB (us)": ("<=", 1.3, "REQ/REP"),
    "call p99 small (us)": (None, 0.0, "REQ/REP"),
    "call p99 64KiB (us)": (None, 0.0, "REQ/REP"),
    "pipelined calls small (msg/s)": (">=", 0.50, "DEALER/ROUTER"),
    "pipelined calls 64KiB (msg/s)": (">=", 0.50, "DEALER/ROUTER"),
    "casts small (msg/s)": (">=", 0.30, "PUSH/PULL"),
    "casts 64KiB (msg/s)": (">=", 0.30, "PUSH/PULL"),
}


def report(results: dict[str, dict[str, float]]) -> bool:
    table = Table(title="transport bridge vs raw pyzmq (tcp loopback, medians)")
    for col in ("measure", "bridge", "raw floor", "floor", "ratio", "target", "ok"):
        table.add_column(
            col, justify="left" if col in ("measure", "floor") else "right", no_wrap=True
        )
    all_ok = True
    for key, (op, bound, floor) in TARGETS.items():
        r = results[key]
        ok = True
        target = ""
        if op == "<=":
            ok = r["ratio"] <= bound
            target = f"<= {bound:.1f}x"
        elif op == ">=":
            ok = r["ratio"] >= bound
            target = f">= {bound:.0%}"
        all_ok &= ok
        ratio = f"{r['ratio']:.2f}x" if "us" in key else f"{r['ratio']:.0%}"
        table.add_row(
            key, f"{r['bridge']:,.0f}", f"{r['raw']:,.0f}", floor, ratio, target,
            "" if op is None else ("yes" if ok else "NO"),
        )  # fmt: skip
    Console(width=max(100, Console().width)).print(table)
    return all_ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer messages and repetitions")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--sockets", choices=["own", "shared"], default="own",
        help="the manager's own socket (as a node serves it) or the bridge's shared one",
    )  # fmt: skip
    parser.add_argument("--serve", choices=["bridge", "own", "raw"], help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve in ("bridge", "own"):
        serve_bridge(options.serve == "own")
        return
    if options.serve == "raw":
        serve_raw()
        return
    results = run(options.quick, options.sockets)
    if options.json:
        print(json.dumps(results, indent=2))
    else:
        report(results)


if __name__ == "__main__":
    main()
