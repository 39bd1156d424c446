"""What issue 11 (and issue 13's client bug) saw on the old main, one test per finding.

Each of these failed before the change. "Arrived" is made certain without
reading it: the client socket is polled (ZeroMQ says a reply is readable) and
nothing has called `get()` yet.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pykka
import pytest
import zmq

import transport
from tests.transport._actors import GATE

TIMEOUT = 10.0


def wait_readable(conn: transport.Connection) -> None:
    """Block until a reply is readable on `conn`'s socket (nothing is read)."""
    assert conn._sock.poll(int(TIMEOUT * 1000), zmq.POLLIN), "no reply arrived"


def until_arrived(conn: transport.Connection, check: Any) -> Any:
    """Retry `check()` (which uses zero timeouts) while replies keep arriving; bounded."""
    for _ in range(200):
        try:
            return check()
        except pykka.Timeout:
            wait_readable(conn)
    raise AssertionError("zero-timeout reads never saw the replies")


def test_get_with_zero_timeout_returns_an_arrived_reply(local_conn: transport.Connection) -> None:
    future = local_conn.proxy("echo").add(1, 2)
    wait_readable(local_conn)
    assert future.get(timeout=0) == 3


def test_combinators_with_zero_timeouts_see_arrived_replies(
    local_conn: transport.Connection,
) -> None:
    echo = local_conn.proxy("echo")
    futures = [echo.add(i, i) for i in range(5)]
    assert until_arrived(local_conn, lambda: list(pykka.get_all(futures, timeout=0))) == [
        0, 2, 4, 6, 8,
    ]  # fmt: skip
    items = echo.echo([1, 2, 3])
    assert until_arrived(local_conn, lambda: items.map(sum).get(timeout=0)) == 6
    items = echo.echo([1, 2, 3])
    kept = until_arrived(local_conn, lambda: list(items.filter(lambda x: x > 1).get(timeout=0)))
    assert kept == [2, 3]
    items = echo.echo([1, 2, 3])
    assert until_arrived(local_conn, lambda: items.reduce(lambda a, b: a * b).get(timeout=0)) == 6
    first, second = echo.add(1, 1), echo.add(2, 2)
    assert until_arrived(local_conn, lambda: list(first.join(second).get(timeout=0))) == [2, 4]


def test_reading_an_attribute_or_property(local_conn: transport.Connection) -> None:
    echo = local_conn.proxy("echo")
    assert echo.not_a_method.get(timeout=TIMEOUT) == 42
    assert echo.a_property.get(timeout=TIMEOUT) == 1


def test_assigning_sets_the_remote_attribute_and_not_the_proxy(
    local_conn: transport.Connection,
) -> None:
    echo = local_conn.proxy("echo")
    echo.not_a_method = 43
    assert "not_a_method" not in vars(echo)
    assert local_conn.proxy("echo").not_a_method.get(timeout=TIMEOUT) == 43
    with pytest.raises(AttributeError, match="has no setter"):
        echo.a_property = 2


def test_unknown_names_fail_at_access_for_calls_and_casts(
    local_conn: transport.Connection,
) -> None:
    echo = local_conn.proxy("echo")
    with pytest.raises(transport.NoSuchMethod):
        echo.missing(1)
    with pytest.raises(AttributeError):
        echo.missing.defer(1)
    with pytest.raises(AttributeError):
        echo.lifecycle_only  # noqa: B018 - RPC_PRIVATE
    assert {"echo", "add", "not_a_method", "a_property"} <= set(dir(echo))
    assert "lifecycle_only" not in dir(echo)
    assert "Echo" in repr(echo)
    assert "'echo'" in repr(echo)
    assert local_conn.endpoint in repr(echo)


def test_a_gone_actor_is_a_pykka_actor_dead_error(
    local_bridge: transport.Bridge, local_conn: transport.Connection
) -> None:
    with pytest.raises(pykka.ActorDeadError):
        local_conn.proxy("nobody")  # raises at once, at creation
    proxy = local_conn.proxy("gate")
    local_bridge.unexpose("gate")
    with pytest.raises(pykka.ActorDeadError):
        proxy.release().get(timeout=TIMEOUT)


def test_set_get_hook_on_an_arrived_reply_raises_queue_full(
    local_conn: transport.Connection,
) -> None:
    future = local_conn.proxy("echo").add(1, 1)
    assert future.get(timeout=TIMEOUT) == 2
    with pytest.raises(queue.Full):
        future.set_get_hook(lambda timeout: 99)
    assert future.get() == 2


def test_a_reply_that_arrived_in_time_is_not_a_timeout_when_read_late(
    local_conn: transport.Connection,
) -> None:
    # Issue 13: the deadline was checked before the socket was read.
    future = local_conn.proxy("echo", timeout=0.2).add(2, 3)
    wait_readable(local_conn)  # arrived (well) within its 0.2 s
    done = threading.Event()
    while time.monotonic() < future._deadline:  # now let the deadline pass, unread
        done.wait(0.05)
    assert future.get() == 5


def test_a_reply_that_arrives_after_the_deadline_is_still_a_timeout(
    local_conn: transport.Connection,
) -> None:
    future = local_conn.proxy("slow", timeout=0.2).wait_gate(TIMEOUT)
    with pytest.raises(transport.MessagingTimeout):
        future.get(timeout=0.3)  # waited (reading) past the deadline
    GATE.set()
    local_conn.proxy("slow").pause(0).get(timeout=TIMEOUT)  # the late reply has come and gone
    with pytest.raises(transport.MessagingTimeout):
        future.get()


def test_timeouts_name_endpoint_actor_method_and_elapsed_time(
    local_conn: transport.Connection,
) -> None:
    slow = local_conn.proxy("slow", timeout=0.2)
    with pytest.raises(transport.MessagingTimeout) as caught:
        slow.wait_gate(TIMEOUT).get()
    message = str(caught.value)
    assert "slow.wait_gate" in message
    assert local_conn.endpoint in message
    sent_ago = float(message.rsplit("sent ", 1)[1].split(" s ago", maxsplit=1)[0])
    assert 0.2 <= sent_ago < TIMEOUT
    with pytest.raises(transport.MessagingTimeout, match=r"slow\.pause .*still pending"):
        local_conn.proxy("slow").pause(0).get(timeout=0)
    GATE.set()


def test_pending_calls_are_bounded_per_connection(local_bridge: transport.Bridge) -> None:
    with transport.connect(local_bridge.endpoint, timeout=TIMEOUT, max_pending=3) as conn:
        slow = conn.proxy("slow")
        futures = [slow.wait_gate(TIMEOUT) for _ in range(2)]
        futures.append(conn.proxy("echo").add(1, 1))  # unread, so still pending: 3 in all
        started = time.monotonic()
        with pytest.raises(transport.Overloaded, match="max_pending=3"):
            slow.wait_gate(TIMEOUT)
        with pytest.raises(transport.Overloaded):
            conn.proxy("echo").add(2, 2)
        assert time.monotonic() - started < 1.0  # at once, not after a wait
        GATE.set()
        assert [f.get(timeout=TIMEOUT) for f in futures] == [True, True, 2]
        assert conn.proxy("echo").add(2, 2).get(timeout=TIMEOUT) == 4  # room again
