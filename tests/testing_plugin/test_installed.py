"""The plugin reaches a user's project through the installed ``pytest11`` entry point."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

USER_TEST = """
from actors import ManualClock
from actors.demo import VolumeManager

def test_every_fixture(manual_clock, actor_factory, cluster, leak_check):
    assert isinstance(manual_clock, ManualClock)
    ref = actor_factory(VolumeManager, host="h1")
    assert ref.proxy().list_volumes().get(timeout=10) == []
    c = cluster(n=1, services=[VolumeManager])
    assert c.proxy("volume", host="node-1").list_volumes().get(timeout=10) == []
"""


def test_the_entry_point_names_the_plugin_module() -> None:
    found = entry_points(group="pytest11", name="actors")
    assert [ep.value for ep in found] == ["actors.testing._plugin"]


def test_a_fresh_pytest_process_gets_the_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["plugins:*actors-*"])


def test_without_the_plugin_the_fixtures_are_unknown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest("-p", "no:actors")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'manual_clock' not found*"])
