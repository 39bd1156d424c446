"""Waking a thread that sleeps on a ZeroMQ socket shared with other threads.

A ZeroMQ socket's file descriptor is edge-triggered: it fires when the socket's
state changes, and any call on the socket (a send, a ZMQ_EVENTS check) may
consume that edge. So a thread sleeping in `poll()` on the FD of a socket that
other threads also use (the client's leader, the bridge's I/O thread) polls a
`Waker` beside it, and every other thread, after touching the socket under the
socket lock, calls `wake_if_input`: when input is pending, the sleeper wakes.
This module owns that rule for the client and the bridge.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import zmq

__all__ = ["Waker", "wake_if_input"]

_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)


class Waker:
    """An eventfd (a non-blocking pipe where eventfd is missing) used to wake a poller."""

    def __init__(self) -> None:
        if hasattr(os, "eventfd"):
            fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._read_fd, self._write_fd = fd, fd
        else:  # pragma: no cover - non-Linux
            self._read_fd, self._write_fd = os.pipe()
            os.set_blocking(self._read_fd, False)
            os.set_blocking(self._write_fd, False)

    def fileno(self) -> int:
        """Return the descriptor to poll for reading."""
        return self._read_fd

    def wake(self) -> None:
        """Make the descriptor readable (never blocks)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write_fd, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    def clear(self) -> None:
        """Consume pending wake-ups (never blocks)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.read(self._read_fd, 4096)

    def close(self) -> None:
        """Close the descriptors."""
        os.close(self._read_fd)
        if self._write_fd != self._read_fd:
            os.close(self._write_fd)


def wake_if_input(sock: zmq.Socket[Any], waker: Waker) -> None:
    """Wake the thread sleeping on `sock`'s FD if input is pending (call under the lock).

    Any use of the socket may have consumed the FD's edge, so the sleeper may
    not see input that is already there.
    """
    if sock.getsockopt(_EVENTS) & _POLLIN:  # type: ignore[operator]
        waker.wake()
