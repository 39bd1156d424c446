"""hypothesis integration: `schedules()` draws every decision of a simulation.

Each decision is an integer drawn from hypothesis, 0 meaning plain arrival
order (or no fault), so a failing example shrinks toward the fewest deviations
from plain order and the fewest faults. The falsifying example prints as its
replay token and the trace of its run.
"""

from __future__ import annotations

import contextlib
import random  # noqa: TC003  (hypothesis builds the Schedule with it)
from typing import TYPE_CHECKING

from actors.testing._choices import DrawChooser
from actors.testing._network import Faults

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from actors.testing._simulation import Simulation

__all__ = ["Schedule", "schedules"]


class Schedule:
    """The decisions of one simulation run, drawn by hypothesis; pass it to `Simulation`."""

    def __init__(self, rnd: random.Random, faults: Faults | bool) -> None:
        self._rnd = rnd
        self.faults: Faults = Faults() if faults is True else (faults or Faults.none())
        self._chooser: DrawChooser | None = None
        self._report = ""
        self.trace_lines = 0

    def chooser(self) -> DrawChooser:
        """The chooser a `Simulation` draws from (one simulation per schedule)."""
        if self._chooser is not None:
            msg = "a Schedule drives one Simulation; draw another for the next"
            raise RuntimeError(msg)
        self._chooser = DrawChooser(self._rnd)
        return self._chooser

    def finished(self, sim: Simulation) -> None:
        """Remember the run's trace and token for the failure report."""
        self._report = sim.trace.report()
        self.trace_lines = len(sim.trace)
        with contextlib.suppress(Exception):
            from hypothesis import currently_in_test_context, note  # noqa: PLC0415

            if currently_in_test_context():
                note(self._report)

    def __repr__(self) -> str:
        if self._chooser is None:
            return "Schedule(<not run>)"
        from actors.testing._choices import encode_token  # noqa: PLC0415

        return f"Schedule(replay={encode_token(self._chooser.recorded)!r})"


def schedules(*, faults: Faults | bool = False) -> SearchStrategy[Schedule]:
    """A hypothesis strategy of simulation schedules.

    Example::

        @given(schedule=schedules(faults=True))
        def test_it(schedule):
            with Simulation(schedule) as sim:
                ...

    Args:
        faults: ``True`` for the default `Faults`, a `Faults`, or ``False``
            (interleavings only).
    """
    from hypothesis import strategies as st  # noqa: PLC0415

    randoms = st.randoms(use_true_random=False, note_method_calls=False)
    return st.builds(Schedule, randoms, st.just(faults))
