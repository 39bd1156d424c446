"""The manager's future: pykka's ThreadingFuture semantics, plus callbacks and `await`."""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any

import pykka
import pytest

from actors._awaitable import AwaitableFuture
from actors._mailbox import ResilientActor


def test_a_manager_call_returns_one() -> None:
    class Plain(ResilientActor):
        def hello(self) -> str:
            return "hi"

    ref = Plain.start()
    try:
        future = ref.proxy().hello()
        assert isinstance(future, AwaitableFuture)
        assert future.get(timeout=5) == "hi"
    finally:
        ref.stop()


def test_set_get_and_timeouts_follow_threading_future() -> None:
    future: AwaitableFuture[int] = AwaitableFuture()
    with pytest.raises(pykka.Timeout):
        future.get(timeout=0)
    future.set(3)
    assert future.get(timeout=0) == 3
    assert future.get() == 3  # read again
    with pytest.raises(queue.Full):
        future.set(4)
    with pytest.raises(queue.Full):
        future.set_get_hook(lambda timeout: 5)


def test_an_exception_is_raised_with_its_traceback() -> None:
    future: AwaitableFuture[int] = AwaitableFuture()
    try:
        raise ValueError("boom")
    except ValueError:
        future.set_exception()
    with pytest.raises(ValueError, match="boom") as caught:
        future.get()
    assert caught.value.__traceback__ is not None
    with pytest.raises(queue.Full):
        future.set(1)


def test_combinators_and_a_hooked_future_refuses_set() -> None:
    source: AwaitableFuture[Any] = AwaitableFuture()
    mapped = source.map(len)
    joined = source.join(mapped)
    with pytest.raises(queue.Full):
        mapped.set(1)
    source.set([1, 2, 3])
    assert mapped.get(timeout=1) == 3
    assert list(joined.get(timeout=1)) == [[1, 2, 3], 3]
    assert list(source.filter(lambda x: x > 1).get(timeout=1)) == [2, 3]
    assert source.reduce(lambda a, b: a + b).get(timeout=1) == 6
    both: list[pykka.Future[Any]] = [source, mapped]
    assert list(pykka.get_all(both, timeout=0)) == [[1, 2, 3], 3]


def test_callbacks_run_once_in_the_setting_thread_and_can_be_removed() -> None:
    future: AwaitableFuture[int] = AwaitableFuture()
    seen: list[tuple[str, str]] = []
    kept = lambda f: seen.append(("kept", threading.current_thread().name))  # noqa: E731
    removed = lambda f: seen.append(("removed", ""))  # noqa: E731
    future.add_done_callback(kept)
    future.add_done_callback(removed)
    future.remove_done_callback(removed)
    setter = threading.Thread(target=future.set, args=(1,), name="setter")
    setter.start()
    setter.join(5)
    assert seen == [("kept", "setter")]
    future.add_done_callback(kept)  # already set: at once, here
    assert seen[-1] == ("kept", threading.current_thread().name)


def test_await_is_completed_by_the_setting_thread() -> None:
    future: AwaitableFuture[str] = AwaitableFuture()

    async def main() -> str:
        task = asyncio.ensure_future(future)
        await asyncio.sleep(0)
        assert not task.done()
        threading.Thread(target=future.set, args=("done",)).start()
        return await asyncio.wait_for(task, 5)

    assert asyncio.run(main()) == "done"
