"""Fidelity at scale: tests/test_ordering.py's property over many simulated schedules.

Run: ``python -m bench.sim_fidelity`` (``--schedules 10000``).

Each schedule draws 1-4 senders with 1-25 operations each (call, call read
later, cast), as the hypothesis test does, runs them under
``Simulation(seed=n)`` with faults off, and checks that every sender's
messages applied in order, none lost, none twice, none overlapping, and that
every call saw all of its sender's earlier messages applied.
"""

from __future__ import annotations

import random
import time

from actors.testing import Simulation

try:
    from bench import _harness as h
except ModuleNotFoundError:  # run as a file: the package is not on the path
    raise SystemExit("run it as: python -m bench.sim_fidelity") from None
from tests.testing.test_fidelity import Client, Ledger

OPS = ("call", "call_later", "cast")


def one(seed: int) -> int:
    rng = random.Random(seed)
    plans = [
        [rng.choice(OPS) for _ in range(rng.randint(1, 25))] for _ in range(rng.randint(1, 4))
    ]
    with Simulation(seed=seed) as sim:
        ledger = sim.start(Ledger, host="h")
        clients = [sim.start(Client, host=f"c{i}") for i in range(len(plans))]
        futures = [
            c.proxy().play(ledger, i, ops)
            for i, (c, ops) in enumerate(zip(clients, plans, strict=True))
        ]
        sim.run()
        problems = [p for f in futures for p in f.get()]
        assert not problems, problems
        log = ledger.proxy().log.get()
        for sender, ops in enumerate(plans):
            assert [seq for s, seq in log if s == sender] == list(range(len(ops)))
        assert len(log) == sum(map(len, plans))
        assert ledger.proxy().overlaps.get() == 0
        return sim.scheduler.steps


def main() -> None:
    parser = h.parser(__doc__, plot=False)
    parser.add_argument("--schedules", type=int, default=10_000, help="how many schedules")
    out = h.Output.parse(parser, "bench.sim_fidelity")
    args = out.options
    start = time.perf_counter()
    steps = sum(one(n) for n in range(args.schedules))
    spent = time.perf_counter() - start
    out.print(
        f"ordering property held over {args.schedules:,} schedules ({steps:,} steps) "
        f"in {spent:.1f} s: {spent / args.schedules * 1000:.2f} ms per schedule, "
        f"{steps / spent:,.0f} steps/s (shared machine: noisy)"
    )
    out.finish({"schedules": args.schedules, "steps": steps, "seconds": spent})


if __name__ == "__main__":
    main()
