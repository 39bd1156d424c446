"""Awaiting a future that another thread resolves, without blocking the event loop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

__all__ = ["CallbackFuture", "await_future"]


class CallbackFuture(Protocol):
    """A future that calls back once resolved and can then be read without waiting."""

    def add_done_callback(self, fn: Any) -> None:
        """Call `fn(future)` once resolved, in the resolving thread (at once if resolved)."""

    def remove_done_callback(self, fn: Any) -> None:
        """Forget `fn` (the awaiting task was cancelled)."""

    def get(self, *, timeout: float | None = None) -> Any:
        """Return the value or raise the exception."""


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def await_future(future: CallbackFuture) -> Any:
    """Wait for `future` in the running loop: only this task is suspended.

    The resolving thread hands over through `loop.call_soon_threadsafe`; the
    value is then read with `get(timeout=0)`, which never waits. Cancelling the
    awaiting task removes its callback, so nothing is left behind.

    Returns:
        the future's value (or raises its exception).
    """
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def done(_: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_wake, waiter)

    future.add_done_callback(done)
    try:
        await waiter
    except asyncio.CancelledError:
        future.remove_done_callback(done)
        raise
    return future.get(timeout=0)
