"""State shared between a test and the user's test file it runs in-process (pytester inline).

A user's test that leaks on purpose parks what it leaked here, so the outer
test can release it afterwards and leave the process clean.
"""

from __future__ import annotations

import threading
from typing import Any

RELEASE = threading.Event()
"""Threads leaked on purpose wait on this; the outer test sets it."""

HELD: list[Any] = []
"""Objects leaked on purpose (connections, files); the outer test closes them."""


def release_all() -> None:
    """Let leaked threads end and close every held object; wait for the threads."""
    RELEASE.set()
    for thread in threading.enumerate():
        if thread.name.startswith("forgotten-"):
            thread.join(10)
            assert not thread.is_alive(), thread.name
    while HELD:
        held = HELD.pop()
        if hasattr(held, "stop"):  # a Cluster
            held.stop()
        elif hasattr(held, "close"):
            try:
                held.close(linger=0)
            except TypeError:
                held.close()
    RELEASE.clear()
