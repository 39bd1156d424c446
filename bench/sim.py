"""Simulator benchmark: steps per second, a 4 x 100 schedule, an hour of heartbeats.

Run: ``python -m bench.sim`` (``--quick`` for fewer repetitions).

* One schedule of 4 sender managers x 100 casts to one manager (target: < 50 ms),
  beside the same work on real threads.
* Steps per second of that schedule.
* One hour of virtual time for 3 nodes running services with 10 s heartbeats
  into a real SQLite file (target: < 1 s), beside the real-thread equivalent
  (a TimerActor on a manual clock driving the same three services).
Medians over repetitions; the machine is shared, so expect noise.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from actors import Manager, ManualClock, Service, TimerActor, periodic_task
from actors.db import Database
from actors.testing import Simulation
from bench._stats import median_of, print_table
from tests.testing._systems import Sender, Store


def sim_4x100() -> tuple[float, int]:
    start = time.perf_counter()
    with Simulation(seed=1) as sim:
        store = sim.start(Store, host="h")
        senders = [sim.start(Sender, host="h", store=store) for _ in range(4)]
        for i, sender in enumerate(senders):
            sender.proxy().send.defer(i, 100)
        sim.run()
        assert len(store.proxy().log.get()) == 400
        steps = sim.scheduler.steps
    return time.perf_counter() - start, steps


def threads_4x100() -> float:
    start = time.perf_counter()
    store = Store.start(host="h")
    senders = [Sender.start(host="h", store=store) for _ in range(4)]
    try:
        for i, sender in enumerate(senders):
            sender.proxy().send.defer(i, 100)
        for sender in senders:
            sender.stop()
        assert len(store.proxy().log.get(timeout=10)) == 400
    finally:
        store.stop()
    return time.perf_counter() - start


def sim_hour() -> float:
    start = time.perf_counter()
    with Simulation(seed=1) as sim:
        for host in ("n1", "n2", "n3"):
            sim.service(Store, host=host, topic="store", report_interval=10)
        sim.advance(3600)
        rows = sim.directory().services("store")
        assert [r.report_count for r in rows] == [360, 360, 360]
    return time.perf_counter() - start


def sim_hour_ticks_only() -> float:
    """The same hour without the database: what the scheduler itself costs."""
    start = time.perf_counter()
    with Simulation(seed=1) as sim:
        tickers = [sim.start(Beat, host=host) for host in ("n1", "n2", "n3")]
        sim.advance(3600)
        assert [t.proxy().beats.get() for t in tickers] == [361, 361, 361]
    return time.perf_counter() - start


class Beat(Manager):
    """A manager whose only work is a 10 s periodic task."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.beats = 0

    @periodic_task(spacing=10, run_immediately=True)
    def beat(self, context: Any) -> None:
        self.beats += 1


def threads_hour() -> float:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        clock = ManualClock()
        timer = TimerActor.start(clock=clock)
        services = [
            Service(Store, host=host, db=db, timer=timer, topic="store", report_interval=10,
                    periodic_fuzzy_delay=0, clock=clock)
            for host in ("n1", "n2", "n3")
        ]  # fmt: skip
        try:
            for svc in services:
                svc.start()
            timer.proxy().advance(3600).get(timeout=600)
        finally:
            for svc in services:
                svc.stop()
            timer.stop()
            db.dispose()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    steps = sim_4x100()[1]
    sim_s, _ = median_of(repeats, lambda: sim_4x100()[0])
    thr_s, _ = median_of(repeats, threads_4x100)
    hour_s, _ = median_of(max(1, repeats // 2), sim_hour)
    thr_hour_s, _ = median_of(1, threads_hour)
    ticks_s, _ = median_of(repeats, sim_hour_ticks_only)
    print_table(
        "simulator (medians; shared 2-core machine, expect noise)",
        ["measure", "simulation", "real threads", "target"],
        [
            ["4 senders x 100 casts", f"{sim_s * 1000:.1f} ms", f"{thr_s * 1000:.1f} ms",
             "< 50 ms"],
            ["steps per second", f"{steps / sim_s:,.0f}", "-", "-"],
            ["1 h virtual, 3 nodes, 10 s heartbeats", f"{hour_s:.2f} s",
             f"{thr_hour_s:.2f} s", "< 1 s"],
            ["  the same hour, periodic ticks only (no database)", f"{ticks_s:.2f} s", "-", "-"],
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
