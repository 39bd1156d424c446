"""Bridge lifecycle and endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import transport
from tests.transport._actors import Echo
from transport._bridge import is_remotely_callable
from transport._security import is_loopback

if TYPE_CHECKING:
    from pathlib import Path


def test_wildcard_port_is_reported() -> None:
    ref = Echo.start()
    with transport.Bridge("tcp://127.0.0.1:*") as bridge:
        bridge.expose("echo", ref)
        assert bridge.endpoint.startswith("tcp://127.0.0.1:")
        assert not bridge.endpoint.endswith("*")
        with transport.connect(bridge.endpoint, timeout=10) as conn:
            assert conn.proxy("echo").add(1, 2).get() == 3


def test_ipc_endpoint(tmp_path: Path) -> None:
    ref = Echo.start()
    endpoint = f"ipc://{tmp_path}/bridge.sock"
    with transport.Bridge(endpoint) as bridge:
        bridge.expose("echo", ref)
        assert bridge.endpoint == endpoint
        with transport.connect(endpoint, timeout=10) as conn:
            assert conn.proxy("echo").echo("over ipc").get() == "over ipc"


def test_expose_after_start_and_unexpose() -> None:
    ref = Echo.start()
    with (
        transport.Bridge("tcp://127.0.0.1:*") as bridge,
        transport.connect(bridge.endpoint, timeout=10) as conn,
    ):
        with pytest.raises(transport.UnknownActor):
            conn.proxy("late").add(1, 1).get()
        bridge.expose("late", ref)
        assert conn.proxy("late").add(1, 1).get() == 2
        bridge.unexpose("late")
        with pytest.raises(transport.UnknownActor):
            conn.proxy("late").add(1, 1).get()


def test_dead_actor_is_unknown() -> None:
    ref = Echo.start()
    with transport.Bridge("tcp://127.0.0.1:*") as bridge:
        bridge.expose("echo", ref)
        ref.stop()
        with (
            transport.connect(bridge.endpoint, timeout=10) as conn,
            pytest.raises(transport.UnknownActor),
        ):
            conn.proxy("echo").add(1, 1).get()


@pytest.mark.parametrize("endpoint", ["tcp://0.0.0.0:*", "tcp://*:5555", "tcp://10.1.2.3:*"])
def test_refuses_insecure_non_loopback_bind(endpoint: str) -> None:
    with pytest.raises(ValueError, match="without CURVE keys"):
        transport.Bridge(endpoint)
    transport.Bridge(endpoint, allow_insecure=True)  # allowed when asked (not started)


@pytest.mark.parametrize(
    ("endpoint", "local"),
    [
        ("tcp://127.0.0.1:*", True),
        ("tcp://127.3.2.1:80", True),
        ("tcp://[::1]:80", True),
        ("tcp://localhost:80", True),
        ("ipc:///tmp/x", True),
        ("inproc://x", True),
        ("tcp://0.0.0.0:1", False),
        ("tcp://eth0:1", False),
        ("tcp://192.168.0.1:1", False),
    ],
)
def test_is_loopback(endpoint: str, local: bool) -> None:
    assert is_loopback(endpoint) is local


def test_keys_need_an_allow_list() -> None:
    with pytest.raises(ValueError, match="allowed_clients"):
        transport.Bridge("tcp://127.0.0.1:*", keypair=transport.generate_keypair())


def test_bind_failure_raises_from_start() -> None:
    with transport.Bridge("tcp://127.0.0.1:*") as first:
        second = transport.Bridge(first.endpoint)
        with pytest.raises(Exception, match="Address already in use"):
            second.start()
        second.stop()


def test_stop_is_idempotent_and_drops_late_replies() -> None:
    bridge = transport.Bridge("tcp://127.0.0.1:*")
    bridge.start()
    bridge.stop()
    bridge.stop()


def test_hidden_names() -> None:
    assert is_remotely_callable(Echo, "add")
    for name in ("stop", "on_receive", "init_host", "reset", "run_periodic_tasks",
                 "lifecycle_only", "_x", "not_a_method", "a_property",
                 "actor_ref", "actor_inbox", "missing"):  # fmt: skip
        assert not is_remotely_callable(Echo, name), name
