"""In-process benchmark: the cost of a Manager over bare pykka, and one timer pass.

Run: ``python -m bench.core`` (``--quick`` for a CI-size run; ``--json FILE``, ``--plot FILE.png``).

* A sequential call through a `Manager` proxy versus the same call through a
  bare `pykka.ThreadingActor` proxy, measured alternately in the same run;
  the ratio's target is at most 1.05.
* One timer pass over 1,000 managers: `TimerActor.advance` on a manual clock,
  (a) over idle managers (none due; the target is under 20 ms) and (b) with
  every manager due (a tick sent, the tasks run, the answer back), beside its
  floor: waking 1,000 parked threads once each. Also RSS growth per manager.
"""

from __future__ import annotations

import gc
import queue
import statistics
import threading
import time
from typing import Any

import pykka

from actors import Manager, ManualClock, TimerActor, periodic_task

try:
    from bench import _harness as h
except ModuleNotFoundError:  # run as a file: the package is not on the path
    raise SystemExit("run it as: python -m bench.core") from None


class BareEcho(pykka.ThreadingActor):
    def echo(self, value: Any) -> Any:
        return value


class ManagerEcho(Manager):
    def echo(self, value: Any) -> Any:
        return value


class Idle(Manager):
    @periodic_task(spacing=1)
    def beat(self, context: Any) -> None:
        pass


def per_call_us(proxy: Any, calls: int) -> float:
    echo = proxy.echo

    def run() -> None:
        for i in range(calls):
            echo(i).get()

    return 1e6 / h.rate_of(calls, run)


def bench_calls(calls: int, repeats: int) -> dict[str, float]:
    bare = BareEcho.start().proxy()
    managed = ManagerEcho.start(host="bench").proxy()
    try:
        per_call_us(bare, calls // 10)  # warm up both
        per_call_us(managed, calls // 10)
        bare_samples: list[float] = []
        managed_samples: list[float] = []
        for _ in range(repeats):  # alternate, so drift hits both alike
            bare_samples.append(per_call_us(bare, calls))
            managed_samples.append(per_call_us(managed, calls))
        bare_med = statistics.median(bare_samples)
        managed_med = statistics.median(managed_samples)
    finally:
        bare.actor_ref.stop()
        managed.actor_ref.stop()
    return {"bare_pykka_us": bare_med, "manager_us": managed_med, "ratio": managed_med / bare_med}


def thread_floor(threads: int) -> float:
    """Milliseconds to wake `threads` parked threads once each (one queue put each)."""
    inboxes: list[queue.SimpleQueue[int | None]] = [queue.SimpleQueue() for _ in range(threads)]
    lock = threading.Lock()
    woken = [0]
    all_woken = threading.Event()

    def park(inbox: queue.SimpleQueue[int | None]) -> None:
        while inbox.get() is not None:
            with lock:
                woken[0] += 1
                if woken[0] == threads:
                    all_woken.set()

    workers = [threading.Thread(target=park, args=(inbox,)) for inbox in inboxes]
    for worker in workers:
        worker.start()

    def once() -> float:
        woken[0] = 0
        all_woken.clear()
        start = time.perf_counter()
        for inbox in inboxes:
            inbox.put(1)
        assert all_woken.wait(30)
        return (time.perf_counter() - start) * 1e3

    try:
        once()
        return h.median_of(9, once)[0]
    finally:
        for inbox in inboxes:
            inbox.put(None)
        for worker in workers:
            worker.join(30)


def bench_timer(managers: int, repeats: int) -> dict[str, float]:
    gc.collect()
    rss_before = h.rss_bytes()
    clock = ManualClock()
    refs = [
        Idle.start(host=f"h{i}", clock=clock, periodic_jitter=lambda: 0.0)
        for i in range(managers)
    ]
    gc.collect()
    rss_per_manager = (h.rss_bytes() - rss_before) / managers
    timer = TimerActor.start(clock=clock).proxy()
    try:
        for ref in refs:
            timer.register(ref, initial_delay=1).get()

        def timed_advance(seconds: float, expect: int) -> float:
            start = time.perf_counter()
            sent = timer.advance(seconds).get()
            elapsed = (time.perf_counter() - start) * 1e3
            assert sent == expect, (sent, expect)
            return elapsed

        # Every manager's task has spacing 1 and is due on each whole second: a pass
        # of advance(1) ticks all of them; advance(0.01) in between finds none due.
        due: list[float] = []
        idle: list[float] = []
        timed_advance(1, managers)  # warm up
        for _ in range(repeats):
            idle.append(timed_advance(0.01, 0))
            due.append(timed_advance(1, managers))
    finally:
        timer.actor_ref.stop()
        for ref in refs:
            ref.stop(block=False)
        for ref in refs:
            ref.actor_stopped.wait(10)
    return {
        "managers": managers,
        "due_pass_ms": statistics.median(due),
        "idle_pass_ms": statistics.median(idle),
        "thread_floor_ms": thread_floor(managers),
        "rss_per_manager_kib": rss_per_manager / 1024,
    }


def main() -> None:
    parser = h.parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="a CI-size run")
    out = h.Output.parse(parser, "bench.core")
    args = out.options
    calls, repeats = (2_000, 5) if args.quick else (10_000, 9)
    call = bench_calls(calls, repeats)
    timer = bench_timer(1_000, 5 if args.quick else 9)
    out.compare(f"Sequential call, in process (median of {repeats} x {calls} calls)", [
        h.Row("call", {"Manager proxy": call["manager_us"],
                       "bare pykka proxy": call["bare_pykka_us"]},
              unit="us", floor="bare pykka proxy", target=h.Target("<=", 1.05)),
    ])  # fmt: skip
    out.compare("Timer pass over 1,000 managers (median)", [
        h.Row("idle managers (none due)", {"pass": timer["idle_pass_ms"]}, unit="ms",
              target=h.Target("<", 20, "ms")),
        h.Row("all due: tick, run, answer",
              {"pass": timer["due_pass_ms"], "wake 1,000 threads once": timer["thread_floor_ms"]},
              unit="ms", floor="wake 1,000 threads once"),
    ])  # fmt: skip
    out.print(f"RSS per idle manager: {timer['rss_per_manager_kib']:.1f} KiB")
    out.finish({"call": call, "timer": timer})


if __name__ == "__main__":
    main()
