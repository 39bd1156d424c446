"""asyncio callers: awaiting our futures never blocks the loop; the asyncio client.

The server runs in its own process, with 100 `Fields` actors (`wait0`..`wait99`)
whose `wait_event` blocks until the test releases the server's event through
the `event` actor: the calls stay in flight for as long as the test lets its
ticker run (1 s), with no sleeping on the server.

The lag bound: a 10 ms ticker's p99 lag while the calls are in flight stays
under 5 ms *above the same loop's idle p99*, measured just before in the same
run (best of up to 5 rounds: see `in_flight_while_ticking`). On a quiet
machine the idle p99 is about 1-2 ms; on the shared CI machine an idle loop
alone has shown 5-27 ms, which no client could improve on. A loop blocked by a
`get()` lags by the whole call (1 s), and always fails. When no round meets the
bound and the idle loop alone was over 5 ms in every round, the test is skipped
with the figures (too loaded to measure); bench/aio.py reports the same figures.
"""

from __future__ import annotations

import asyncio
import statistics
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
TICK = 0.010
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


async def ticker_lags(ticks: int) -> list[float]:
    """Run a 10 ms ticker for `ticks` ticks; return each tick's lag behind its due time."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    lags = []
    for k in range(1, ticks + 1):
        due = start + k * TICK
        await asyncio.sleep(max(0.0, due - loop.time()))
        lags.append(loop.time() - due)
    return lags


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


ATTEMPTS = 5
LAG_BUDGET = 0.005


async def in_flight_while_ticking(
    calls: Callable[[], list[Awaitable[Any]]], events: Any
) -> list[tuple[float, float]]:
    """Tick idle for 1 s (the baseline), start the calls, tick for 1 s while they wait,
    release them and check their results; return each round's (p99 in flight, p99 idle).

    A blocked loop fails at once (it lags by the whole call). The p99 comparison is
    noisy on a shared machine (a process descheduled for 100+ ms lags a dozen
    ticks, in either window), so up to `ATTEMPTS` rounds are run until one meets
    the bound; a loop blocked by the calls meets it in none.
    """
    rounds = []
    for _ in range(ATTEMPTS):
        await events.clear()  # (the server process is shared by these tests)
        idle = await ticker_lags(100)
        pending = [asyncio.ensure_future(call) for call in calls()]
        lags = await ticker_lags(100)
        assert not any(task.done() for task in pending), "the calls should still be in flight"
        await events.set()
        results = await asyncio.wait_for(asyncio.gather(*pending), TIMEOUT)
        assert results == [True] * len(pending)
        assert max(lags) < 0.5, f"the loop was blocked: {sorted(lags)[-3:]}"
        rounds.append((p99(lags), p99(idle)))
        if p99(lags) < p99(idle) + LAG_BUDGET:
            break
    return rounds


def assert_on_time(rounds: list[tuple[float, float]]) -> None:
    """Some round's in-flight p99 is within `LAG_BUDGET` of its idle p99.

    When no round meets it and the idle loop alone was over the budget in every
    round, the machine is too loaded to measure a 5 ms bound: the test is skipped
    with the figures (bench/aio.py measures the same on a quieter machine).
    """
    figures = ", ".join(f"{f * 1000:.1f} ms in flight / {i * 1000:.1f} ms idle" for f, i in rounds)
    if any(flight < idle + LAG_BUDGET for flight, idle in rounds):
        return
    if all(idle > LAG_BUDGET for _, idle in rounds):
        pytest.skip(f"the idle loop alone lags over {LAG_BUDGET * 1000:.0f} ms (p99): {figures}")
    raise AssertionError(f"ticker lag p99 over budget in every round: {figures}")


# -- awaiting futures of the threaded client and of local managers ---------------------


def test_awaiting_remote_calls_never_blocks_the_loop(waiters_server: str) -> None:
    async def main() -> list[tuple[float, float]]:
        with transport.connect(waiters_server, timeout=TIMEOUT) as conn:
            proxies = [conn.proxy(f"wait{i}") for i in range(WAITERS)]
            return await in_flight_while_ticking(
                lambda: [p.wait_event(TIMEOUT) for p in proxies], conn.proxy("event")
            )

    assert_on_time(asyncio.run(main()))


def test_awaiting_a_local_manager_call_never_blocks_the_loop() -> None:
    ref = Fields.start()

    async def main() -> tuple[Any, list[float]]:
        future = ref.proxy().add_field("x", 1).join(ref.proxy().wait_event(TIMEOUT))
        plain = ref.proxy().bump()  # queued behind wait_event: done only after EVENT is set
        waited = asyncio.ensure_future(plain)  # the documented adapter: an asyncio.Future
        # A get() in the loop (pykka's own __await__) would block it here until
        # wait_event's timeout, since only this coroutine sets EVENT.
        lags = await ticker_lags(20)
        EVENT.set()
        return [await waited, await future], lags

    EVENT.clear()
    try:
        (bumped, joined), lags = asyncio.run(main())
    finally:
        EVENT.set()
        ref.stop()
    assert bumped == 1
    assert joined == [None, True]
    assert max(lags) < 0.5  # the loop ran its ticker while the actor was busy


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


def test_aio_calls_while_in_flight_keep_the_ticker_on_time(waiters_server: str) -> None:
    async def main() -> list[tuple[float, float]]:
        async with transport.aio.connect(waiters_server, timeout=TIMEOUT) as conn:
            proxies = [conn.proxy(f"wait{i}") for i in range(WAITERS)]
            return await in_flight_while_ticking(
                lambda: [p.wait_event(TIMEOUT) for p in proxies], conn.proxy("event")
            )

    assert_on_time(asyncio.run(main()))


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
