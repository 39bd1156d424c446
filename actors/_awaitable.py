"""Local manager futures that an asyncio task can await without blocking its loop."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pykka

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from _pykka_adapter import GetHookFunc, OptExcInfo

__all__ = ["AwaitableFuture"]

T = TypeVar("T")


class AwaitableFuture(pykka.Future[T]):
    """The future of a call to a manager: `pykka.ThreadingFuture`'s semantics, and awaitable.

    `get(timeout=...)` blocks at most `timeout` seconds and raises
    `pykka.Timeout`; setting a result twice, or after `set_get_hook`, raises
    `queue.Full`, as pykka's `ThreadingFuture` does. In addition, `await future`
    suspends only the awaiting task: the actor's thread completes it through
    `loop.call_soon_threadsafe`. `asyncio.ensure_future(future)` turns it into an
    `asyncio.Future`. (transport's `RemoteFuture` behaves the same.)
    """

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self._done = False
        self._hooked = False
        self._value: Any = None
        self._exc_info: OptExcInfo | None = None
        self._callbacks: list[Callable[[AwaitableFuture[Any]], None]] | None = None

    def get(self, *, timeout: float | None = None) -> T:
        """Return the value, or raise the exception (see `pykka.Future.get`).

        Raises:
            pykka.Timeout: nothing was set within `timeout` seconds.
        """
        if self._hooked:
            return super().get(timeout=timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._done:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise pykka.Timeout(f"{timeout} seconds")
                self._cond.wait(remaining)
        if self._exc_info is not None:
            exc_type, exc_value, traceback = self._exc_info
            if exc_value is None:
                assert exc_type is not None
                exc_value = exc_type()
            raise exc_value.with_traceback(traceback)
        return cast("T", self._value)

    def set(self, value: Any | None = None) -> None:
        """Set the value (once; `queue.Full` otherwise)."""
        self._set(value, None)

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        """Set the exception (`sys.exc_info()` by default; once, `queue.Full` otherwise)."""
        self._set(None, exc_info or sys.exc_info())

    def _set(self, value: Any, exc_info: OptExcInfo | None) -> None:
        with self._cond:
            if self._done or self._hooked:
                raise queue.Full
            self._value, self._exc_info, self._done = value, exc_info, True
            callbacks, self._callbacks = self._callbacks, None
            self._cond.notify_all()
        for fn in callbacks or ():
            fn(self)

    def set_get_hook(self, func: GetHookFunc[T]) -> None:
        """Set pykka's get hook (as `map()` and friends do; `queue.Full` once set)."""
        with self._cond:
            if self._done:
                raise queue.Full
            self._hooked = True
            super().set_get_hook(func)
            self._cond.notify_all()

    def add_done_callback(self, fn: Callable[[AwaitableFuture[Any]], None]) -> None:
        """Call `fn(future)` once set, in the setting thread (at once if already set)."""
        with self._cond:
            if not self._done and not self._hooked:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        fn(self)

    def remove_done_callback(self, fn: Callable[[AwaitableFuture[Any]], None]) -> None:
        """Forget a callback (no error if it is gone)."""
        with self._cond:
            if self._callbacks is not None and fn in self._callbacks:
                self._callbacks.remove(fn)

    def __await__(self) -> Generator[Any, None, T]:
        """Suspend the awaiting task until the future is set; never blocks the loop."""
        if self._hooked:  # map(), join(): their hooks block; run them off the loop
            return asyncio.get_running_loop().run_in_executor(None, self.get).__await__()
        return self._wait().__await__()

    __iter__ = __await__

    async def _wait(self) -> T:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not waiter.done():
                waiter.set_result(None)

        def done(_: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(wake)

        self.add_done_callback(done)
        try:
            await waiter
        except asyncio.CancelledError:
            self.remove_done_callback(done)
            raise
        return self.get(timeout=0)
