"""The future of a remote call: a `pykka.Future` that can also be awaited."""

from __future__ import annotations

import asyncio
import queue
from typing import TYPE_CHECKING, Any, TypeVar

import pykka

from transport._awaiting import await_future

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from _pykka_adapter import GetHookFunc, OptExcInfo
    from transport._connection import Connection

__all__ = ["RemoteFuture"]

T = TypeVar("T")


class RemoteFuture(pykka.Future[T]):
    """The future of a remote call; a `pykka.Future`, and awaitable.

    `get(timeout=t)` waits at most `t` seconds (raising `MessagingTimeout`, the
    call staying pending) and never past the call's own deadline, which was set
    when the call was sent; once the deadline passes, the call has failed for
    good with `MessagingTimeout`, whether or not anybody was waiting.
    `get(timeout=0)` reads what has arrived and never waits. A reply that has
    reached this process is taken before a call is failed for its deadline.

    `await future` suspends only the awaiting task: the reply completes it
    through the event loop's thread-safe callback. `asyncio.ensure_future(future)`
    turns it into an `asyncio.Future`.
    """

    _get_hook: GetHookFunc[T] | None = None  # see set_get_hook()
    _callbacks: list[Callable[[RemoteFuture[Any]], None]] | None = None
    # Class attributes, so a future costs no __init__ frame: the connection
    # makes one per call with `object.__new__` and sets the call's three.
    _conn: Connection | None = None
    _label: tuple[str, str, float] = ("", "", 0.0)  # actor, method, sent at
    _deadline = 0.0
    _done = False  # then the call's outcome:
    _value: Any = None
    _exc: BaseException | None = None

    def __init__(self) -> None:
        """A future of no call (the connection makes the real ones)."""
        # No pykka.Future.__init__ here (one per call): see set_get_hook().

    def __repr__(self) -> str:
        state = "done" if self._done else "pending"
        actor, method, _ = self._label
        call = f" {actor}.{method}" if actor else ""
        return f"<transport.RemoteFuture{call} {state}>"

    def get(self, *, timeout: float | None = None) -> T:
        """Return the call's value, or raise its exception.

        Args:
            timeout: seconds to wait at most; `None` waits until the call's
                deadline; `0` only takes a reply that has already arrived.

        Raises:
            MessagingTimeout: no reply within `timeout` or by the call's deadline.
            Exception: the remote exception, or a `MessagingError`.

        Returns:
            the remote method's return value.
        """
        if self._get_hook is not None:
            return super().get(timeout=timeout)
        if not self._done:
            if self._conn is None:
                raise RuntimeError("this future belongs to no remote call")
            self._conn._wait(self, timeout)
        if self._exc is not None:
            if self._conn is not None and self._conn.peer_status is not None:
                self._conn._note_peer_status(self._exc)
            raise self._exc.with_traceback(None)
        return self._value  # type: ignore[no-any-return]

    def done(self) -> bool:
        """Tell whether the call has ended (value, error or timeout); never waits."""
        return self._done

    def set_get_hook(self, func: GetHookFunc[T]) -> None:
        """Set pykka's get hook (as `map()`, `join()` and friends do).

        Raises:
            queue.Full: the future already has its result (as in pykka).
        """
        if self._done:
            raise queue.Full
        pykka.Future.__init__(self)
        super().set_get_hook(func)

    def set(self, value: Any | None = None) -> None:
        """Not supported: a remote call's result comes from the remote actor."""
        raise RuntimeError("a remote call's result comes from the remote actor")

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        """Not supported: a remote call's result comes from the remote actor."""
        raise RuntimeError("a remote call's result comes from the remote actor")

    def add_done_callback(self, fn: Callable[[RemoteFuture[Any]], None]) -> None:
        """Call `fn(future)` once the call has ended (at once if it has).

        `fn` runs in whichever thread resolves the call, under the connection's
        state lock: it must be quick and must not block (hand over with
        `loop.call_soon_threadsafe`, as `await` does). The connection reads
        replies in a thread of its own while callbacks are pending.
        """
        if self._get_hook is not None or self._conn is None:
            raise RuntimeError("only the future of a remote call takes callbacks")
        if not self._conn._add_callback(self, fn):
            fn(self)

    def remove_done_callback(self, fn: Callable[[RemoteFuture[Any]], None]) -> None:
        """Forget a callback added with `add_done_callback` (no error if it is gone)."""
        if self._conn is not None:
            self._conn._remove_callback(self, fn)

    def __await__(self) -> Generator[Any, None, T]:
        """Suspend the awaiting task until the call ends; never blocks the loop."""
        if self._get_hook is not None:  # map(), join(): their hooks block; run off the loop
            return asyncio.get_running_loop().run_in_executor(None, self.get).__await__()
        return await_future(self).__await__()

    __iter__ = __await__
