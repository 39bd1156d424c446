"""asyncio callers: the asyncio client and awaited threaded-client calls beside raw zmq.asyncio.

    python -m bench.aio [--quick] [--json FILE] [--plot FILE.png]

Servers run in their own processes (bench.remote's bridge and raw servers,
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
import statistics
import threading
import time
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pykka
import zmq
import zmq.asyncio

try:
    from bench import _harness as h
except ModuleNotFoundError:  # run as a file: the package is not on the path
    raise SystemExit("run it as: python -m bench.aio") from None
import transport
import transport.aio
from bench._floors import SMALL, WINDOW, request

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
    try:
        h.serve_until_stdin_closes(bridge.endpoint)
    finally:
        EVENT.set()
        bridge.stop()
        pykka.ActorRegistry.stop_all(block=True, timeout=5)


# -- clients -----------------------------------------------------------------------------


async def raw_seq(sock: zmq.asyncio.Socket, n: int) -> list[float]:
    async def call() -> None:
        await sock.send(request(SMALL))
        msgpack.unpackb(await sock.recv())

    return await h.timed_awaits(call, n)


async def raw_pipelined(sock: zmq.asyncio.Socket, n: int) -> float:
    async def issue() -> None:
        await sock.send(request(SMALL))

    async def finish(_: None) -> None:
        msgpack.unpackb(await sock.recv())

    return await h.pipelined_awaits(issue, finish, n, WINDOW)


async def ours_seq(proxy: Any, n: int) -> list[float]:
    return await h.timed_awaits(lambda: proxy.echo(SMALL), n)


async def ours_pipelined(proxy: Any, n: int) -> float:
    async def issue() -> Any:
        return proxy.echo(SMALL)  # in flight; awaited by `finish`

    async def finish(future: Any) -> None:
        await future

    return await h.pipelined_awaits(issue, finish, n, WINDOW)


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
    quick: bool, endpoint: str, raw_endpoint: str, waiters_endpoint: str
) -> dict[str, list[float]]:
    reps = 3 if quick else 5
    n_seq = 300 if quick else 1000
    n_pipe = 2000 if quick else 10000
    n_conc = 2000 if quick else 10000
    samples: dict[str, list[float]] = collections.defaultdict(list)
    ctx = zmq.asyncio.Context.instance()
    raw = ctx.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(raw_endpoint)
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
            samples["seq p50 raw (us)"].append(h.pct(await raw_seq(raw, n_seq), 0.5) * 1e6)
            samples["seq p50 aio (us)"].append(h.pct(await ours_seq(aproxy, n_seq), 0.5) * 1e6)
            samples["seq p50 threaded+await (us)"].append(
                h.pct(await ours_seq(tproxy, n_seq), 0.5) * 1e6
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


def rows(results: dict[str, float]) -> list[h.Row]:
    """A row per measure: ``transport.aio`` and the threaded client, beside the floor."""

    def row(measure: str, unit: str, floor: str | None, **keys: str) -> h.Row:
        values = {name: results[key] for name, key in keys.items()}
        return h.Row(measure, values, unit=unit, floor=floor)

    concurrent = next(k.split(" concurrent")[0] for k in results if "concurrent" in k)
    return [
        row("sequential call p50", "us", "raw zmq.asyncio", aio="seq p50 aio (us)",
            **{"threaded+await": "seq p50 threaded+await (us)",
               "raw zmq.asyncio": "seq p50 raw (us)"}),
        row("pipelined calls", "msg/s", "raw zmq.asyncio", aio="pipelined aio (msg/s)",
            **{"threaded+await": "pipelined threaded+await (msg/s)",
               "raw zmq.asyncio": "pipelined raw (msg/s)"}),
        row(f"{concurrent} concurrent awaits", "s", None,
            aio=f"{concurrent} concurrent aio (s)",
            **{"threaded+await": f"{concurrent} concurrent threaded+await (s)"}),
        row("10 ms ticker's lag p99, 100 calls waiting", "ms", "idle loop",
            aio="lag p99 100 in flight, aio (ms)",
            **{"threaded+await": "lag p99 100 in flight, threaded+await (ms)",
               "idle loop": "lag p99 idle (ms)"}),
    ]  # fmt: skip


def main() -> None:
    parser = h.parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer messages and repetitions")
    parser.add_argument("--serve", choices=["waiters"], help=argparse.SUPPRESS)
    out = h.Output.parse(parser, "bench.aio")
    options = out.options
    if options.serve == "waiters":
        serve_waiters()
        return
    with h.servers(
        ["bench.remote", "--serve", "bridge"], ["bench.remote", "--serve", "raw"],
        ["bench.aio", "--serve", "waiters"],
    ) as (bridge, raw, waiters):  # fmt: skip
        router = raw.line.split()[1]  # the raw server's endpoints: REP, ROUTER, PULL, PUSH
        samples = asyncio.run(run_async(options.quick, bridge.line, router, waiters.line))
    results = h.medians(samples)
    out.compare(
        "asyncio callers (tcp loopback, medians; floor: raw zmq.asyncio DEALER)", rows(results)
    )
    out.finish(results)


if __name__ == "__main__":
    main()
