"""Against a server process: ordering under concurrency, and surviving a SIGKILL."""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import transport
from tests.transport._actors import RECORDERS

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.transport.conftest import ServerProcess

TIMEOUT = 10.0

# One sender's script: (actor index, is_call) per message.
scripts = st.lists(st.tuples(st.integers(0, 2), st.booleans()), min_size=1, max_size=25)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, list[list[tuple[int, bool]]], bool]:
    n_actors = draw(st.integers(1, 3))
    senders = draw(st.lists(scripts, min_size=1, max_size=4))
    shared = draw(st.booleans())
    return n_actors, [[(a % n_actors, c) for a, c in s] for s in senders], shared


def run_sender(
    connection: transport.Connection,
    sender: str,
    script: list[tuple[int, bool]],
    barrier: threading.Barrier,
) -> list[str]:
    """Send the script (calls pipelined with casts), then check what each call saw."""
    problems: list[str] = []
    proxies = [connection.proxy(name) for name in RECORDERS]
    barrier.wait()
    calls: list[tuple[int, int, Any]] = []
    for seq, (actor, is_call) in enumerate(script):
        if is_call:
            calls.append((seq, actor, proxies[actor].call_record(sender, seq)))
        else:
            proxies[actor].record.defer(sender, seq)
    for seq, actor, future in calls:
        seen = future.get(timeout=TIMEOUT)
        expected = [s for s, (a, _) in enumerate(script) if a == actor and s <= seq]
        if seen != expected:
            problems.append(f"{sender} call {seq} on rec{actor} saw {seen}, want {expected}")
    for actor in {a for a, _ in script}:
        final = proxies[actor].entries(sender).get(timeout=TIMEOUT)
        expected = [s for s, (a, _) in enumerate(script) if a == actor]
        if final != expected:
            problems.append(f"{sender} on rec{actor}: applied {final}, sent {expected}")
    return problems


@settings(max_examples=25, deadline=None)
@given(scenario=scenarios())
def test_per_sender_order_of_calls_and_casts(
    server_endpoint: str, scenario: tuple[int, list[list[tuple[int, bool]]], bool]
) -> None:
    _, senders, shared = scenario
    run = uuid.uuid4().hex[:8]
    connections = (
        [transport.connect(server_endpoint, timeout=TIMEOUT)]
        if shared
        else [transport.connect(server_endpoint, timeout=TIMEOUT) for _ in senders]
    )
    problems: list[str] = []
    barrier = threading.Barrier(len(senders), timeout=TIMEOUT)

    def work(index: int) -> None:
        connection = connections[0 if shared else index]
        try:
            problems.extend(run_sender(connection, f"{run}-{index}", senders[index], barrier))
        except BaseException as exc:
            problems.append(f"sender {index} failed: {exc!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(senders))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(3 * TIMEOUT)
        assert not any(t.is_alive() for t in threads)
    finally:
        for c in connections:
            c.close(linger=0)
    assert problems == []


def test_sigkill_fails_pending_calls_then_restart_on_same_endpoint(
    spawn_server: Callable[..., ServerProcess],
) -> None:
    server = spawn_server()
    with transport.connect(server.endpoint, timeout=TIMEOUT) as connection:
        assert connection.proxy("echo").add(1, 2).get(timeout=TIMEOUT) == 3
        slow = connection.proxy("slow", timeout=2.0)
        pending = [slow.wait_gate(30.0) for _ in range(3)]
        pending.append(connection.proxy("echo", timeout=2.0).add(5, 5))  # may or may not run
        # The first call is running on the server when it dies.
        with pytest.raises(transport.MessagingTimeout):
            pending[0].get(timeout=0.2)
        server.kill()
        started = time.monotonic()
        outcomes: list[object] = []
        for future in pending:
            try:
                outcomes.append(future.get())
            except transport.MessagingTimeout as exc:
                outcomes.append(exc)
        assert time.monotonic() - started < 2.0 + 1.0
        assert all(isinstance(o, transport.MessagingTimeout) for o in outcomes[:3])
        assert outcomes[3] in (10,) or isinstance(outcomes[3], transport.MessagingTimeout)

        # While down: a new call times out too.
        with pytest.raises(transport.MessagingTimeout):
            connection.proxy("echo", timeout=0.5).add(1, 1).get()

        restarted = spawn_server("--endpoint", server.endpoint)
        assert restarted.endpoint == server.endpoint
        assert connection.proxy("echo").add(2, 2).get(timeout=TIMEOUT) == 4
        assert connection.proxy("rec0").call_record("after-restart", 1).get(timeout=TIMEOUT) == [1]
