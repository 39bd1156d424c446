"""Each side's share of a sequential remote call: ours against minimal Python peers.

    python -m bench.critical [--rounds N] [--block N] [--pairings A,B,...] [--callgrind]
                             [--calls N] [--lean-slice MS] [--json FILE] [--plot FILE.png]

Five pairings, each its own server process and client process, timed in
alternating blocks (`interleaved_blocks`: each client times a block of
sequential ``echo([1, "x"])`` calls, after a few untimed ones, then the next
pairing's client does):

- ``raw``: a REQ/REP loop with msgpack (``bench._floors``: the floor);
- ``min``: a minimal Python DEALER client and ROUTER server speaking our wire
  format (``bench._minimal``; the server blocks in its receive);
- ``our client``: `transport.connect(...).proxy(...)` against the minimal server;
- ``our server``: the minimal client against `transport.Bridge` with
  ``own_sockets=True`` serving an `actors.Manager`;
- ``ours``: our client and our own-socket server;
- (``min poll``, with ``--pairings``: the minimal client and the minimal
  server waiting in ``select.poll`` as ours does, for its inbox too.)

It prints each pairing's p50 and its ratio to raw, and each side's share:
``our client`` minus ``min`` (what our client adds) and ``our server`` minus
``min`` (what our server adds), in µs. Latencies are noisy under load (the
pairings share it, being interleaved, but a share of a few µs still moves by
a µs or two between runs): repeat the run and take medians.

``--callgrind`` also counts the instructions on each side's *critical path*
(what a call waits for; the rest overlaps with the other side and the
network), per call, median over a window of ``--calls`` calls, one side under
callgrind at a time (the other runs natively):

- client: from the return of the reply's ``zmq_msg_recv`` to the call of the
  next request's ``zmq_msg_send``; ours, the minimal client and raw REQ, each
  against its pairing's server. Our client waits the *lean* way (a blocking
  receive, at most 2 ms) or, when a reply takes longer (valgrind slows the
  client about 50 times), the *general* way (a readiness check and a
  ``select.poll``) until a call is fast again; the calls are counted by the
  way they waited (`client_paths`), and both figures shown with their counts. Under callgrind
  most calls wait the general way; ``--lean-slice 50`` widens our client's
  slice in the measured process (`widen_lean_slice`) so that they stay lean.
- server: from the return of the wait's ``select.poll`` (the wake-up) to the
  call of the reply's first ``zmq_msg_send``; ours (own socket) and the
  minimal server waiting the same way (``min poll``), each called by the
  minimal client. Only calls that woke the wait count: under valgrind the
  server's work after its reply is slow enough that the next request is
  sometimes there already (then it is read without a wait). A blocking
  receive (REP, ``min``) waits inside ``zmq_msg_recv``: no comparable mark.

Marks are callgrind dumps (``--dump-after=zmq_msg_recv``,
``--dump-after=select_poll_poll``, ``--dump-before=zmq_msg_send``,
``--separate-threads=yes``), summed per stretch between two marks.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack  # type: ignore[import-untyped]

try:
    from bench import _floors, _minimal, percall
    from bench import _harness as h
except ModuleNotFoundError:  # run as a file: the package is not on the path
    raise SystemExit("run it as: python -m bench.critical") from None

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

SMALL = _floors.SMALL
WARM = 300
"""Untimed calls each client makes first."""
BLOCK_WARM = 10
"""Untimed calls at the start of each block (they bring the pairing back into the caches)."""
PAIRINGS: dict[str, tuple[str, str]] = {
    "raw": ("raw", "raw"),
    "min": ("min", "min"),
    "our client": ("min", "ours"),
    "our server": ("own", "min"),
    "ours": ("own", "ours"),
    "min poll": ("min-poll", "min"),
}
"""Pairing -> (server kind, client kind). The first five are the default (`DEFAULT`); ``min
poll`` is the minimal server waiting in ``select.poll`` as ours does (what that wait costs)."""
DEFAULT = ("raw", "min", "our client", "our server", "ours")
RECV = h.Mark("after", "zmq_msg_recv")
SEND = h.Mark("before", "zmq_msg_send")
WAKE = h.Mark("after", "select_poll_poll")
"""The return of a ``select.poll().poll()``: our server's and the minimal server's wait, our
client's general wait."""
POLL = h.Mark("after", "zmq_poll")
"""A readiness check: our client's general wait makes one before it receives, the lean one none."""
MARKS = {"client": (RECV, WAKE, POLL, SEND), "server": (WAKE, SEND)}
"""The marks each side is run with (a mark between two others splits their stretch)."""


# -- the processes ---------------------------------------------------------------------


def serve(kind: str) -> None:
    """Serve one kind (``raw``, ``min``, ``min-poll``, ``own``) until stdin closes."""
    if kind in ("min", "min-poll"):
        _minimal.serve(poll=kind == "min-poll")
    elif kind in ("raw", "own"):
        percall.serve(kind)
    else:
        raise SystemExit(f"unknown server kind {kind!r}")


def caller(kind: str, endpoint: str) -> tuple[Callable[[], object], Callable[[], None]]:
    """One sequential call of `kind`'s client (``raw``, ``min``, ``ours``) and how to close it."""
    if kind == "raw":
        floors = _floors.Floors(endpoint)  # (no receive timeout: libzmq's least work)
        req, body = floors.req, _floors.request(SMALL)
        unpackb = msgpack.unpackb

        def raw_call() -> None:  # the floor does no encoding work: a request packed once
            req.send(body)
            unpackb(req.recv())

        return raw_call, floors.close
    if kind == "min":
        client = _minimal.MinimalClient(endpoint)
        return (lambda: client.call(SMALL)), client.close
    if kind == "ours":
        import transport  # noqa: PLC0415

        conn = transport.connect(endpoint, timeout=60)
        proxy = conn.proxy("sink")
        return (lambda: proxy.echo(SMALL).get()), conn.close
    raise SystemExit(f"unknown client kind {kind!r}")


def widen_lean_slice(ms: int) -> None:
    """For a measurement only: our client's lean wait blocks up to `ms` instead of 2 ms.

    The one place this benchmark sets a private name of the runtime
    (``transport/_connection.py``'s slice, read when a connection is made and
    at each wait); nothing public sets it, and the runtime keeps no option
    that exists only for benchmarks. The lean path's code is the same: only
    which calls take it changes.
    """
    from transport import _connection  # noqa: PLC0415

    _connection._LEAN_SLICE_MS = ms
    _connection._LEAN_SLICE = ms / 1000


def client(kind: str, endpoint: str, lean_slice_ms: int | None = None) -> None:
    """Warm up, print ``ready``, then obey stdin: ``time N W`` or ``run N``; stop at its end.

    ``time N W``: `W` untimed calls, then `N` timed ones; prints their latencies
    (ns, one line). ``run N``: `N` calls; prints ``done``. With `lean_slice_ms`,
    `widen_lean_slice` first.
    """
    if lean_slice_ms is not None:
        widen_lean_slice(lean_slice_ms)
    call, close = caller(kind, endpoint)
    try:
        for _ in range(WARM):
            call()
        h.freeze_startup()
        print("ready", flush=True)
        for line in sys.stdin:
            command, *numbers = line.split()
            if command == "time":
                n, warm = int(numbers[0]), int(numbers[1])
                samples = h.timed_calls(call, n + warm)[warm:]
                print(" ".join(str(round(s * 1e9)) for s in samples), flush=True)
            else:
                for _ in range(int(numbers[0])):
                    call()
                print("done", flush=True)
    finally:
        close()


@contextlib.contextmanager
def pairing(
    server_kind: str, client_kind: str, *, server_wrapper: Sequence[str] = (),
    client_wrapper: Sequence[str] = (), client_args: Sequence[str] = (),
) -> Any:  # fmt: skip
    """A server process and a client process (ready); yields (server, client)."""
    slow = 600.0 if server_wrapper or client_wrapper else 120.0
    env = {"PYTHONHASHSEED": "0"}
    with (
        h.spawn("bench.critical", "--serve", server_kind, wrapper=server_wrapper,
                start_timeout=slow, env=env) as server,
        h.spawn("bench.critical", "--client", client_kind, server.line, *client_args,
                wrapper=client_wrapper, start_timeout=slow, env=env) as cli,
    ):  # fmt: skip
        if cli.line != "ready":
            raise RuntimeError(f"client {client_kind}: {cli.line!r} instead of 'ready'")
        yield server, cli


# -- latency ---------------------------------------------------------------------------


def _timed_block(cli: h.Server) -> Callable[[int], list[float]]:
    def run(size: int) -> list[float]:
        line = cli.command(f"time {size} {BLOCK_WARM}", timeout=120)
        return [int(ns) / 1e9 for ns in line.split()]

    return run


def latency(
    rounds: int, block: int = 250, names: Sequence[str] = DEFAULT
) -> dict[str, dict[str, float]]:
    """Each pairing's sequential call p50 and p99 (µs), in `rounds` alternating blocks."""
    with contextlib.ExitStack() as stack:
        runs = {}
        for name in names:
            _, cli = stack.enter_context(pairing(*PAIRINGS[name]))
            runs[name] = _timed_block(cli)
        samples = h.interleaved_blocks(runs, rounds * block, block)
    return {
        name: {"p50 us": h.pct(s, 0.5) * 1e6, "p99 us": h.pct(s, 0.99) * 1e6, "calls": len(s)}
        for name, s in samples.items()
    }


def shares(lat: dict[str, dict[str, float]]) -> dict[str, float]:
    """What each side adds over the minimal peers (p50, µs), and what both add together."""
    p50 = {name: values["p50 us"] for name, values in lat.items()}
    return {
        "client": p50["our client"] - p50["min"],
        "server": p50["our server"] - p50["min"],
        "both": p50["ours"] - p50["min"],
    }


# -- callgrind -------------------------------------------------------------------------


def client_paths(dumps: Sequence[h.Dump]) -> dict[str, list[int]]:
    """The client's critical path per call (a thread's dumps), by how the call waited.

    Between the request's send and the reply's receive: ``lean``, no mark (a
    blocking receive); ``general``, a ``select.poll`` (our client's general
    wait, which slept); ``checked``, a readiness check (``zmq_poll``) but no
    ``select.poll``: the general wait finding the reply there already, or a
    lean wait after the once-a-second sweep of expired calls. Only calls whose
    send follows a receive's return count (the reply's, or in the rare case of
    an empty receive after a wake-up, that one).
    """
    paths: dict[str, list[int]] = {"lean": [], "general": [], "checked": []}
    way = "lean"
    for before, dump in itertools.pairwise(dumps):
        if dump.mark == WAKE:
            way = "general"
        elif dump.mark == POLL and way == "lean":
            way = "checked"
        elif dump.mark == SEND:
            if before.mark == RECV:
                paths[way].append(dump.instructions)
            way = "lean"
    return paths


def server_path(dumps: Sequence[h.Dump]) -> list[int]:
    """The server's critical path per call: from the wait's wake-up to the reply's first send."""
    return h.spans(dumps, WAKE, SEND)


def _summary(values: list[int], calls: int) -> dict[str, float]:
    return {
        "median": float(statistics.median(values)) if values else float("nan"),
        "calls": len(values),
        "of": calls,
    }


def count(
    side: str, server_kind: str, client_kind: str, calls: int, lean_slice_ms: int | None = None
) -> dict[str, Any]:
    """One side's critical path under callgrind, over a window of `calls` calls.

    `lean_slice_ms`: `widen_lean_slice` in our client (when it is the side counted).
    """
    widen = lean_slice_ms is not None and side == "client" and client_kind == "ours"
    client_args = ("--lean-slice", str(lean_slice_ms)) if widen else ()
    with tempfile.TemporaryDirectory(prefix="bench-critical-") as tmp:
        out = str(Path(tmp, "cg"))
        wrapped = h.marked_callgrind(out, MARKS[side])
        with pairing(
            server_kind, client_kind, server_wrapper=wrapped if side == "server" else (),
            client_wrapper=wrapped if side == "client" else (), client_args=client_args,
        ) as (server, cli):  # fmt: skip
            assert cli.command("run 20", timeout=600) == "done"
            measured = server if side == "server" else cli
            h.instrument(measured.pid, on=True)
            assert cli.command(f"run {calls}", timeout=600) == "done"
            h.instrument(measured.pid, on=False)
        threads = h.read_dumps(out)
    if side == "client":
        paths = max((client_paths(d) for d in threads.values()),
                    key=lambda p: sum(map(len, p.values())), default=None)  # fmt: skip
        paths = paths or {"lean": [], "general": [], "checked": []}
        return {way: _summary(values, calls) for way, values in paths.items()}
    path = max((server_path(d) for d in threads.values()), key=len, default=[])
    return {"wake-up": _summary(path, calls)}


COUNTED = {
    "client": {"raw": ("raw", "raw"), "min": ("min", "min"), "ours": ("min", "ours")},
    "server": {"min poll": ("min-poll", "min"), "ours": ("own", "min")},
}
"""Side -> series -> (server kind, client kind)."""


def instructions(calls: int, lean_slice_ms: int | None = None) -> dict[str, dict[str, Any]]:
    """Every side's and series' critical path (`count`)."""
    return {
        side: {name: count(side, *kinds, calls, lean_slice_ms) for name, kinds in series.items()}
        for side, series in COUNTED.items()
    }


def instruction_rows(counted: dict[str, dict[str, Any]]) -> list[h.Row]:
    """Rows: each side's critical path per series (ours split by how our client waited)."""
    made = []
    for side, series in counted.items():
        values: dict[str, float] = {}
        notes = []
        for name, ways in series.items():
            split = side == "client" and name == "ours"  # our client waits two ways
            for way, summary in ways.items():
                if not summary["calls"]:
                    continue
                label = f"{name} ({way})" if split else name
                if way != "checked":  # (a mix of two ways: counted, not shown)
                    values[label] = summary["median"]
                if split or summary["calls"] < summary["of"] * 0.9:
                    notes.append(f"{label}: {summary['calls']} of {summary['of']} calls")
        floor = next((name for name in ("raw", "min", "min poll") if name in values), None)
        made.append(h.Row(
            f"{side} critical path", values, unit="instructions/call", floor=floor,
            note="; ".join(notes),
        ))  # fmt: skip
    return made


# -- the command line -------------------------------------------------------------------


def main() -> None:
    parser = h.parser(__doc__)
    parser.add_argument("--rounds", type=int, default=40, help="alternating blocks per pairing")
    parser.add_argument("--block", type=int, default=250, help="timed calls per block")
    parser.add_argument("--callgrind", action="store_true",
                        help="also count each side's critical path (a few minutes)")  # fmt: skip
    parser.add_argument("--calls", type=int, default=200, help="calls counted by --callgrind")
    parser.add_argument("--pairings", default=",".join(DEFAULT),
                        help=f"comma-separated, of: {', '.join(PAIRINGS)}")  # fmt: skip
    parser.add_argument(
        "--lean-slice", type=int, metavar="MS",
        help="with --callgrind: our client's lean wait blocks up to MS (the runtime's: 2), so "
        "that valgrind's slowness keeps it lean",
    )  # fmt: skip
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=2, help=argparse.SUPPRESS)
    out = h.Output.parse(parser, "bench.critical")
    options = out.options
    if options.serve:
        serve(options.serve)
        return
    if options.client:
        client(options.client[0], options.client[1], options.lean_slice)
        return
    results: dict[str, Any] = {}
    names = options.pairings.split(",")
    unknown = set(names) - set(PAIRINGS)
    if unknown or not set(DEFAULT[:2]) <= set(names):
        parser.error(f"--pairings: raw and min, and any of {', '.join(PAIRINGS)}")
    lat = results["latency"] = latency(options.rounds, options.block, names)
    out.compare("sequential call, each pairing in alternating blocks (noisy under load)", [
        h.Row(f"call {q}", {k: v[f"{q} us"] for k, v in lat.items()}, unit="us", floor="raw")
        for q in ("p50", "p99")
    ])  # fmt: skip
    if set(DEFAULT) <= set(names):
        share = results["shares us"] = shares(lat)
        out.compare("each side's share: ours minus the minimal peer's p50", [
            h.Row("added over min", share, unit="us",
                  note="client: our client - min; server: our server - min; both: ours - min"),
        ])  # fmt: skip
    if options.callgrind:
        counted = results["callgrind"] = instructions(options.calls, options.lean_slice)
        for side, row in zip(COUNTED, instruction_rows(counted), strict=True):
            out.compare(f"instructions on the {side}'s critical path, per call (callgrind; they "
                        "do not move with load)", [row])  # fmt: skip
    out.finish(results)


if __name__ == "__main__":
    main()
