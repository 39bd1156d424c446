"""A file descriptor one thread can poll and another can make readable."""

from __future__ import annotations

import contextlib
import os

__all__ = ["Waker"]


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
