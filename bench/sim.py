"""Simulator benchmark: steps per second, a 4 x 100 schedule, an hour of heartbeats.

Run: ``python -m bench.sim`` (``--quick`` for fewer repetitions; ``--json FILE``,
``--plot FILE.png``).

* One schedule of 4 sender managers x 100 casts to one manager (target: < 50 ms),
  beside the same work on real threads.
* Steps per second of that schedule.
* One hour of virtual time for 3 nodes running services with 10 s heartbeats
  into a real SQLite file (target: < 1 s), beside the real-thread equivalent
  (a TimerActor on a manual clock driving the same three services).
Medians over repetitions; the machine is shared, so expect noise.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from actors import Manager, ManualClock, Service, TimerActor, periodic_task
from actors.db import Database
from actors.testing import Simulation

try:
    from bench import _harness as h
except ModuleNotFoundError:  # run as a file: the package is not on the path
    raise SystemExit("run it as: python -m bench.sim") from None
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
    parser = h.parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    out = h.Output.parse(parser, "bench.sim")
    args = out.options
    repeats = 3 if args.quick else 7
    steps = sim_4x100()[1]
    sim_s, _ = h.median_of(repeats, lambda: sim_4x100()[0])
    thr_s, _ = h.median_of(repeats, threads_4x100)
    hour_s, _ = h.median_of(max(1, repeats // 2), sim_hour)
    thr_hour_s, _ = h.median_of(1, threads_hour)
    ticks_s, _ = h.median_of(repeats, sim_hour_ticks_only)
    out.compare("simulator (medians; shared 2-core machine, expect noise)", [
        h.Row("4 senders x 100 casts", {"simulation": sim_s * 1000, "real threads": thr_s * 1000},
              unit="ms", target=h.Target("<", 50, "ms"), figure=sim_s * 1000),
        h.Row("1 h virtual, 3 nodes, 10 s heartbeats",
              {"simulation": hour_s, "real threads": thr_hour_s}, unit="s",
              target=h.Target("<", 1, "s"), figure=hour_s),
        h.Row("the same hour, periodic ticks only (no database)", {"simulation": ticks_s},
              unit="s"),
        h.Row("steps per second", {"simulation": steps / sim_s}, unit="steps/s"),
    ])  # fmt: skip
    out.finish({"steps": steps, "sim_4x100_s": sim_s, "threads_4x100_s": thr_s,
                "sim_hour_s": hour_s, "threads_hour_s": thr_hour_s, "ticks_hour_s": ticks_s})


if __name__ == "__main__":
    main()
