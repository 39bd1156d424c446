"""What one sequential remote call costs, noise-free: ours beside the raw pyzmq loops.

    python -m bench.percall [--calls N] [--callgrind] [--json FILE] [--servers raw,bridge]

Each pairing runs a server process and a client process; after a warm-up, a
window of N sequential calls is counted three times: system calls per call on
each side (``strace -f -c`` attached to every thread for the window), context
switches per call on each side (``/proc/PID/task/*/status``, without strace;
a voluntary switch is a thread that blocked and was woken again, so the
server's voluntary switches per call are the threads woken per call), and with
``--callgrind`` instructions per call (each process under callgrind, zeroed and
dumped around the window). These counts do not move with the machine's load.

Pairings (``--servers``, default raw,bridge,own): ``pyro`` is Pyro5's daemon
called by a Pyro5 proxy with the msgpack serializer (``pip install Pyro5``);
``raw`` is a REP socket served by one thread's blocking loop, called
by a REQ socket (the floor); ``bridge`` is `transport.Bridge` serving an
`actors.Manager`, called through `transport.connect(...).proxy(...)`; ``own``
is the same with ``own_sockets=True``: the manager's thread reads and answers
its own socket (transport/_direct.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import _harness as h

SMALL: Any = [1, "x"]
WARM = 300
SERVERS = ("raw", "bridge", "own")


# -- the processes ---------------------------------------------------------------------


def serve(kind: str) -> None:
    """Serve one kind; print the endpoint; stop when stdin closes."""
    if kind == "pyro":
        from bench._peers import pyro  # noqa: PLC0415

        pyro.serve([])
        return
    if kind == "raw":
        import threading  # noqa: PLC0415

        import msgpack  # type: ignore[import-untyped]  # noqa: PLC0415
        import zmq  # noqa: PLC0415

        rep: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.REP)
        port = rep.bind_to_random_port("tcp://127.0.0.1")

        def loop() -> None:
            while True:
                rep.send(msgpack.packb(msgpack.unpackb(rep.recv())))

        threading.Thread(target=loop, daemon=True).start()
        h.serve_until_stdin_closes(f"tcp://127.0.0.1:{port}")
        import os  # noqa: PLC0415

        os._exit(0)
    import transport  # noqa: PLC0415
    from actors import Manager  # noqa: PLC0415

    class Sink(Manager):
        def echo(self, value: Any) -> Any:
            return value

    ref = Sink.start(host="percall")
    bridge = transport.Bridge("tcp://127.0.0.1:*", own_sockets=kind == "own")
    bridge.expose("sink", ref)
    bridge.start()
    try:
        h.serve_until_stdin_closes(bridge.endpoint_of("sink"))
    finally:
        bridge.stop()
        ref.stop()


def client(kind: str, endpoint: str) -> None:
    """Call `endpoint` N times for each line N read from stdin; answer ``done``."""
    if kind == "raw":
        import msgpack  # noqa: PLC0415
        import zmq  # noqa: PLC0415

        req: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.REQ)
        req.connect(endpoint)
        request = msgpack.packb([1, 1, 0, "sink", "echo", [SMALL], {}, None, {}])

        def call() -> None:
            req.send(request)
            msgpack.unpackb(req.recv())

    elif kind == "pyro":
        import Pyro5.api  # type: ignore[import-untyped]  # noqa: PLC0415

        pyro = Pyro5.api.Proxy(endpoint)
        pyro._pyroSerializer = "msgpack"

        def call() -> None:
            pyro.echo(SMALL)

    else:
        import transport  # noqa: PLC0415

        proxy = transport.connect(endpoint, timeout=60).proxy("sink")

        def call() -> None:
            proxy.echo(SMALL).get()

    for _ in range(WARM):
        call()
    h.freeze_startup()
    print("ready", flush=True)
    for line in sys.stdin:
        for _ in range(int(line)):
            call()
        print("done", flush=True)


# -- the counting ------------------------------------------------------------------------


def _run(cli: h.Server, calls: int) -> None:
    assert cli.proc.stdin is not None
    assert cli.proc.stdout is not None
    cli.proc.stdin.write(f"{calls}\n")
    cli.proc.stdin.flush()
    assert cli.proc.stdout.readline().strip() == "done"


def measure(kind: str, calls: int, *, callgrind: bool) -> dict[str, float]:
    """Every count per call for one pairing."""
    out: dict[str, float] = {}
    with (
        h.spawn("bench.percall", "--serve", kind) as server,
        h.spawn("bench.percall", "--client", kind, server.line) as cli,
    ):
        _run(cli, WARM)
        before = (h.switches(server.pid), h.switches(cli.pid))
        _run(cli, calls)
        after = (h.switches(server.pid), h.switches(cli.pid))
        for side, b, a in (("server", before[0], after[0]), ("client", before[1], after[1])):
            delta = h.switch_delta(b, a)
            out[f"{side} voluntary switches"] = sum(v for v, _ in delta.values()) / calls
            out[f"{side} involuntary switches"] = sum(i for _, i in delta.values()) / calls
            out[f"{side} threads woken"] = sum(1 for v, _ in delta.values() if v >= calls / 2)
        with h.strace_window(server.pid) as srv, h.strace_window(cli.pid) as cln:
            _run(cli, calls)
        out["server syscalls"] = sum(srv.values()) / calls
        out["client syscalls"] = sum(cln.values()) / calls
        for name, count in sorted(srv.items()):
            out[f"server {name}"] = count / calls
        for name, count in sorted(cln.items()):
            out[f"client {name}"] = count / calls
    if callgrind:
        n = max(50, calls // 10)
        with tempfile.TemporaryDirectory() as tmp:
            sfile, cfile = str(Path(tmp, "server.cg")), str(Path(tmp, "client.cg"))
            with h.spawn(
                "bench.percall", "--serve", kind, wrapper=h.callgrind_wrapper(sfile)
            ) as server, h.spawn(
                "bench.percall", "--client", kind, server.line,
                wrapper=h.callgrind_wrapper(cfile), start_timeout=600,
            ) as cli:  # fmt: skip
                _run(cli, 20)
                with (
                    h.callgrind_window(server.pid, sfile) as sg,
                    h.callgrind_window(cli.pid, cfile) as cg,
                ):
                    _run(cli, n)
                out["server instructions"] = sg["instructions"] / n
                out["client instructions"] = cg["instructions"] / n
    return out


MAIN_ROWS = (
    "server syscalls",
    "client syscalls",
    "server voluntary switches",
    "server threads woken",
    "client voluntary switches",
    "server involuntary switches",
    "server instructions",
    "client instructions",
)


def report(results: dict[str, dict[str, float]]) -> None:
    """One table: a row per count, a column per pairing, ratios to raw."""
    kinds = list(results)
    columns = ["per sequential call", *kinds, *(f"{k}/raw" for k in kinds if k != "raw")]
    names = [n for n in MAIN_ROWS if any(n in r for r in results.values())]
    extra = sorted({n for r in results.values() for n in r} - set(names))
    rows = []
    for name in [*names, *extra]:
        values = [results[k].get(name) for k in kinds]
        cells = ["-" if v is None else f"{v:,.2f}" for v in values]
        raw = results.get("raw", {}).get(name)
        for k in kinds:
            if k == "raw":
                continue
            v = results[k].get(name)
            cells.append(f"{v / raw:.2f}x" if v is not None and raw else "-")
        rows.append([name, *cells])
    h.print_table("per sequential call: counts that do not move with load", columns, rows)


class _PyroCloser:
    def __init__(self, proxy: Any) -> None:
        self.proxy = proxy

    def close(self, linger: int = 0) -> None:
        self.proxy._pyroRelease()


def latency(kinds: list[str], rounds: int, block: int = 250) -> dict[str, dict[str, float]]:
    """Sequential call p50/p99 (us) per pairing, in interleaved blocks (same noise for all)."""
    import msgpack  # noqa: PLC0415
    import zmq  # noqa: PLC0415

    import transport  # noqa: PLC0415

    servers = {kind: h.spawn("bench.percall", "--serve", kind) for kind in kinds}
    calls: dict[str, Any] = {}
    closers: list[Any] = []
    try:
        for kind, server in servers.items():
            if kind == "raw":
                req: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.REQ)
                req.connect(server.line)
                closers.append(req)
                body = msgpack.packb([1, 1, 0, "sink", "echo", [SMALL], {}, None, {}])
                calls[kind] = lambda req=req, body=body: msgpack.unpackb(
                    req.send(body) or req.recv()
                )
            elif kind == "pyro":
                import Pyro5.api  # noqa: PLC0415

                pyro = Pyro5.api.Proxy(server.line)
                pyro._pyroSerializer = "msgpack"
                closers.append(_PyroCloser(pyro))
                calls[kind] = lambda pyro=pyro: pyro.echo(SMALL)
            else:
                conn = transport.connect(server.line, timeout=60)
                closers.append(conn)
                proxy = conn.proxy("sink")
                calls[kind] = lambda proxy=proxy: proxy.echo(SMALL).get()
        samples: dict[str, list[float]] = {kind: [] for kind in kinds}
        for kind in kinds:
            h.timed_calls(calls[kind], WARM)
        for _ in range(rounds):
            for kind in kinds:
                samples[kind] += h.timed_calls(calls[kind], block + 10)[10:]
    finally:
        for closer in closers:
            closer.close(linger=0)
        for server in servers.values():
            server.stop()
    return {
        kind: {"p50 us": h.pct(s, 0.5) * 1e6, "p99 us": h.pct(s, 0.99) * 1e6}
        for kind, s in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--callgrind", action="store_true", help="count instructions too (slow)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON (- for stdout)")
    parser.add_argument(
        "--latency", type=int, metavar="ROUNDS", help="also time sequential calls, interleaved"
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve(options.serve)
        return
    if options.client:
        client(*options.client)
        return
    kinds = options.servers.split(",")
    if options.latency:
        lat = latency(kinds, options.latency)
        rows = [
            [kind, f"{v['p50 us']:.0f}", f"{v['p99 us']:.0f}",
             f"{h.ratio(v['p50 us'], lat.get('raw', v)['p50 us']):.2f}x"]
            for kind, v in lat.items()
        ]  # fmt: skip
        h.print_table("sequential call latency (interleaved blocks)", ["server", "p50 us",
                      "p99 us", "p50/raw"], rows)  # fmt: skip
        if options.callgrind is False and options.calls == 0:
            return
    results = {kind: measure(kind, options.calls, callgrind=options.callgrind) for kind in kinds}
    report(results)
    if options.json:
        h.write_json(options.json, results)


if __name__ == "__main__":
    main()
