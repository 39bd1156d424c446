"""The simulator finds every planted bug of the catalogue, and shrinks it to a short trace."""

from __future__ import annotations

import pytest
from hypothesis import Phase, given, seed, settings

from actors.testing import Schedule, Simulation, schedules
from tests.testing.catalogue import BUGS, Bug


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_the_simulator_finds_and_shrinks(bug: Bug) -> None:
    runs: list[Schedule] = []

    @seed(1)
    @settings(max_examples=300, database=None, phases=[Phase.generate, Phase.shrink])
    @given(schedule=schedules(faults=bug.faults))
    def prop(schedule: Schedule) -> None:
        runs.append(schedule)
        with Simulation(schedule) as sim:
            bug.scenario(sim)

    with pytest.raises(AssertionError) as info:
        prop()
    notes = "\n".join(getattr(info.value, "__notes__", []))
    token = notes.split("Simulation(replay='")[1].split("'")[0]
    trace = notes.split("simulation trace")[-1].split("replay with")[0]
    assert len(trace.strip().splitlines()) <= 40, trace
    with Simulation(replay=token, faults=bug.faults) as sim, pytest.raises(AssertionError):
        bug.scenario(sim)  # the token replays the failure in a plain test


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_seeds_find_it_too(bug: Bug) -> None:
    for n in range(300):
        try:
            with Simulation(seed=n, faults=bug.faults) as sim:
                bug.scenario(sim)
        except AssertionError:
            return
    pytest.fail(f"{bug.name}: not found in 300 seeds")
