"""Local manager futures that an asyncio task can await without blocking its loop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pykka

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from pykka._types import OptExcInfo

__all__ = ["AwaitableFuture"]

T = TypeVar("T")


class AwaitableFuture(pykka.ThreadingFuture[T]):
    """A `pykka.ThreadingFuture` that calls back when set, so `await` never blocks.

    `await future` suspends only the awaiting task; the actor's thread completes
    it through `loop.call_soon_threadsafe`. `asyncio.ensure_future(future)` turns
    it into an `asyncio.Future`. (transport's `RemoteFuture` behaves the same.)
    """

    _callbacks: list[Callable[[AwaitableFuture[Any]], None]] | None = None

    def set(self, value: Any | None = None) -> None:
        super().set(value)
        self._fire()

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        super().set_exception(exc_info)
        self._fire()

    def _fire(self) -> None:
        with self._condition:
            callbacks, self._callbacks = self._callbacks, None
        for fn in callbacks or ():
            fn(self)

    def add_done_callback(self, fn: Callable[[AwaitableFuture[Any]], None]) -> None:
        """Call `fn(future)` once set, in the setting thread (at once if already set)."""
        with self._condition:
            if self._result is None and self._get_hook is None:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        fn(self)

    def remove_done_callback(self, fn: Callable[[AwaitableFuture[Any]], None]) -> None:
        """Forget a callback (no error if it is gone)."""
        with self._condition:
            if self._callbacks is not None and fn in self._callbacks:
                self._callbacks.remove(fn)

    def __await__(self) -> Generator[Any, None, T]:
        """Suspend the awaiting task until the future is set; never blocks the loop."""
        if self._get_hook is not None:  # map(), join(): their hooks block; run off the loop
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
        return cast("T", self.get(timeout=0))
