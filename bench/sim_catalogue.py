"""The catalogue table: how fast the simulator finds each planted bug, and real threads.

Run: ``python -m bench.sim_catalogue`` (``--seeds 20 --max-examples 1000``;
``--demo 500`` also runs the demo invariant over that many faulty schedules).

For each bug of tests/testing/catalogue.py and each hypothesis seed: the number
of examples until the first failure (generation only), then the length of the
shrunk trace. Beside it: how many of the same scenario's runs on real threads
(the local bugs; the network ones need faults the loopback cannot produce)
fail in the same wall time.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import pykka
from hypothesis import Phase, given, seed, settings

from actors import Manager, ManualClock, TimerActor
from actors.testing import Schedule, Simulation, schedules

try:
    from bench import _harness as h
except ModuleNotFoundError:  # run as a file: the package is not on the path
    raise SystemExit("run it as: python -m bench.sim_catalogue") from None
from tests.testing._demo import check_invariant, run_demo
from tests.testing.catalogue import BUGS, Bug

COLUMNS = ["bug", "examples median / worst", "found in", "shrunk trace lines (3 seeds)",
           "simulator time", "real threads, same time"]  # fmt: skip


def examples_to_find(bug: Bug, hseed: int, limit: int) -> int | None:
    count = [0]

    @seed(hseed)
    @settings(max_examples=limit, database=None, phases=[Phase.generate], deadline=None)
    @given(schedule=schedules(faults=bug.faults))
    def prop(schedule: Schedule) -> None:
        count[0] += 1
        with Simulation(schedule) as sim:
            bug.scenario(sim)

    try:
        prop()
    except AssertionError:
        return count[0]
    return None


def shrunk_length(bug: Bug, hseed: int, limit: int) -> int:
    last: list[Schedule] = []

    @seed(hseed)
    @settings(max_examples=limit, database=None, phases=[Phase.generate, Phase.shrink],
              deadline=None)  # fmt: skip
    @given(schedule=schedules(faults=bug.faults))
    def prop(schedule: Schedule) -> None:
        last.append(schedule)
        with Simulation(schedule) as sim:
            bug.scenario(sim)

    try:
        prop()
    except AssertionError as exc:
        notes = "\n".join(getattr(exc, "__notes__", []))
        trace = notes.split("simulation trace")[-1].split("replay with")[0]
        return len(trace.strip().splitlines()) - 1
    return -1


class _Threads:
    """The part of `Simulation`'s surface the local scenarios use, on real threads."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.refs: list[pykka.ActorRef[Any]] = []
        self.timer = TimerActor.start(clock=self.clock)

    def start(self, cls: type[Manager], host: str = "h", **kwargs: Any) -> pykka.ActorRef[Any]:
        ref: pykka.ActorRef[Any] = cls.start(host=host, clock=self.clock, **kwargs)
        self.refs.append(ref)
        self.timer.proxy().register(ref, initial_delay=0.0).get(timeout=10)
        return ref

    def run(self) -> None:
        for ref in self.refs:  # a round trip through each mailbox: earlier messages ran
            ref.proxy().periodic_spacing.get(timeout=10)
        for ref in self.refs:
            ref.proxy().periodic_spacing.get(timeout=10)

    def advance(self, seconds: float) -> None:
        self.timer.proxy().advance(seconds).get(timeout=30)
        self.run()

    def close(self) -> None:
        for ref in [*self.refs, self.timer]:
            ref.stop()


def real_thread_finds(bug: Bug, seconds: float) -> tuple[int, int] | None:
    if bug.faults:
        return None
    deadline = time.perf_counter() + seconds
    runs = found = 0
    while time.perf_counter() < deadline:
        world = _Threads()
        try:
            bug.scenario(world)  # type: ignore[arg-type]
        except AssertionError:
            found += 1
        finally:
            world.close()
        runs += 1
    return found, runs


def main() -> None:
    parser = h.parser(__doc__, plot=False)
    parser.add_argument("--seeds", type=int, default=20, help="hypothesis seeds per bug")
    parser.add_argument("--max-examples", type=int, default=1000, help="examples per seed")
    parser.add_argument("--demo", type=int, default=0, help="faulty schedules of the demo")
    out = h.Output.parse(parser, "bench.sim_catalogue")
    args = out.options
    rows = []
    for bug in BUGS:
        start = time.perf_counter()
        counts = [examples_to_find(bug, s, args.max_examples) for s in range(args.seeds)]
        spent = time.perf_counter() - start
        found = [c for c in counts if c is not None]
        shrunk = [shrunk_length(bug, s, args.max_examples) for s in range(min(3, args.seeds))]
        real = real_thread_finds(bug, spent)
        rows.append([
            bug.name,
            f"{statistics.median(found):g} / {max(found)}" if found else "-",
            f"{len(found)}/{args.seeds}",
            " ".join(map(str, shrunk)),
            f"{spent:.1f} s",
            "n/a (needs faults)" if real is None else f"{real[0]} of {real[1]} runs",
        ])  # fmt: skip
    out.table(
        f"planted bugs: hypothesis examples to find, {args.seeds} seeds, "
        f"<= {args.max_examples} each (shared machine: times are noisy)",
        COLUMNS,
        rows,
    )  # fmt: skip
    if args.demo:
        start = time.perf_counter()
        for n in range(args.demo):
            with Simulation(seed=n, faults=True, database="sqlite://") as sim:
                check_invariant(run_demo(sim))
        out.print(f"demo invariant held over {args.demo} faulty schedules "
                  f"({time.perf_counter() - start:.1f} s)")  # fmt: skip
    out.finish({"columns": COLUMNS, "rows": rows})


if __name__ == "__main__":
    main()
