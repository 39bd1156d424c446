"""asyncio callers: awaiting our futures never blocks the loop; the asyncio client.

The server runs in its own process, with 100 `Fields` actors (`wait0`..`wait99`)
whose `wait_event` blocks until the test releases the server's event through
the `event` actor: the calls stay in flight until the test lets them go, with
no sleeping on either side.

The loop is shown free without any clock: while the calls are in flight, a
task of the same loop makes `TURNS` turns (``await asyncio.sleep(0)``) and
only then releases the event. A loop blocked by an await (a ``get()`` in
``__await__``) never reaches the release: the calls end by their own timeout,
answer False, and the test fails. How late a ticker runs while calls wait
(a timing figure) is measured in ``python -m bench.aio``, not here.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import TYPE_CHECKING, Any

import pykka
import pytest

import transport
import transport.aio
from tests.transport._actors import EVENT, GATE, Fields

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from tests.transport.conftest import ServerProcess

TIMEOUT = 10.0
TURNS = 1_000
WAITERS = 100


@pytest.fixture(scope="module")
def waiters_server() -> Iterator[str]:
    """A server process with 100 waiting actors (module-scoped: it takes a while to start)."""
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from tests.transport.conftest import ROOT, START_TIMEOUT, ServerProcess, _read_line  # noqa: PLC0415

    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.transport._server", "--waiters", str(WAITERS)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    server: ServerProcess = ServerProcess(proc, "")
    try:
        server.endpoint = _read_line(proc, START_TIMEOUT)
        yield server.endpoint
    finally:
        server.stop()


async def loop_turns(turns: int) -> None:
    """Give the loop `turns` turns: every other task runs meanwhile, or this never ends."""
    for _ in range(turns):
        await asyncio.sleep(0)


async def released_while_in_flight(calls: Callable[[], list[Awaitable[Any]]], events: Any) -> None:
    """Start the calls, turn the loop while they wait, then release them; check their results.

    A loop blocked by one of the awaits never gets here before that call's own
    timeout: the calls then end with False (or are done already), and this fails.
    """
    await events.clear()  # (the server process is shared by these tests)
    pending = [asyncio.ensure_future(call) for call in calls()]
    await loop_turns(TURNS)
    assert not any(task.done() for task in pending), "the calls should still be in flight"
    await events.set()
    results = await asyncio.wait_for(asyncio.gather(*pending), TIMEOUT)
    assert results == [True] * len(pending)


# -- awaiting futures of the threaded client and of local managers ---------------------


def test_awaiting_remote_calls_never_blocks_the_loop(waiters_server: str) -> None:
    async def main() -> None:
        with transport.connect(waiters_server, timeout=TIMEOUT) as conn:
            proxies = [conn.proxy(f"wait{i}") for i in range(WAITERS)]
            await released_while_in_flight(
                lambda: [p.wait_event(TIMEOUT) for p in proxies], conn.proxy("event")
            )

    asyncio.run(main())


def test_awaiting_a_local_manager_call_never_blocks_the_loop() -> None:
    ref = Fields.start()

    async def main() -> tuple[list[Any], bool]:
        future = ref.proxy().add_field("x", 1).join(ref.proxy().wait_event(TIMEOUT))
        plain = ref.proxy().bump()  # queued behind wait_event: done only after EVENT is set
        waited = asyncio.ensure_future(plain)  # the documented adapter: an asyncio.Future
        # A get() in the loop (pykka's own __await__) would block it here until
        # wait_event's timeout, since only this coroutine sets EVENT.
        await loop_turns(TURNS)
        still_busy = not waited.done()
        EVENT.set()
        return [await waited, await future], still_busy

    EVENT.clear()
    try:
        (bumped, joined), still_busy = asyncio.run(main())
    finally:
        EVENT.set()
        ref.stop()
    assert bumped == 1
    assert joined == [None, True]
    assert still_busy  # the loop turned while the actor was busy


def test_a_local_future_resolves_the_awaiting_task_from_the_actor_thread() -> None:
    ref = Fields.start()
    EVENT.clear()

    async def main() -> tuple[bool, int]:
        future = ref.proxy().wait_event(TIMEOUT)
        task = asyncio.ensure_future(future)
        await asyncio.sleep(0)
        assert not task.done()
        EVENT.set()
        return await task, await ref.proxy().bump(5)

    try:
        assert asyncio.run(main()) == (True, 5)
    finally:
        EVENT.set()
        ref.stop()


def test_ten_thousand_concurrent_awaits_on_one_threaded_connection(
    local_conn: transport.Connection,
) -> None:
    echo = local_conn.proxy("echo")

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(echo.add(i, 1) for i in range(10_000))))

    assert asyncio.run(main()) == [i + 1 for i in range(10_000)]
    assert local_conn._watching == 0
    assert not local_conn._pending
    local_conn.close()  # stops the reader thread that read for the awaiting tasks
    assert not [t for t in threading.enumerate() if t.name.endswith(local_conn.endpoint)]


def test_cancelling_an_await_frees_its_waiter(local_conn: transport.Connection) -> None:
    fields = local_conn.proxy("fields")

    async def main() -> None:
        future = fields.wait_event(TIMEOUT)
        task = asyncio.ensure_future(future)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert local_conn._watching == 0  # the callback is gone
        EVENT.set()
        assert await fields.bump() == 1  # the connection still works
        assert future.get(timeout=TIMEOUT) is True  # the call itself was not cancelled

    asyncio.run(main())


def test_an_awaited_remote_call_raises_its_errors(local_conn: transport.Connection) -> None:
    echo = local_conn.proxy("echo")

    async def main() -> None:
        with pytest.raises(ZeroDivisionError):
            await echo.fail("ZeroDivisionError", "boom")
        with pytest.raises(transport.MessagingTimeout):
            await local_conn.proxy("slow", timeout=0.2).wait_gate(TIMEOUT)

    asyncio.run(main())


# -- the asyncio client ------------------------------------------------------------------


def test_aio_calls_in_flight_never_block_the_loop(waiters_server: str) -> None:
    async def main() -> None:
        async with transport.aio.connect(waiters_server, timeout=TIMEOUT) as conn:
            proxies = [conn.proxy(f"wait{i}") for i in range(WAITERS)]
            await released_while_in_flight(
                lambda: [p.wait_event(TIMEOUT) for p in proxies], conn.proxy("event")
            )

    asyncio.run(main())


def test_aio_ten_thousand_concurrent_awaits(local_bridge: transport.Bridge) -> None:
    async def main() -> list[int]:
        async with transport.aio.connect(local_bridge.endpoint, timeout=TIMEOUT) as conn:
            echo = conn.proxy("echo")
            results = await asyncio.gather(*(echo.add(i, 1) for i in range(10_000)))
            assert not conn._pending
            return results

    assert asyncio.run(main()) == [i + 1 for i in range(10_000)]


def test_aio_errors_are_the_threaded_clients(local_bridge: transport.Bridge) -> None:
    async def main() -> None:
        async with transport.aio.connect(local_bridge.endpoint, timeout=TIMEOUT) as conn:
            with pytest.raises(ZeroDivisionError):
                await conn.proxy("echo").fail("ZeroDivisionError", "boom")
            with pytest.raises(transport.NoSuchMethod):
                await conn.proxy("echo").lifecycle_only()
            with pytest.raises(pykka.ActorDeadError):
                await conn.proxy("nobody").anything()
            with pytest.raises(transport.UnsupportedVersion):
                await conn.proxy("echo", "2.0").add(1, 2)
            with pytest.raises(TypeError, match="cannot encode"):
                conn.proxy("echo").echo({1, 2})
            with pytest.raises(transport.MessagingTimeout, match=r"slow\.wait_gate .*sent"):
                await conn.proxy("slow", timeout=0.2).wait_gate(TIMEOUT)

    asyncio.run(main())


def test_aio_describe_checks_names_and_reads_and_sets_attributes(
    local_bridge: transport.Bridge,
) -> None:
    async def main() -> None:
        async with transport.aio.connect(local_bridge.endpoint, timeout=TIMEOUT) as conn:
            description = await conn.describe("fields")
            assert description.class_name == "Fields"
            fields = conn.proxy("fields")
            with pytest.raises(transport.NoSuchMethod):
                fields.stop  # noqa: B018
            await fields.set_attribute("count", 41)
            assert await fields.bump() == 42
            assert await fields.doubled == 84
            with pytest.raises(AttributeError, match="has no setter"):
                await fields.set_attribute("doubled", 1)
            with pytest.raises(pykka.ActorDeadError):
                await conn.describe("nobody")

    asyncio.run(main())


def test_aio_keeps_per_sender_order_of_calls_and_casts(local_bridge: transport.Bridge) -> None:
    sender = f"aio-{uuid.uuid4()}"

    async def main() -> list[int]:
        async with transport.aio.connect(local_bridge.endpoint, timeout=TIMEOUT) as conn:
            rec = conn.proxy("rec0")
            calls = []
            for i in range(200):
                if i % 3:
                    rec.record.defer(sender, i)
                else:
                    calls.append(rec.call_record(sender, i))
            await asyncio.gather(*calls)
            return list(await rec.entries(sender))

    assert asyncio.run(main()) == list(range(200))


def test_aio_cancelling_frees_the_call_and_keeps_the_connection(
    local_bridge: transport.Bridge,
) -> None:
    async def main() -> None:
        async with transport.aio.connect(local_bridge.endpoint, timeout=TIMEOUT) as conn:
            fields = conn.proxy("fields")
            task = asyncio.ensure_future(fields.wait_event(TIMEOUT))
            await asyncio.sleep(0)
            assert len(conn._pending) == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0)  # (asyncio runs a future's done callbacks soon, not now)
            assert not conn._pending  # freed
            EVENT.set()  # its reply comes back later and is dropped
            assert await fields.bump() == 1
            assert not conn._pending

    asyncio.run(main())


def test_aio_pending_calls_are_bounded(local_bridge: transport.Bridge) -> None:
    async def main() -> None:
        async with transport.aio.connect(
            local_bridge.endpoint, timeout=TIMEOUT, max_pending=2
        ) as conn:
            slow = conn.proxy("slow")
            first, second = slow.wait_gate(TIMEOUT), slow.wait_gate(TIMEOUT)
            with pytest.raises(transport.Overloaded):
                slow.wait_gate(TIMEOUT)
            GATE.set()
            assert list(await asyncio.gather(first, second)) == [True, True]

    asyncio.run(main())


def test_threads_calling_get_and_tasks_awaiting_share_a_connection(
    local_conn: transport.Connection,
) -> None:
    echo = local_conn.proxy("echo")
    errors: list[BaseException] = []

    def caller(n: int) -> None:
        try:
            for i in range(300):
                assert echo.add(n, i).get(timeout=TIMEOUT) == n + i
        except BaseException as exc:
            errors.append(exc)

    async def main() -> list[Any]:
        results = []
        for start in range(0, 2000, 200):
            results += await asyncio.gather(*(echo.add(i, 0) for i in range(start, start + 200)))
        return results

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    try:
        assert asyncio.run(asyncio.wait_for(main(), 60)) == list(range(2000))
    finally:
        for thread in threads:
            thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert local_conn._watching == 0


def test_aio_queues_in_order_while_the_server_is_away(local_bridge: transport.Bridge) -> None:
    from tests.transport._actors import Recorder  # noqa: PLC0415

    endpoint = local_bridge.endpoint
    local_bridge.stop()  # nobody listens there now: sends queue in the client (in ZeroMQ)
    sender = f"away-{uuid.uuid4()}"
    ref = Recorder.start()

    async def main() -> list[int]:
        async with transport.aio.connect(endpoint, timeout=TIMEOUT, max_pending=50) as conn:
            rec = conn.proxy("rec")
            with pytest.raises(transport.MessagingTimeout):
                await conn.proxy("rec", timeout=0.2).entries(sender)
            for i in range(10):
                rec.record.defer(sender, i)
            later = rec.call_record(sender, 10)
            bridge = transport.Bridge(endpoint)
            bridge.expose("rec", ref)
            bridge.start()  # the same endpoint: ZeroMQ reconnects, the queue drains in order
            try:
                return list(await later)
            finally:
                bridge.stop()

    try:
        assert asyncio.run(main()) == list(range(11))
    finally:
        ref.stop()


def test_aio_casts_are_bounded_while_nothing_can_be_sent() -> None:
    async def main() -> int:
        # A port nobody listens on (bound, then released by the bridge).
        bridge = transport.Bridge("tcp://127.0.0.1:*")
        bridge.start()
        endpoint = bridge.endpoint
        bridge.stop()
        async with transport.aio.connect(endpoint, timeout=TIMEOUT, max_pending=5) as conn:
            proxy = conn.proxy("anything")
            for sent in range(5000):  # ZeroMQ queues up to its high-water mark (1000)...
                try:
                    proxy.method.defer(sent)
                except transport.Overloaded:
                    assert len(conn._outbox) == 5  # ...then the client, up to max_pending
                    return sent
        raise AssertionError("casts were never refused")

    assert 1000 <= asyncio.run(main()) <= 1100
