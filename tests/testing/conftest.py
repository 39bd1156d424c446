"""The simulator's own tests use its ``sim`` fixture (the plugin will provide it too)."""

from actors.testing._simfixture import pytest_configure, pytest_runtest_makereport, sim

__all__ = ["pytest_configure", "pytest_runtest_makereport", "sim"]
