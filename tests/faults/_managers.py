"""The manager the fault tests run inside real node processes."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from actors import Manager


class Ledger(Manager):
    """Appends one line per processed ``record`` to a journal file (one write each)."""

    TOPIC = "ledger"
    OPTIONS = ("journal",)

    def __init__(self, *, journal: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def record(self, sender: str, seq: int) -> int:
        """Journal ``sender seq`` (a kill -9 right after loses nothing written)."""
        os.write(self._fd, f"{sender} {seq}\n".encode())
        return seq

    def slow(self, seq: int, payload: bytes) -> int:
        """Do about a millisecond of real work (a fixed amount of hashing, not a wait)."""
        hashlib.pbkdf2_hmac("sha256", payload[:64], b"ledger", 1_500)
        return seq

    def ping(self) -> str:
        return "pong"

    def on_stop(self) -> None:
        os.close(self._fd)
