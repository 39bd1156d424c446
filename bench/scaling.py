"""Scaling curves of the bridge and the runtime: latency and throughput as the work grows.

    python -m bench.scaling [--quick] [--json FILE] [--plot FILE.png] [--only CURVE ...]

CURVE is connections, actors, payload, fanout or memory.

Servers run in child processes (``python -m bench._scaling_server``) on tcp loopback;
the client is this process. Every figure is a median over repetitions, and the
points of a curve are measured in turn within each repetition, so machine noise
(e.g. another benchmark) hits all points alike. ``--quick`` takes about a minute.

1. connections: 1..64 client connections, each driven by its own thread in this
   process, make sequential calls to one manager for a fixed time. Aggregate
   calls/s, per-call p50/p99, and each side's CPU (1.0 = one core). Threads, not
   processes: on 2 cores, more client processes would only take CPU from the
   server; the CPU columns show which side runs out first.
2. actors: 1..1,000 managers exposed on one bridge (one server process per
   size); calls go to random managers. Sequential p50 and pipelined calls/s
   (64 in flight, one client thread), plus pipelined calls all to one manager
   of the N. Flat means an idle actor costs nothing per call.
3. payload: echo of 64 B..1 MiB bytes; sequential p50 and MB/s (10^6 payload
   bytes per second, one way; each call carries it both ways), beside the raw
   pyzmq REQ/REP floor with msgpack (``bench.remote``'s raw server). The floor's
   server runs with glibc's malloc thresholds pinned (``PINNED_MALLOC``): by
   default its main thread returns each freed MiB to the kernel and faults it
   back in on the next call, which is no floor (that server's p50 is shown too).
4. fan-out: 1..16 server processes, one manager each, one warm connection each.
   *cast reaches all*: from the start of ``transport.fanout_cast`` until the last
   manager ran it (each notes CLOCK_MONOTONIC, which is system-wide on Linux);
   *cast + confirm*: until a call sent after the cast to every node came back;
   *fan-out call*: send a call to every node, gather every reply.
5. memory: a fresh server process starts 100, 500, then 1,000 idle managers (each
   exposed on its bridge); RSS from /proc/<pid>/statm gives KiB per manager
   (target < 100), and a timer pass over them on a manual clock with none due
   (target < 20 ms for 1,000), beside a pass with all due.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import statistics
import sys
import threading
import time
from typing import Any

import msgpack  # type: ignore[import-untyped]
import zmq

try:
    from bench import _floors, remote
    from bench import _harness as h
except ModuleNotFoundError:  # run as a file: the package is not on the path
    raise SystemExit("run it as: python -m bench.scaling") from None
import transport

SERVER = ["bench._scaling_server"]
RAW_SERVER = ["bench.remote", "--serve", "raw"]
CONNECTIONS = [1, 2, 4, 8, 16, 32, 64]
ACTORS = [1, 10, 100, 1000]
PAYLOADS = [64, 1024, 16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024]
NODES = [1, 2, 4, 8, 16]
MANAGERS = [100, 500, 1000]
CURVES = ["connections", "actors", "payload", "fanout", "memory"]
CALL_TIMEOUT = 30.0
# glibc gives big freed blocks back to the kernel and faults them in again on
# the next call; the raw floor's server keeps them (see the docstring).
PINNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}

Row = dict[str, Any]


# -- child processes -------------------------------------------------------------------


def connect(stack: contextlib.ExitStack, endpoint: str) -> transport.Connection:
    conn = transport.connect(endpoint, timeout=CALL_TIMEOUT)
    stack.callback(conn.close, linger=0)
    return conn


def gather(futures: list[transport.RemoteFuture[Any]]) -> list[Any]:
    return [future.get(timeout=CALL_TIMEOUT) for future in futures]


def med(rows: list[Row], key: str) -> float:
    return float(statistics.median(row[key] for row in rows))


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- 1. client connections ----------------------------------------------------------------


def closed_loop(
    proxies: list[transport.RemoteProxy[Any]], duration: float, server: h.Server
) -> Row:
    """Each proxy's connection driven by its own thread for `duration` s: sequential calls."""
    latencies: list[list[float]] = [[] for _ in proxies]
    ends = [0.0] * len(proxies)
    window = {"start": 0.0, "deadline": 0.0}

    def release() -> None:
        window["start"] = time.perf_counter()
        window["deadline"] = window["start"] + duration

    barrier = threading.Barrier(len(proxies), action=release)

    def drive(i: int) -> None:
        echo = proxies[i].echo
        lat = latencies[i]
        barrier.wait(30)
        deadline = window["deadline"]
        while (t := time.perf_counter()) < deadline:
            echo(i).get(timeout=CALL_TIMEOUT)
            lat.append(time.perf_counter() - t)
        ends[i] = time.perf_counter()

    threads = [threading.Thread(target=drive, args=(i,)) for i in range(len(proxies))]
    cpu = (time.process_time(), server.cpu_seconds())
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 60)
    assert not any(thread.is_alive() for thread in threads), "a client thread hung"
    wall = max(ends) - window["start"]
    merged = [x for lat in latencies for x in lat]
    return {
        "calls_per_s": len(merged) / wall,
        "client_cpu": (time.process_time() - cpu[0]) / wall,
        "server_cpu": (server.cpu_seconds() - cpu[1]) / wall,
        "p50_us": h.pct(merged, 0.5) * 1e6,
        "p99_us": h.pct(merged, 0.99) * 1e6,
    }


def curve_connections(quick: bool) -> list[Row]:
    reps, duration = (3, 0.4) if quick else (5, 1.0)
    samples: dict[int, list[Row]] = collections.defaultdict(list)
    with contextlib.ExitStack() as stack:
        (server,) = stack.enter_context(h.servers([*SERVER, "managers", "1"]))
        conns = [connect(stack, server.line) for _ in range(max(CONNECTIONS))]
        proxies = [conn.proxy("m0") for conn in conns]
        gather([proxy.echo(0) for proxy in proxies])  # every connection up
        closed_loop(proxies[:1], duration / 2, server)  # warm-up
        for rep in range(reps):
            progress(f"  connections: repetition {rep + 1}/{reps}")
            for n in CONNECTIONS:
                samples[n].append(closed_loop(proxies[:n], duration, server))
    return [{"connections": n, **{k: med(rows, k) for k in rows[0]}} for n, rows in samples.items()]


# -- 2. actors per node ---------------------------------------------------------------------


def seq_random(proxies: list[transport.RemoteProxy[Any]], order: list[int]) -> list[float]:
    targets = iter(order)

    def call() -> None:
        i = next(targets)
        proxies[i].echo(i).get(timeout=CALL_TIMEOUT)

    return h.timed_calls(call, len(order))


def pipelined_random(proxies: list[transport.RemoteProxy[Any]], order: list[int]) -> float:
    """Calls/s with `remote.WINDOW` calls in flight, each to the actor `order` names."""
    targets = iter(order)

    def issue() -> Any:
        i = next(targets)
        return proxies[i].echo(i)

    return h.pipelined(issue, lambda f: f.get(timeout=CALL_TIMEOUT), len(order), remote.WINDOW)


def curve_actors(quick: bool) -> list[Row]:
    reps, n_seq, n_pipe = (3, 400, 2000) if quick else (5, 2000, 10000)
    rng = random.Random(6)
    samples: dict[int, list[Row]] = collections.defaultdict(list)
    with contextlib.ExitStack() as stack:
        servers = stack.enter_context(h.servers(*([*SERVER, "managers", str(n)] for n in ACTORS)))
        proxies = {}
        for n, server in zip(ACTORS, servers, strict=True):
            conn = connect(stack, server.line)
            proxies[n] = [conn.proxy(f"m{i}") for i in range(n)]
            gather([proxy.echo(0) for proxy in proxies[n]])  # every actor once
            seq_random(proxies[n], [0] * 200)  # warm-up
        for rep in range(reps):
            progress(f"  actors: repetition {rep + 1}/{reps}")
            for n in ACTORS:
                lat = seq_random(proxies[n], [rng.randrange(n) for _ in range(n_seq)])
                rate = pipelined_random(proxies[n], [rng.randrange(n) for _ in range(n_pipe)])
                one = pipelined_random(proxies[n], [0] * n_pipe)
                samples[n].append({
                    "p50_us": h.pct(lat, 0.5) * 1e6,
                    "calls_per_s": rate,
                    "one_actor_calls_per_s": one,
                })  # fmt: skip
    rows = [{"actors": n, **{k: med(rows, k) for k in rows[0]}} for n, rows in samples.items()]
    for row in rows:
        row["p50_vs_1"] = row["p50_us"] / rows[0]["p50_us"]
        row["rate_vs_1"] = row["calls_per_s"] / rows[0]["calls_per_s"]
    return rows


# -- 3. payload size --------------------------------------------------------------------------


def size_label(size: int) -> str:
    if size >= 1 << 20:
        return f"{size >> 20} MiB"
    return f"{size >> 10} KiB" if size >= 1024 else f"{size} B"


def raw_floors(stack: contextlib.ExitStack, line: str) -> _floors.Floors:
    floors = _floors.Floors(line, timeout=CALL_TIMEOUT)
    stack.callback(floors.close)
    return floors


def curve_payload(quick: bool) -> list[Row]:
    reps, budget, lo, hi = (3, 32 << 20, 30, 300) if quick else (5, 256 << 20, 100, 1000)
    samples: dict[int, list[Row]] = collections.defaultdict(list)
    with contextlib.ExitStack() as stack:
        bridge, raw_server = stack.enter_context(
            h.servers([*SERVER, "managers", "1"], RAW_SERVER)
        )
        (floor_server,) = stack.enter_context(h.servers(RAW_SERVER, env=PINNED_MALLOC))
        proxy = connect(stack, bridge.line).proxy("m0")
        floor = raw_floors(stack, floor_server.line)
        raw_default = raw_floors(stack, raw_server.line)
        for floors in (floor, raw_default):  # warm-up
            floors.seq(remote.SMALL, 200)
        remote.bridge_seq(proxy, remote.SMALL, 200)
        for rep in range(reps):
            progress(f"  payload: repetition {rep + 1}/{reps}")
            for size in PAYLOADS:
                payload = b"\xab" * size
                n = max(lo, min(hi, budget // size))
                raw = floor.seq(payload, n)
                ours = remote.bridge_seq(proxy, payload, n)
                plain = raw_default.seq(payload, n)
                samples[size].append({
                    "p50_us": h.pct(ours, 0.5) * 1e6,
                    "raw_p50_us": h.pct(raw, 0.5) * 1e6,
                    "raw_default_malloc_p50_us": h.pct(plain, 0.5) * 1e6,
                    "mb_per_s": size / statistics.fmean(ours) / 1e6,
                    "raw_mb_per_s": size / statistics.fmean(raw) / 1e6,
                })  # fmt: skip
    rows = [{"bytes": size, **{k: med(rows, k) for k in rows[0]}} for size, rows in samples.items()]
    for row in rows:
        row["ratio"] = row["p50_us"] / row["raw_p50_us"]
    return rows


# -- 4. fan-out --------------------------------------------------------------------------


def fanout_once(
    conns: list[transport.Connection], proxies: list[transport.RemoteProxy[Any]], seq: int
) -> tuple[float, float, float, float]:
    """Seconds: a fan-out cast's send, reach, reach + confirm; a fan-out call."""
    start = time.monotonic()
    transport.fanout_cast(conns, "m0", "hit", seq)
    sent = time.monotonic() - start
    seen = gather([proxy.seen() for proxy in proxies])
    confirmed = time.monotonic() - start
    assert all(s == seq for s, _ in seen), "a fan-out cast was not delivered"
    reached = max(t for _, t in seen) - start
    start = time.monotonic()
    gather([proxy.echo(seq) for proxy in proxies])
    return sent, reached, confirmed, time.monotonic() - start


def curve_fanout(quick: bool) -> list[Row]:
    reps, trials = (3, 20) if quick else (5, 60)
    samples: dict[int, list[tuple[float, float, float, float]]] = collections.defaultdict(list)
    with contextlib.ExitStack() as stack:
        servers = stack.enter_context(h.servers(*[[*SERVER, "managers", "1"]] * max(NODES)))
        conns = [connect(stack, server.line) for server in servers]
        proxies = [conn.proxy("m0") for conn in conns]
        seq = 0
        for _ in range(20):  # warm-up, every node
            seq += 1
            fanout_once(conns, proxies, seq)
        for rep in range(reps):
            progress(f"  fan-out: repetition {rep + 1}/{reps}")
            for n in NODES:
                for _ in range(trials):
                    seq += 1
                    samples[n].append(fanout_once(conns[:n], proxies[:n], seq))
    rows = []
    for n, trials_n in samples.items():
        send, reach, confirm, call = (list(x) for x in zip(*trials_n, strict=True))
        rows.append({
            "nodes": n,
            "cast_send_us": h.pct(send, 0.5) * 1e6,
            "cast_reach_us": h.pct(reach, 0.5) * 1e6,
            "cast_confirm_us": h.pct(confirm, 0.5) * 1e6,
            "call_us": h.pct(call, 0.5) * 1e6,
            "call_p99_us": h.pct(call, 0.99) * 1e6,
        })  # fmt: skip
    return rows


# -- 5. memory and the timer ----------------------------------------------------------------


def curve_memory(quick: bool) -> list[Row]:
    """Idle managers: RSS, descriptors and threads each, and timer passes, both ways.

    ``shared``: every manager served by the bridge's one socket; ``own``: each
    with its own socket, read by its own thread (``Bridge(own_sockets=True)``),
    where a manager also costs that socket, its listening TCP socket and an
    eventfd. After each size, calls go to every manager (through its own
    endpoint), so all are served.
    """
    reps = 5 if quick else 9
    rows = []
    for variant in ("shared", "own"):
        with contextlib.ExitStack() as stack:
            argv = [*SERVER, "memory", *(["own"] if variant == "own" else [])]
            (server,) = stack.enter_context(h.servers(argv))
            pid = server.proc.pid
            base = prev = server.rss_bytes()
            base_fds, base_threads = count_fds(pid), count_threads(pid)
            prev_n = 0
            for n in MANAGERS:
                progress(f"  memory ({variant}): {n} managers")
                if server.command(f"grow {n}", 120) != "ok":
                    raise RuntimeError("memory server did not grow")
                rss = server.rss_bytes()
                fds, threads = count_fds(pid), count_threads(pid)
                timer = json.loads(server.command(f"timer {reps}", 300))
                served = call_each(json.loads(server.command(f"endpoints {n}", 60)))
                rows.append({
                    "variant": variant,
                    "managers": n,
                    "rss_mib": rss / 2**20,
                    "base_rss_mib": base / 2**20,
                    "kib_per_manager": (rss - base) / n / 1024,
                    "step_kib_per_manager": (rss - prev) / (n - prev_n) / 1024,
                    "fds_per_manager": (fds - base_fds) / n,
                    "threads_per_manager": (threads - base_threads) / n,
                    "served": served,
                    **timer,
                })  # fmt: skip
                prev, prev_n = rss, n
    return rows


def count_fds(pid: int) -> int:
    """Open descriptors of `pid`."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def count_threads(pid: int) -> int:
    """Threads of `pid`."""
    return len(os.listdir(f"/proc/{pid}/task"))


def call_each(endpoints: dict[str, str]) -> int:
    """Call `is_working()` on every manager at its endpoint (a DEALER each); count answers."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, len(endpoints) + 16)
    socks: dict[str, zmq.Socket[bytes]] = {}
    try:
        for i, (name, endpoint) in enumerate(endpoints.items()):
            sock = socks.get(endpoint)
            if sock is None:
                sock = socks[endpoint] = ctx.socket(zmq.DEALER)
                sock.setsockopt(zmq.LINGER, 0)
                sock.connect(endpoint)
            sock.send(msgpack.packb([1, 1, i, name, "is_working", [], {}, None, {}]))
        answered = 0
        poller = zmq.Poller()
        for sock in socks.values():
            poller.register(sock, zmq.POLLIN)
        deadline = time.monotonic() + CALL_TIMEOUT
        while answered < len(endpoints) and time.monotonic() < deadline:
            for sock, _ in poller.poll(1000):
                while sock.poll(0):
                    reply = msgpack.unpackb(sock.recv(), raw=False)
                    answered += reply[1] == 3  # a reply, not an error
        return answered
    finally:
        for sock in socks.values():
            sock.close(linger=0)
        ctx.term()


# -- report -------------------------------------------------------------------------------


def report(results: dict[str, Any], print_table: Any = h.print_table) -> None:
    if "connections" in results:
        print_table(
            "1. Connections -> one manager (a client thread each)",
            ["connections", "calls/s (all)", "p50 µs", "p99 µs", "server CPU", "client CPU"],
            [
                [str(r["connections"]), f"{r['calls_per_s']:,.0f}", f"{r['p50_us']:,.0f}",
                 f"{r['p99_us']:,.0f}", f"{r['server_cpu']:.0%}", f"{r['client_cpu']:.0%}"]
                for r in results["connections"]
            ],
        )  # fmt: skip
    if "actors" in results:
        print_table(
            "2. Actors on one bridge: calls to random actors",
            ["actors", "sequential p50 µs", "vs 1 actor", "pipelined calls/s", "vs 1 actor",
             "pipelined, all to one actor"],
            [
                [f"{r['actors']:,}", f"{r['p50_us']:,.0f}", f"{r['p50_vs_1']:.2f}x",
                 f"{r['calls_per_s']:,.0f}", f"{r['rate_vs_1']:.0%}",
                 f"{r['one_actor_calls_per_s']:,.0f}"]
                for r in results["actors"]
            ],
        )  # fmt: skip
    if "payload" in results:
        print_table(
            "3. Echo payload, sequential: bridge vs raw pyzmq REQ/REP",
            ["payload", "p50 µs", "raw p50 µs", "ratio", "MB/s", "raw MB/s",
             "raw p50 µs, default malloc"],
            [
                [size_label(r["bytes"]), f"{r['p50_us']:,.0f}", f"{r['raw_p50_us']:,.0f}",
                 f"{r['ratio']:.2f}x", f"{r['mb_per_s']:,.1f}", f"{r['raw_mb_per_s']:,.1f}",
                 f"{r['raw_default_malloc_p50_us']:,.0f}"]
                for r in results["payload"]
            ],
        )  # fmt: skip
    if "fanout" in results:
        print_table(
            "4. Fan-out to N nodes (a process each), p50",
            ["nodes", "cast sent µs", "cast reaches all µs", "cast + confirm µs",
             "fan-out call µs", "call p99 µs", "call µs/node"],
            [
                [str(r["nodes"]), f"{r['cast_send_us']:,.0f}", f"{r['cast_reach_us']:,.0f}",
                 f"{r['cast_confirm_us']:,.0f}",
                 f"{r['call_us']:,.0f}", f"{r['call_p99_us']:,.0f}",
                 f"{r['call_us'] / r['nodes']:,.0f}"]
                for r in results["fanout"]
            ],
        )  # fmt: skip
    if "memory" in results:
        rows = results["memory"]
        print_table(
            f"5. Idle managers in a fresh server (base RSS {rows[0]['base_rss_mib']:.1f} MiB)",
            ["sockets", "managers", "RSS MiB", "KiB/manager", "KiB/manager (step)", "target",
             "fds/manager", "threads/manager", "served", "idle timer pass ms", "target",
             "all-due pass ms"],
            [
                [r.get("variant", "shared"), f"{r['managers']:,}", f"{r['rss_mib']:.1f}",
                 f"{r['kib_per_manager']:.1f}", f"{r['step_kib_per_manager']:.1f}", "< 100",
                 f"{r.get('fds_per_manager', 0):.2f}", f"{r.get('threads_per_manager', 0):.2f}",
                 f"{r.get('served', 0):,}", f"{r['idle_pass_ms']:.3f}",
                 "< 20" if r["managers"] == 1000 else "", f"{r['due_pass_ms']:.1f}"]
                for r in rows
            ],
        )  # fmt: skip
        if any(r["idle_ticks"] for r in rows):
            print("warning: an idle timer pass sent ticks", file=sys.stderr)


def plot(results: dict[str, Any], path: str) -> None:
    """One figure, a panel per curve (payload has two: latency and MB/s)."""
    plt = h.pyplot()
    from matplotlib import ticker  # noqa: PLC0415 - only with --plot

    fig, axes = plt.subplots(2, 3, figsize=(17, 10), layout="constrained")
    fig.suptitle("bench.scaling: bridge and runtime on tcp loopback (medians)", fontsize=14)
    blue, red, green, grey = "tab:blue", "tab:red", "tab:green", "tab:gray"
    plain = ticker.FuncFormatter(lambda v, _: f"{v:,.10g}")

    def twin(ax: Any, xs: list[int], left: dict[str, list[float]],
             right: dict[str, list[float]], labels: tuple[str, str, str]) -> Any:  # fmt: skip
        """Left series in blue (linear, from 0), right ones in red; one legend."""
        for (name, ys), style in zip(left.items(), ("o-", "D-."), strict=False):
            ax.plot(xs, ys, style, color=blue, label=name)
        ax.set_ylabel(labels[0], color=blue)
        ax.set_ylim(bottom=0, top=max(max(ys) for ys in left.values()) * 1.2)
        ax2 = ax.twinx()
        for (name, ys), style in zip(right.items(), ("s--", "^:"), strict=False):
            ax2.plot(xs, ys, style, color=red, label=name)
        ax2.set_ylabel(labels[1], color=red)
        handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="upper left", fontsize=9)
        ax.set_xlabel(labels[2])
        ax.grid(alpha=0.3)
        return ax2

    def xticks(ax: Any, xs: list[int], labels: list[str] | None = None) -> None:
        ax.set_xticks(xs, labels or [f"{x:,}" for x in xs])
        ax.minorticks_off()

    def log_y(ax: Any) -> None:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())

    if rows := results.get("connections"):
        ax = axes[0][0]
        xs = [r["connections"] for r in rows]
        ax.set_xscale("log", base=2)
        ax2 = twin(ax, xs, {"aggregate calls/s": [r["calls_per_s"] for r in rows]},
                   {"p50": [r["p50_us"] / 1e3 for r in rows],
                    "p99": [r["p99_us"] / 1e3 for r in rows]},
                   ("aggregate calls/s", "per-call latency, ms (log)",
                    "client connections (one thread each)"))  # fmt: skip
        log_y(ax2)
        xticks(ax, xs)
        ax.set_title("1. connections -> one manager")
    if rows := results.get("actors"):
        ax = axes[0][1]
        xs = [r["actors"] for r in rows]
        ax.set_xscale("log")
        ax2 = twin(ax, xs,
                   {"pipelined calls/s, random actor": [r["calls_per_s"] for r in rows],
                    "pipelined calls/s, all to one actor":
                        [r["one_actor_calls_per_s"] for r in rows]},
                   {"sequential p50, random actor": [r["p50_us"] for r in rows]},
                   ("pipelined calls/s (64 in flight)", "sequential p50, µs",
                    "managers exposed on the bridge"))  # fmt: skip
        ax2.set_ylim(bottom=0, top=max(r["p50_us"] for r in rows) * 1.5)
        xticks(ax, xs)
        ax.set_title("2. actors per node")
    if rows := results.get("payload"):
        xs = [r["bytes"] for r in rows]
        labels = [size_label(x).replace(" ", "") for x in xs]
        for ax, (ours, raw, unit) in zip(
            (axes[0][2], axes[1][0]),
            (("p50_us", "raw_p50_us", "p50 latency, µs (log)"),
             ("mb_per_s", "raw_mb_per_s", "MB/s, one way (log)")),
            strict=True,
        ):  # fmt: skip
            ax.plot(xs, [r[ours] for r in rows], "o-", color=blue, label="bridge (manager)")
            ax.plot(xs, [r[raw] for r in rows], "s--", color=grey, label="raw REQ/REP floor")
            if ours == "p50_us":
                ys = [r["raw_default_malloc_p50_us"] for r in rows]
                ax.plot(xs, ys, "x:", color=grey, alpha=0.6, label="raw, glibc default malloc")
            ax.set_xscale("log", base=2)
            log_y(ax)
            xticks(ax, xs, labels)
            ax.set_xlabel("echo payload")
            ax.set_ylabel(unit)
            ax.legend(fontsize=9, loc="upper left")
            ax.grid(alpha=0.3, which="both")
        axes[0][2].set_title("3a. payload: latency")
        axes[1][0].set_title("3b. payload: throughput (sequential calls)")
    if rows := results.get("fanout"):
        ax = axes[1][1]
        xs = [r["nodes"] for r in rows]
        for key, style, color, name in (
            ("cast_send_us", "v:", grey, "cast sent (fanout_cast returns)"),
            ("cast_reach_us", "o-", blue, "cast reaches all"),
            ("cast_confirm_us", "s--", green, "cast + confirming call"),
            ("call_us", "^-", red, "fan-out call (all replies)"),
        ):
            ax.plot(xs, [r[key] / 1e3 for r in rows], style, color=color, label=name)
        ax.set_xscale("log", base=2)
        log_y(ax)
        xticks(ax, xs)
        ax.set_xlabel("nodes (one server process each)")
        ax.set_ylabel("p50, ms (log)")
        ax.legend(fontsize=9, loc="upper left")
        ax.grid(alpha=0.3, which="both")
        ax.set_title("4. fan-out")
    if rows := [r for r in results.get("memory", []) if r.get("variant", "shared") == "shared"]:
        ax = axes[1][2]
        xs = [r["managers"] for r in rows]
        ax2 = twin(ax, xs, {"RSS growth per manager": [r["kib_per_manager"] for r in rows]},
                   {"idle timer pass (none due)": [r["idle_pass_ms"] for r in rows],
                    "timer pass, all due (no target)": [r["due_pass_ms"] for r in rows]},
                   ("RSS growth, KiB per manager", "timer pass, ms (log)",
                    "idle managers in one process"))  # fmt: skip
        ax.axhline(100, color=blue, alpha=0.5, linestyle="-.")
        ax.text(xs[-1], 92, "RSS target 100 KiB", color=blue, fontsize=9, ha="right")
        ax.set_ylim(bottom=0, top=250)
        log_y(ax2)
        ax2.set_ylim(0.01, 1000)
        ax2.axhline(20, color=red, alpha=0.5, linestyle="-.")
        ax2.text(xs[-1], 25, "idle-pass target 20 ms", color=red, fontsize=9, ha="right")
        xticks(ax, xs)
        ax.set_title("5. idle managers: memory and timer pass")
    for ax in axes.flat:
        if not ax.has_data():
            ax.set_visible(False)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def targets(memory: list[Row]) -> list[h.Row]:
    """The memory curve's targets at 1,000 managers, for each way of serving them."""
    rows = []
    for r in memory:
        if r["managers"] != 1000:
            continue
        variant = r.get("variant", "shared")
        rows.append(h.Row(f"RSS per idle manager, {variant} socket",
                          {variant: r["kib_per_manager"]}, unit="KiB",
                          target=h.Target("<", 100, "KiB")))  # fmt: skip
        rows.append(h.Row(f"idle timer pass, {variant} socket", {variant: r["idle_pass_ms"]},
                          unit="ms", target=h.Target("<", 20, "ms")))  # fmt: skip
    return rows


def main() -> None:
    parser = h.parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="about a minute in all")
    parser.add_argument("--only", nargs="+", choices=CURVES, help="run only these curves")
    out = h.Output.parse(parser, "bench.scaling")
    options = out.options
    runners = {
        "connections": curve_connections,
        "actors": curve_actors,
        "payload": curve_payload,
        "fanout": curve_fanout,
        "memory": curve_memory,
    }
    results: dict[str, Any] = {}
    start = time.monotonic()
    for name in options.only or CURVES:
        progress(f"{name} ...")
        results[name] = runners[name](options.quick)
    results["elapsed_s"] = time.monotonic() - start
    report(results, out.table)
    if "memory" in results:
        out.compare("targets: 1,000 idle managers", targets(results["memory"]))
    out.print(f"({'quick' if options.quick else 'full'} run: {results['elapsed_s']:.0f} s)")
    out.finish(results, plot=False)  # the curves are drawn here, not as bars
    if options.plot:
        plot(results, options.plot)


if __name__ == "__main__":
    main()
