"""Client behaviour: futures, deadlines, threads, close, fan-out, request context."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING

import pykka
import pytest

import transport
from tests.transport._actors import GATE, Recorder

if TYPE_CHECKING:
    from pathlib import Path

TIMEOUT = 10.0


def test_future_is_a_pykka_future_usable_with_get_all(conn: transport.Connection) -> None:
    echo = conn.proxy("echo")
    futures = [echo.add(i, i) for i in range(50)]
    assert all(isinstance(f, pykka.Future) for f in futures)
    assert list(pykka.get_all(futures, timeout=TIMEOUT)) == [2 * i for i in range(50)]
    assert futures[3].get() == 6  # a resolved future can be read again
    assert futures[4].map(lambda v: v + 1).get(timeout=TIMEOUT) == 9
    assert futures[0].join(futures[1]).get(timeout=TIMEOUT) == [0, 2]


def test_cast_returns_none_and_is_applied_before_a_later_call(conn: transport.Connection) -> None:
    rec = conn.proxy("rec0")
    sender = f"cast-{uuid.uuid4()}"
    for i in range(20):
        rec.record.defer(sender, i)
    assert rec.entries(sender).get(timeout=TIMEOUT) == list(range(20))


def test_many_threads_share_one_connection(conn: transport.Connection) -> None:
    echo = conn.proxy("echo")
    errors: list[BaseException] = []
    barrier = threading.Barrier(8, timeout=TIMEOUT)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            futures = [echo.echo((n, i)) for i in range(100)]
            for i, f in enumerate(futures):
                assert f.get(timeout=TIMEOUT) == (n, i)
            for i in range(30):  # sequential calls, leadership changing hands
                assert echo.add(n, i).get(timeout=TIMEOUT) == n + i
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_get_timeout_shorter_than_deadline_leaves_call_pending(
    local_conn: transport.Connection,
) -> None:
    future = local_conn.proxy("slow").wait_gate(TIMEOUT)
    with pytest.raises(transport.MessagingTimeout, match="still pending"):
        future.get(timeout=0.2)
    local_conn.proxy("gate").release().get(timeout=TIMEOUT)
    assert future.get(timeout=TIMEOUT) is True


def test_deadline_passes_without_a_reader(local_conn: transport.Connection) -> None:
    # Deadline 0.3 s; the actor answers after 0.6 s; nobody reads meanwhile.
    future = local_conn.proxy("slow", timeout=0.3).pause(0.6)
    # The same actor answers this one only after the first (mailbox order), so
    # by the time it returns the first reply has arrived, after its deadline.
    assert local_conn.proxy("slow").pause(0.0).get(timeout=TIMEOUT) == 0.0
    with pytest.raises(transport.MessagingTimeout, match="deadline"):
        future.get()
    assert not local_conn._pending


def test_get_without_timeout_ends_at_the_deadline(local_conn: transport.Connection) -> None:
    future = local_conn.proxy("slow", timeout=0.3).wait_gate(TIMEOUT)
    with pytest.raises(transport.MessagingTimeout):
        future.get()
    GATE.set()


def test_close_fails_pending_calls(local_bridge: transport.Bridge) -> None:
    connection = transport.connect(local_bridge.endpoint, timeout=TIMEOUT)
    future = connection.proxy("slow").wait_gate(TIMEOUT)
    waiter_result: list[BaseException] = []

    def waiter() -> None:
        try:
            future.get(timeout=TIMEOUT)
        except BaseException as exc:
            waiter_result.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    connection.close()
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    assert len(waiter_result) == 1
    assert isinstance(waiter_result[0], transport.ConnectionClosed)
    with pytest.raises(transport.ConnectionClosed):
        future.get()
    with pytest.raises(transport.ConnectionClosed):
        connection.proxy("echo").add(1, 2)
    connection.close()  # idempotent


def test_slow_actor_delays_only_its_own_replies(local_conn: transport.Connection) -> None:
    blocked = local_conn.proxy("slow").wait_gate(TIMEOUT)
    echo = local_conn.proxy("echo")
    assert [echo.add(i, 1).get(timeout=2.0) for i in range(20)] == list(range(1, 21))
    local_conn.proxy("gate").release().get(timeout=TIMEOUT)
    assert blocked.get(timeout=TIMEOUT) is True


def test_request_context_travels_and_is_current_remotely(conn: transport.Connection) -> None:
    echo = conn.proxy("echo")
    with transport.use_context(user_id="alice", roles=["admin"]) as ctx:
        remote = echo.request_context().get(timeout=TIMEOUT)
        assert transport.current_context() is ctx
    assert remote == {"request_id": ctx.request_id, "user_id": "alice", "roles": ["admin"]}
    assert transport.current_context() is None
    first = echo.request_context().get(timeout=TIMEOUT)
    second = echo.request_context().get(timeout=TIMEOUT)
    assert first["request_id"].startswith("req-")
    assert first["request_id"] != second["request_id"]


def test_explicit_request_id(conn: transport.Connection) -> None:
    ctx = transport.RequestContext("req-fixed", tenant="t1")
    with transport.use_context(ctx):
        assert conn.proxy("echo").request_context().get(timeout=TIMEOUT) == {
            "request_id": "req-fixed",
            "tenant": "t1",
        }


def test_plain_pykka_actor_does_not_enter_the_context(conn: transport.Connection) -> None:
    with transport.use_context(user_id="bob"):
        assert conn.proxy("plain").request_context().get(timeout=TIMEOUT) is None


def test_cast_errors_are_logged_on_the_server_and_the_actor_survives(
    local_conn: transport.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="transport.bridge")
    plain = local_conn.proxy("plain")
    with transport.use_context(transport.RequestContext("req-cast-failure")):
        plain.fail.defer()
    assert plain.ping().get(timeout=TIMEOUT) == "pong"
    records = [r for r in caplog.records if "req-cast-failure" in r.getMessage()]
    assert records
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], RuntimeError)


def wait_for_entries(connection: transport.Connection, count: int) -> list[int]:
    """Poll (bounded) until `count` entries arrived; return them as they are."""
    deadline = time.monotonic() + TIMEOUT
    pause = threading.Event()
    entries: list[int] = []
    while time.monotonic() < deadline:
        entries = connection.proxy("scheduler").entries("fan").get()
        if len(entries) >= count:
            break
        pause.wait(0.01)
    return entries


def test_fanout_cast_reaches_every_endpoint(tmp_path: Path) -> None:
    refs = [Recorder.start() for _ in range(3)]
    bridges = [
        transport.Bridge("tcp://127.0.0.1:*"),
        transport.Bridge("tcp://127.0.0.1:*"),
        transport.Bridge(f"ipc://{tmp_path}/fanout.sock"),
    ]
    try:
        for bridge, ref in zip(bridges, refs, strict=True):
            bridge.expose("scheduler", ref)
            bridge.start()
        connection = transport.connect(bridges[0].endpoint, timeout=TIMEOUT)
        try:
            targets: list[transport.Connection | str] = [
                connection,
                bridges[1].endpoint,
                bridges[2].endpoint,
            ]
            transport.fanout_cast(targets, "scheduler", "record", "fan", 7)
            transport.fanout_cast(targets, "scheduler", "record", "fan", 8)
            # Same connection, same order: already applied.
            assert connection.proxy("scheduler").entries("fan").get() == [7, 8]
            # An endpoint string gets a temporary connection per fan-out: two fan-outs
            # are two senders there, so both arrive but in no guaranteed order.
            for bridge in bridges[1:]:
                with transport.connect(bridge.endpoint, timeout=TIMEOUT) as check:
                    assert sorted(wait_for_entries(check, 2)) == [7, 8]
        finally:
            connection.close()
    finally:
        for bridge in bridges:
            bridge.stop()


def test_fanout_cast_refuses_unencodable_before_sending(conn: transport.Connection) -> None:
    with pytest.raises(TypeError, match=r"args\[0\]"):
        transport.fanout_cast([conn], "rec0", "record", {1}, 1)


def test_proxy_keeps_dunders_local(conn: transport.Connection) -> None:
    proxy = conn.proxy("echo", "1.2")
    assert not hasattr(proxy, "__wrapped__")
    assert "echo" in repr(proxy)
    assert "1.2" in repr(proxy)


def test_casts_beyond_the_send_queue_wait_for_room(conn: transport.Connection) -> None:
    # ZeroMQ queues 1000 messages per peer; more casts wait for room instead of failing.
    rec = conn.proxy("rec2")
    sender = f"burst-{uuid.uuid4()}"
    for i in range(5000):
        rec.record.defer(sender, i)
    assert rec.entries(sender).get(timeout=TIMEOUT) == list(range(5000))


def test_thousands_of_calls_in_flight_on_one_connection(conn: transport.Connection) -> None:
    echo = conn.proxy("echo", timeout=30)
    for _ in range(3):
        futures = [echo.add(i, 1) for i in range(5000)]
        assert [f.get(timeout=30) for f in futures] == [i + 1 for i in range(5000)]
