"""Managers that the node-process tests run inside real node processes."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, ClassVar

import transport
from actors import Manager

logger = logging.getLogger(__name__)


class Recorder(Manager):
    """Appends every processed message to a file, so the test can read it after exit."""

    TOPIC = "recorder"
    RPC_API_VERSION = "1.2"
    DEPENDENCIES: ClassVar[tuple[str, ...]] = ("directory",)
    OPTIONS: ClassVar[tuple[str, ...]] = ("journal",)

    def __init__(self, *, journal: str = "", directory: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.journal = Path(journal)
        self.resets = 0
        self.directory = directory

    def _write(self, line: str) -> None:
        with self.journal.open("a") as out:
            out.write(line + "\n")

    def work(self, item: int, rounds: int = 30_000) -> None:
        """Do a fixed amount of real work (hashing: some 20 ms here), then journal `item`."""
        hashlib.pbkdf2_hmac("sha256", b"work", b"recorder", rounds)
        self._write(f"work {item}")

    def say(self, text: str) -> None:
        logger.info("saying %s", text)

    def ping(self) -> str:
        return f"pong from {self.host}"

    def reset(self) -> None:
        super().reset()
        self.resets += 1
        self._write("reset")

    def can_send(self, topic: str, version: str) -> bool:
        """Ask this node's discovery whether `version` may be sent to `topic`."""
        return bool(self.directory.can_send_version(topic, version))

    def call_ping(self, topic: str, host: str) -> str:
        """Ping `topic` on `host` through this node's discovery; the error's name if it fails."""
        try:
            return str(self.directory.proxy(topic, host).ping().get(timeout=10))
        except transport.MessagingError as exc:
            return type(exc).__name__

    def reset_count(self) -> int:
        return self.resets


class Other(Recorder):
    TOPIC = "other"
