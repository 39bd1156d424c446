"""Managers that the metrics and tracing tests run, in node processes and in-process."""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

import transport
from actors import Manager, periodic_task

logger = logging.getLogger(__name__)


class Counter(Manager):
    """Counts, fails on request, and has one steady and one failing periodic task."""

    TOPIC = "counter"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.total = 0

    def add(self, n: int) -> int:
        self.total += n
        return self.total

    def fail(self) -> None:
        raise ValueError("asked to fail")

    def hold(self, path: str, timeout: float = 10.0) -> None:
        """Keep the mailbox busy until the test lets go (bounded), so messages queue behind.

        `path` is a Unix socket the test listens on: this connects and blocks in
        a receive until the test closes its end, or `timeout` passes.
        """
        with socket.socket(socket.AF_UNIX) as gate:
            gate.settimeout(timeout)
            gate.connect(path)
            with contextlib.suppress(TimeoutError):
                gate.recv(1)

    @periodic_task(spacing=1, run_immediately=True)
    def steady(self, context: Any) -> None:
        self.total += 0

    @periodic_task(spacing=1, run_immediately=True)
    def flaky(self, context: Any) -> None:
        raise RuntimeError("flaky periodic task")


class Relay(Manager):
    """Calls another bridge's `leaf` while handling `relay`: a call chain across two nodes."""

    TOPIC = "relay"

    def relay(self, endpoint: str, text: str, target: str = "leaf") -> str:
        logger.info("relaying %s", text)
        with transport.connect(endpoint, timeout=10) as conn:
            answer: str = conn.proxy(target, check=False).echo(text).get(timeout=10)
        return f"relayed {answer}"


class Leaf(Manager):
    TOPIC = "leaf"

    def echo(self, text: str) -> str:
        logger.info("echoing %s", text)
        return text
