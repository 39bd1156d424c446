"""The ``sim`` fixture."""

from __future__ import annotations

import pytest

from actors.testing import Simulation
from tests.testing._systems import Store

pytest_plugins = ["pytester"]


def test_the_fixture_gives_a_seeded_simulation(sim: Simulation) -> None:
    proxy = sim.start(Store, host="h").proxy()
    proxy.set.defer(5)
    assert proxy.get().get() == 5
    assert "h/Store <- test" in str(sim.trace)


@pytest.mark.simulation(seed=3, faults=True)
def test_the_marker_sets_its_options(sim: Simulation) -> None:
    assert sim.faults.drop_request > 0


def test_a_failing_test_reports_the_trace_and_token(pytester: pytest.Pytester) -> None:
    # The installed plugin (the pytest11 entry point) provides the fixture and the report.
    pytester.makepyfile(
        """
        from actors import Manager

        class Box(Manager):
            def get(self):
                return 1

        def test_fails(sim):
            assert sim.start(Box, host="h9").proxy().get().get() == 2
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*simulation*", "*h9/Box <- test*get()*",
                                 "*replay with: Simulation(replay='sim1.*"])  # fmt: skip
