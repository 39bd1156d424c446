"""What one sequential remote call costs, noise-free: ours beside the raw pyzmq loops.

    python -m bench.percall [--calls N] [--callgrind] [--latency ROUNDS] [--servers raw,bridge]
                            [--base REV] [--json FILE] [--plot FILE.png]

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

``--base REV`` adds, beside each ``bridge``/``own`` pairing, the same pairing
with server and client on git revision REV's ``actors`` and ``transport``
(``bridge@REV``): before and after in one run.

Targets (issue 14, on the last pairing, ``own`` by default): system calls
per call within 1.2x of raw on each side; no more server threads woken per
call than raw's (its REP thread and libzmq's I/O thread).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack  # type: ignore[import-untyped]

try:
    from bench import _floors
    from bench import _harness as h
except ModuleNotFoundError:  # run as a file: the package is not on the path
    raise SystemExit("run it as: python -m bench.percall") from None

if TYPE_CHECKING:
    from collections.abc import Callable

SMALL = _floors.SMALL
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
        _floors.serve(("reqrep",))
        return
    from actors import Manager  # noqa: PLC0415

    class Sink(Manager):
        def echo(self, value: Any) -> Any:
            return value

    h.serve_exposed({"sink": Sink.start(host="percall")}, own_sockets=kind == "own",
                    line_of="sink")  # fmt: skip


def _raw_caller(floors: _floors.Floors) -> Callable[[], None]:
    """The floor's call: a request packed once (the floor does no encoding work), its reply."""
    req, body = floors.req, _floors.request(SMALL)

    def call() -> None:
        req.send(body)
        msgpack.unpackb(req.recv())

    return call


def client(kind: str, endpoint: str) -> None:
    """Call `endpoint` N times for each line N read from stdin; answer ``done``."""
    call: Callable[[], object]
    if kind == "raw":
        call = _raw_caller(_floors.Floors(endpoint))

    elif kind == "pyro":
        import Pyro5.api  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: PLC0415

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
    answer = cli.command(str(calls), timeout=600)
    assert answer == "done", answer


def measure(
    kind: str, calls: int, *, callgrind: bool, tree: Path | None = None
) -> dict[str, float]:
    """Every count per call for one pairing (both sides on `tree`'s runtime, if given)."""
    out: dict[str, float] = {}
    with (
        h.spawn("bench.percall", "--serve", kind, tree=tree) as server,
        h.spawn("bench.percall", "--client", kind, server.line, tree=tree) as cli,
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
                "bench.percall", "--serve", kind, wrapper=h.callgrind_wrapper(sfile), tree=tree
            ) as server, h.spawn(
                "bench.percall", "--client", kind, server.line,
                wrapper=h.callgrind_wrapper(cfile), start_timeout=600, tree=tree,
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
TARGETS = {  # issue 14
    "server syscalls": h.Target("<=", 1.2),
    "client syscalls": h.Target("<=", 1.2),
    "server threads woken": h.Target("<=", 1.0),
}
"""On ours / raw. Threads woken: no more than the floor's (libzmq's I/O thread and the
one that answers, 2, is the least a ZeroMQ server wakes)."""


def _unit(name: str) -> str:
    for word in ("instructions", "switches"):
        if word in name:
            return f"{word}/call"
    return "threads" if "threads" in name else "syscalls/call"


def rows(
    results: dict[str, dict[str, float]], subject: str | None = None
) -> tuple[list[h.Row], list[h.Row]]:
    """The main counts (targets on `subject`, default the last pairing) and each system call's."""
    kinds = list(results)
    subject = subject or next((k for k in reversed(kinds) if k != "raw"), None)
    floor = "raw" if "raw" in kinds and len(kinds) > 1 else None
    names = [n for n in MAIN_ROWS if any(n in r for r in results.values())]
    extra = sorted({n for r in results.values() for n in r} - set(names))
    made: tuple[list[h.Row], list[h.Row]] = ([], [])
    for group, wanted in zip(made, (names, extra), strict=True):
        for name in wanted:
            values = {k: results[k][name] for k in kinds if name in results[k]}
            compared = subject in values and floor in values
            group.append(h.Row(
                name, values, unit=_unit(name), floor=floor if floor in values else None,
                target=TARGETS.get(name) if compared else None,
                subject=subject if subject in values else None,
            ))  # fmt: skip
    return made


class _PyroCloser:
    def __init__(self, proxy: Any) -> None:
        self.proxy = proxy

    def close(self, linger: int = 0) -> None:
        self.proxy._pyroRelease()


def latency(kinds: list[str], rounds: int, block: int = 250) -> dict[str, dict[str, float]]:
    """Sequential call p50/p99 (us) per pairing, in interleaved blocks (same noise for all)."""
    import transport  # noqa: PLC0415

    calls: dict[str, Any] = {}
    closers: list[Any] = []
    with h.servers(*(["bench.percall", "--serve", kind] for kind in kinds)) as started:
        try:
            for kind, server in zip(kinds, started, strict=True):
                if kind == "raw":
                    floors = _floors.Floors(server.line)
                    closers.append(floors)
                    calls[kind] = _raw_caller(floors)
                elif kind == "pyro":
                    import Pyro5.api  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: PLC0415

                    pyro = Pyro5.api.Proxy(server.line)
                    pyro._pyroSerializer = "msgpack"
                    closers.append(_PyroCloser(pyro))
                    calls[kind] = lambda pyro=pyro: pyro.echo(SMALL)
                else:
                    conn = transport.connect(server.line, timeout=60)
                    closers.append(conn)
                    proxy = conn.proxy("sink")
                    calls[kind] = lambda proxy=proxy: proxy.echo(SMALL).get()
            for call in calls.values():
                h.timed_calls(call, WARM)
            samples = h.interleaved(calls, rounds * block, block, warm=10)
        finally:
            for closer in closers:
                closer.close(linger=0)
    return {
        kind: {"p50 us": h.pct(s, 0.5) * 1e6, "p99 us": h.pct(s, 0.99) * 1e6}
        for kind, s in samples.items()
    }


def main() -> None:
    parser = h.parser(__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="calls per counted window")
    parser.add_argument("--servers", default=",".join(SERVERS), help="pairings, comma-separated")
    parser.add_argument("--callgrind", action="store_true", help="count instructions too (slow)")
    parser.add_argument(
        "--latency", type=int, metavar="ROUNDS", help="also time sequential calls, interleaved"
    )
    parser.add_argument(
        "--base", metavar="REV",
        help="also count bridge/own with both sides on this git revision's runtime (before)",
    )  # fmt: skip
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=2, help=argparse.SUPPRESS)
    out = h.Output.parse(parser, "bench.percall")
    options = out.options
    if options.serve:
        serve(options.serve)
        return
    if options.client:
        client(*options.client)
        return
    kinds = options.servers.split(",")
    results: dict[str, Any] = {}
    if options.latency:
        lat = latency(kinds, options.latency)
        results["latency"] = lat
        floor = "raw" if "raw" in kinds else None
        out.compare("sequential call latency (interleaved blocks; noisy under load)", [
            h.Row(f"call {q}", {k: v[f"{q} us"] for k, v in lat.items()}, unit="us", floor=floor)
            for q in ("p50", "p99")
        ])  # fmt: skip
    if options.calls:
        counts = {}
        with contextlib.ExitStack() as stack:
            base = stack.enter_context(h.revision_tree(options.base)) if options.base else None
            for kind in kinds:
                counts[kind] = measure(kind, options.calls, callgrind=options.callgrind)
                if base is not None and kind in ("bridge", "own"):
                    counts[f"{kind}@{options.base}"] = measure(
                        kind, options.calls, callgrind=options.callgrind, tree=base
                    )
        results["counts"] = counts
        main_rows, extra_rows = rows(counts, next((k for k in reversed(kinds) if k != "raw"), None))
        out.compare("per sequential call: counts that do not move with load", main_rows)
        columns, cells = h.rows_table(extra_rows)
        out.table("per sequential call: each system call", columns, cells)
    out.finish(results)


if __name__ == "__main__":
    main()
