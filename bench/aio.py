"""asyncio callers: the asyncio client and awaited threaded-client calls beside raw zmq.asyncio.

    python bench/aio.py [--quick] [--json]

Servers run in their own processes (bench/remote.py's bridge and raw servers,
and a bridge of 100 waiting actors for the lag rows). Every figure is a median
over repetitions, the variants interleaved within each repetition:

- sequential calls (p50 latency): ``transport.aio`` and the threaded client's
  future awaited, beside a raw ``zmq.asyncio`` DEALER (``await send``, ``await
  recv``) against a raw ROUTER echo server, msgpack on both ends;
- pipelined calls (64 in flight): the same three;
- 10,000 concurrent awaits (gather): ``transport.aio`` and the threaded client;
- a 10 ms ticker's lag p99 on the same loop: idle, then while 100 remote calls
  wait (1 s) in the server, for both clients.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pykka
import zmq
import zmq.asyncio
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import transport  # noqa: E402
import transport.aio  # noqa: E402
from bench.remote import SMALL, WINDOW, pct, spawn  # noqa: E402

WAITERS = 100
EVENT = threading.Event()


class Waiter(pykka.ThreadingActor):
    def wait(self, timeout: float) -> bool:
        return EVENT.wait(timeout)


class Release(pykka.ThreadingActor):
    def set(self) -> None:
        EVENT.set()

    def clear(self) -> None:
        EVENT.clear()


def serve_waiters() -> None:
    refs: dict[str, pykka.ActorRef[Any]] = {f"w{i}": Waiter.start() for i in range(WAITERS)}
    refs["release"] = Release.start()
    bridge = transport.Bridge("tcp://127.0.0.1:*")
    for name, ref in refs.items():
        bridge.expose(name, ref)
    bridge.start()
    print(bridge.endpoint, flush=True)
    try:
        sys.stdin.read()
    finally:
        EVENT.set()
        bridge.stop()
        pykka.ActorRegistry.stop_all(block=True, timeout=5)


# -- clients -----------------------------------------------------------------------------


def request(i: int) -> bytes:
    return msgpack.packb([1, 1, i, "sink", "echo", [SMALL], {}, None, {}])  # type: ignore[no-any-return]


async def raw_seq(sock: zmq.asyncio.Socket, n: int) -> list[float]:
    lat = []
    for i in range(n):
        t = time.perf_counter()
        await sock.send(request(i))
        msgpack.unpackb(await sock.recv())
        lat.append(time.perf_counter() - t)
    return lat


async def raw_pipelined(sock: zmq.asyncio.Socket, n: int) -> float:
    t = time.perf_counter()
    sent = 0
    for _ in range(min(WINDOW, n)):
        await sock.send(request(sent))
        sent += 1
    for _ in range(n):
        msgpack.unpackb(await sock.recv())
        if sent < n:
            await sock.send(request(sent))
            sent += 1
    return n / (time.perf_counter() - t)


async def ours_seq(proxy: Any, n: int) -> list[float]:
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        await proxy.echo(SMALL)
        lat.append(time.perf_counter() - t)
    return lat


async def ours_pipelined(proxy: Any, n: int) -> float:
    t = time.perf_counter()
    window: collections.deque[Any] = collections.deque()
    for _ in range(n):
        if len(window) >= WINDOW:
            await window.popleft()
        window.append(proxy.echo(SMALL))
    for future in window:
        await future
    return n / (time.perf_counter() - t)


async def concurrent(proxy: Any, n: int) -> float:
    t = time.perf_counter()
    await asyncio.gather(*(proxy.echo(i) for i in range(n)))
    return time.perf_counter() - t


async def ticker_p99(ticks: int) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    lags = []
    for k in range(1, ticks + 1):
        due = start + k * 0.010
        await asyncio.sleep(max(0.0, due - loop.time()))
        lags.append(loop.time() - due)
    return statistics.quantiles(lags, n=100)[98]


async def lag_while_waiting(waiters: list[Any], release: Any) -> float:
    await release.clear()
    calls = [asyncio.ensure_future(w.wait(30.0)) for w in waiters]
    p99 = await ticker_p99(100)
    await release.set()
    assert all(await asyncio.gather(*calls))
    return p99


async def run_async(
    quick: bool, endpoint: str, raw_port: str, waiters_endpoint: str
) -> dict[str, list[float]]:
    reps = 3 if quick else 5
    n_seq = 300 if quick else 1000
    n_pipe = 2000 if quick else 10000
    n_conc = 2000 if quick else 10000
    samples: dict[str, list[float]] = collections.defaultdict(list)
    ctx = zmq.asyncio.Context.instance()
    raw = ctx.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(f"tcp://127.0.0.1:{raw_port}")
    aconn = transport.aio.connect(endpoint, timeout=60)
    tconn = transport.connect(endpoint, timeout=60)
    waconn = transport.aio.connect(waiters_endpoint, timeout=60)
    wtconn = transport.connect(waiters_endpoint, timeout=60)
    try:
        aproxy, tproxy = aconn.proxy("sink"), tconn.proxy("sink")
        await raw_seq(raw, 100)
        await ours_seq(aproxy, 100)
        await ours_seq(tproxy, 100)
        for _ in range(reps):
            samples["seq p50 raw (us)"].append(pct(await raw_seq(raw, n_seq), 0.5) * 1e6)
            samples["seq p50 aio (us)"].append(pct(await ours_seq(aproxy, n_seq), 0.5) * 1e6)
            samples["seq p50 threaded+await (us)"].append(
                pct(await ours_seq(tproxy, n_seq), 0.5) * 1e6
            )
            samples["pipelined raw (msg/s)"].append(await raw_pipelined(raw, n_pipe))
            samples["pipelined aio (msg/s)"].append(await ours_pipelined(aproxy, n_pipe))
            samples["pipelined threaded+await (msg/s)"].append(await ours_pipelined(tproxy, n_pipe))
            samples[f"{n_conc:,} concurrent aio (s)"].append(await concurrent(aproxy, n_conc))
            samples[f"{n_conc:,} concurrent threaded+await (s)"].append(
                await concurrent(tproxy, n_conc)
            )
        for _ in range(2 if quick else 3):
            samples["lag p99 idle (ms)"].append(await ticker_p99(100) * 1000)
            samples["lag p99 100 in flight, aio (ms)"].append(
                await lag_while_waiting(
                    [waconn.proxy(f"w{i}") for i in range(WAITERS)], waconn.proxy("release")
                )
                * 1000
            )
            samples["lag p99 100 in flight, threaded+await (ms)"].append(
                await lag_while_waiting(
                    [wtconn.proxy(f"w{i}") for i in range(WAITERS)], wtconn.proxy("release")
                )
                * 1000
            )
    finally:
        raw.close(linger=0)
        await aconn.close()
        await waconn.close()
        tconn.close(linger=0)
        wtconn.close(linger=0)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer messages and repetitions")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--serve", choices=["waiters"], help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve == "waiters":
        serve_waiters()
        return
    procs = []
    try:
        bridge_proc, endpoint = spawn("bridge")
        procs.append(bridge_proc)
        raw_proc, ports = spawn("raw")
        procs.append(raw_proc)
        waiters_proc, waiters_endpoint = spawn_waiters()
        procs.append(waiters_proc)
        samples = asyncio.run(
            run_async(options.quick, endpoint, ports.split()[1], waiters_endpoint)
        )
    finally:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(10)
            except Exception:
                proc.kill()
                proc.wait(5)
    results = {key: statistics.median(values) for key, values in samples.items()}
    if options.json:
        print(json.dumps(results, indent=2))
        return
    table = Table(title="asyncio callers (tcp loopback, medians; floor: raw zmq.asyncio DEALER)")
    for col in ("measure", "value", "vs floor"):
        table.add_column(col, justify="left" if col == "measure" else "right", no_wrap=True)
    floors = {"seq p50": "seq p50 raw (us)", "pipelined": "pipelined raw (msg/s)",
              "lag p99": "lag p99 idle (ms)"}  # fmt: skip
    for key, value in results.items():
        floor_key = next((f for prefix, f in floors.items() if key.startswith(prefix)), None)
        ratio = ""
        if floor_key and floor_key != key:
            ratio = f"{value / results[floor_key]:.2f}x"
        table.add_row(key, f"{value:,.3f}" if value < 10 else f"{value:,.0f}", ratio)
    Console(width=max(100, Console().width)).print(table)


def spawn_waiters() -> tuple[Any, str]:
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", "waiters"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        proc.kill()
        raise RuntimeError("waiters server did not start")
    return proc, line


if __name__ == "__main__":
    main()
