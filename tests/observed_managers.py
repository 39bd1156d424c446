"""Managers that the metrics and tracing tests run, in node processes and in-process."""

from __future__ import annotations

import logging
import time
from pathlib import Path
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
        """Keep the mailbox busy until `path` exists (bounded), so messages queue behind."""
        deadline = time.monotonic() + timeout
        while not Path(path).exists() and time.monotonic() < deadline:
            time.sleep(0.005)  # simulated work inside the manager, not a test wait

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
