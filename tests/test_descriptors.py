"""The node raises its open-file limit for its managers' own sockets, or says why it cannot."""

from __future__ import annotations

import resource
from typing import TYPE_CHECKING

import pytest

from actors._config import ConfigError
from actors._descriptors import PER_OWN_SOCKET, ensure_descriptors, needed_descriptors

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def limits() -> Iterator[tuple[int, int]]:
    """This process's limits, put back afterwards (lowering the soft one is always allowed)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"the hard open-file limit ({hard}) leaves no room to test raising")
    try:
        yield soft, hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_thousand_own_sockets_need_more_than_the_common_default() -> None:
    assert needed_descriptors(1000, own_sockets=True) > 1024
    assert needed_descriptors(1000, own_sockets=True) - needed_descriptors(
        0, own_sockets=True
    ) == 1000 * PER_OWN_SOCKET
    assert needed_descriptors(1000, own_sockets=False) == needed_descriptors(0, own_sockets=True)


def test_the_soft_limit_is_raised_toward_the_hard_one(limits: tuple[int, int]) -> None:
    _, hard = limits
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    assert ensure_descriptors(2000) == 2000
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (2000, hard)
    assert ensure_descriptors(1500) == 2000  # never lowered


def test_past_the_hard_limit_the_node_stops_with_what_to_change(limits: tuple[int, int]) -> None:
    _, hard = limits
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard limit to exceed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    too_many = hard + 1
    with pytest.raises(ConfigError, match="own_sockets = false") as raised:
        ensure_descriptors(too_many)
    assert "LimitNOFILE" in str(raised.value)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (1024, hard)  # unchanged
