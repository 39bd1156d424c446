"""Server side of ``bench.scaling``: managers on one bridge, in a child process.

    python -m bench._scaling_server managers N   # N echo managers "m0".."m{N-1}"
    python -m bench._scaling_server memory       # grows on command, times the timer

Each prints a first line (the bridge's endpoint) and serves until its stdin
closes. ``memory`` also reads commands from stdin, one a line, and answers each
with one line: ``grow N`` (start managers up to N in all, expose them; answers
``ok``) and ``timer R`` (one all-due pass, then R idle passes; answers JSON).
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from typing import Any

import pykka

import transport
from actors import Manager, ManualClock, TimerActor
from bench import _harness as h
from bench.core import Idle

IDLE_STEP = 2.0**-6  # exact in binary, so the clock returns to whole seconds


class ScaleEcho(Manager):
    """An echo manager that also notes when fan-out casts reach it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.last_hit: tuple[int, float] = (0, 0.0)

    def echo(self, value: Any) -> Any:
        return value

    def hit(self, seq: int) -> None:
        # CLOCK_MONOTONIC is system-wide on Linux: the client can compare it.
        self.last_hit = (seq, time.monotonic())

    def seen(self) -> tuple[int, float]:
        return self.last_hit


def stop_all(refs: list[pykka.ActorRef[Any]]) -> None:
    for ref in refs:
        ref.stop(block=False)
    for ref in refs:
        ref.actor_stopped.wait(10)


def serve_managers(count: int) -> None:
    h.serve_exposed({f"m{i}": ScaleEcho.start(host=f"h{i}") for i in range(count)})


def timer_passes(timer: Any, fresh: list[pykka.ActorRef[Any]], reps: int) -> dict[str, Any]:
    """Time one all-due pass and `reps` idle ones; leave the clock on a whole second."""
    for ref in fresh:
        timer.register(ref, initial_delay=1).get(timeout=10)

    def timed(seconds: float) -> tuple[float, int]:
        start = time.perf_counter()
        sent = timer.advance(seconds).get(timeout=60)
        return (time.perf_counter() - start) * 1e3, int(sent)

    due_ms, due_sent = timed(1)  # every manager is due on each whole second
    idle = [timed(IDLE_STEP) for _ in range(reps)]
    timer.advance(1 - IDLE_STEP * reps).get(timeout=60)  # back to a whole second
    return {
        "due_pass_ms": due_ms,
        "due_ticks": due_sent,
        "idle_pass_ms": statistics.median(ms for ms, _ in idle),
        "idle_ticks": sum(sent for _, sent in idle),
    }


def serve_memory(own_sockets: bool = False) -> None:
    refs: list[pykka.ActorRef[Any]] = []
    registered = 0
    clock = ManualClock()
    timer_ref = TimerActor.start(clock=clock)
    timer = timer_ref.proxy()
    bridge = transport.Bridge("tcp://127.0.0.1:*", own_sockets=own_sockets)
    try:
        bridge.start()
        gc.collect()
        print(bridge.endpoint, flush=True)
        for line in sys.stdin:
            command, arg = line.split()
            if command == "grow":
                for i in range(len(refs), int(arg)):
                    ref = Idle.start(host=f"h{i}", clock=clock, periodic_jitter=lambda: 0.0)
                    refs.append(ref)
                    bridge.expose(f"m{i}", ref)
                gc.collect()
                print("ok", flush=True)
            elif command == "endpoints":  # where to call each of the first `arg` managers
                names = [f"m{i}" for i in range(min(int(arg), len(refs)))]
                print(json.dumps({n: bridge.endpoint_of(n) for n in names}), flush=True)
            elif command == "timer":
                result = timer_passes(timer, refs[registered:], int(arg))
                registered = len(refs)
                print(json.dumps(result), flush=True)
    finally:
        bridge.stop()
        timer_ref.stop()
        stop_all(refs)


def main() -> None:
    if sys.argv[1:2] == ["managers"]:
        serve_managers(int(sys.argv[2]))
    elif sys.argv[1:2] == ["memory"]:
        serve_memory(own_sockets=sys.argv[2:3] == ["own"])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
