"""The fault tests' client, run inside the client's namespace; prints JSON lines.

``calls ENDPOINT ACTOR``: each sender (a thread with its own connection) calls
``record(sender, seq)`` for seq 0..count-1, one after another, and prints each
call's outcome: ``value``, ``timeout`` or ``error:<type>``, with its duration.
``--casts`` casts instead (outcome ``sent`` or an error); ``--mixed`` casts the
even seqs and calls the odd ones. ``--pause-at 20,60``:
before those seqs every sender stops, ``{"paused": seq}`` is printed, and they go on
when the test writes a line to stdin (so faults land at known points). ``status DB_URL HOST
TOPIC``: waits until the service reads as `--want` (up/down) and prints when.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

import transport
from actors.db import Database, ServiceRecord, service_is_up

_print_lock = threading.Lock()


def emit(**fields: Any) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


def checkpoint(seq: int) -> None:
    """All senders reached `seq`: say so and wait for the test's go (a line on stdin)."""
    emit(paused=seq)
    if not sys.stdin.readline():
        raise SystemExit("stdin closed at a checkpoint")


def sender(args: argparse.Namespace, name: str, barriers: dict[int, threading.Barrier]) -> None:
    conn = transport.connect(
        args.endpoint, timeout=args.timeout,
        keypair=transport.load_keypair(Path(args.keys, "clients", "client.key_secret")),
        server_key=transport.load_public_key(Path(args.keys, "cluster.key")),
    )
    proxy = conn.proxy(args.actor, check=False)  # every call's outcome is recorded, even the first
    pause = threading.Event()
    try:
        for seq in range(args.count):
            if seq in barriers:
                barriers[seq].wait(timeout=120)
            started = time.monotonic()
            try:
                if args.casts or (args.mixed and seq % 2 == 0):
                    proxy.record.defer(name, seq)
                    outcome = "sent"
                else:
                    value = proxy.record(name, seq).get(timeout=args.timeout)
                    outcome = "value" if value == seq else f"wrong:{value!r}"
            except transport.MessagingTimeout:
                outcome = "timeout"
            except Exception as exc:  # every other way a call can end
                outcome = f"error:{type(exc).__name__}"
            emit(sender=name, seq=seq, outcome=outcome, elapsed=time.monotonic() - started)
            if args.interval:
                pause.wait(args.interval)  # pacing the sends, not waiting for a result
    finally:
        conn.close(linger=2.0)
        emit(done=name)


def calls(args: argparse.Namespace) -> None:
    barriers = {
        seq: threading.Barrier(args.senders, action=functools.partial(checkpoint, seq))
        for seq in args.pause_at
    }
    threads = [
        threading.Thread(target=sender, args=(args, f"{args.prefix}{i}", barriers))
        for i in range(args.senders)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def flood(args: argparse.Namespace) -> None:
    """Cast ``slow`` as fast as the connection takes it for `--seconds`; count what happened."""
    conn = transport.connect(
        args.endpoint, timeout=args.timeout,
        keypair=transport.load_keypair(Path(args.keys, "clients", "client.key_secret")),
        server_key=transport.load_public_key(Path(args.keys, "cluster.key")),
    )
    proxy = conn.proxy(args.actor, check=False)  # every call's outcome is recorded, even the first
    payload = b"x" * args.size
    counts: dict[str, int] = {}
    emit(flooding=True)
    deadline = time.monotonic() + args.seconds
    seq = 0
    while time.monotonic() < deadline:
        try:
            proxy.slow.defer(seq, payload)
            outcome = "sent"
        except Exception as exc:  # refused, timed out: counted, and the flood goes on
            outcome = type(exc).__name__
        counts[outcome] = counts.get(outcome, 0) + 1
        seq += 1
    emit(counts=counts)
    conn.close(linger=0)


def status(args: argparse.Namespace) -> None:
    db = Database(f"{args.db}?connect_timeout=1", create=False)
    want_up = args.want == "up"
    deadline = time.monotonic() + args.within
    tick = threading.Event()
    polled = False
    while time.monotonic() < deadline:
        try:
            with db.session() as session:
                row = session.scalars(
                    select(ServiceRecord).where(
                        ServiceRecord.host == args.host, ServiceRecord.topic == args.topic
                    )
                ).one()
            up = service_is_up(row, args.down_time, dt.datetime.now(dt.UTC))
        except Exception:  # the database itself may be what is down
            up = None
        if up is want_up:
            emit(reached=True, at=time.time())
            return
        if not polled:
            polled = True
            emit(polling=True)  # one answer in, not yet as wanted: the test may act now
        tick.wait(0.05)  # polling another host's database, bounded by --within
    emit(reached=False, at=time.time())


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(required=True)
    c = sub.add_parser("calls")
    c.add_argument("endpoint")
    c.add_argument("actor")
    c.add_argument("--senders", type=int, default=1)
    c.add_argument("--count", type=int, default=100)
    c.add_argument("--timeout", type=float, default=1.0)
    c.add_argument("--interval", type=float, default=0.0)
    c.add_argument("--prefix", default="s")
    c.add_argument("--casts", action="store_true")
    c.add_argument("--mixed", action="store_true", help="even seqs cast, odd seqs call")
    c.add_argument("--pause-at", type=lambda text: [int(n) for n in text.split(",")],
                   default=[], help="seqs before which every sender waits for a line on stdin")
    c.add_argument("--keys", required=True, help="the directory of the CURVE keys")
    c.set_defaults(run=calls)
    f = sub.add_parser("flood")
    f.add_argument("endpoint")
    f.add_argument("actor")
    f.add_argument("--seconds", type=float, default=3.0)
    f.add_argument("--size", type=int, default=1024)
    f.add_argument("--timeout", type=float, default=1.0)
    f.add_argument("--keys", required=True)
    f.set_defaults(run=flood)
    s = sub.add_parser("status")
    s.add_argument("db")
    s.add_argument("host")
    s.add_argument("topic")
    s.add_argument("--down-time", type=float, required=True)
    s.add_argument("--want", choices=["up", "down"], required=True)
    s.add_argument("--within", type=float, default=30.0)
    s.set_defaults(run=status)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
