"""The trace of a simulation: one readable line per step, and the replay token.

A line reads ``  12.500  h1/Ledger <- test  apply(0, 3)``: the virtual time,
the receiver, the sender and what ran (a short summary of the arguments, with
memory addresses masked so that the same seed gives a byte-identical trace).
"""

from __future__ import annotations

import re
import reprlib
from typing import TYPE_CHECKING, Any

from pykka import messages

from actors.testing._choices import encode_token

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Trace", "describe_message", "summarize"]

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_LIMIT = 60
_REPR = reprlib.Repr()  # bounded: a huge argument costs no more than a small one
_REPR.maxlevel = 3
_REPR.maxstring = 40
_REPR.maxother = 60


def summarize(value: Any, limit: int = _LIMIT) -> str:
    """A short deterministic repr of `value`."""
    try:
        text = _REPR.repr(value)
    except Exception:  # noqa: BLE001 (a broken __repr__ must not break the trace)
        text = f"<{type(value).__name__}>"
    text = _ADDRESS.sub("", text)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def describe_message(message: Any) -> str:
    """``method(args)`` for a proxy call, the message's type name otherwise."""
    if isinstance(message, messages.ProxyCall):
        parts = [summarize(a, 24) for a in message.args]
        parts += [f"{k}={summarize(v, 24)}" for k, v in message.kwargs.items()]
        args = ", ".join(parts)
        if len(args) > _LIMIT:
            args = args[: _LIMIT - 3] + "..."
        return f"{'.'.join(message.attr_path)}({args})"
    if isinstance(message, messages.ProxyGetAttr):
        return f"get {'.'.join(message.attr_path)}"
    if isinstance(message, messages.ProxySetAttr):
        return f"set {'.'.join(message.attr_path)}"
    return type(message).__name__


class Trace:
    """Every step of one simulation run, in order.

    ``str(trace)`` is the readable form; `token` replays the run with
    ``Simulation(replay=token)``.
    """

    def __init__(self, recorded: list[int]) -> None:
        self.lines: list[str] = []
        self._recorded = recorded

    def add(self, now: float, who: str, what: str) -> None:
        """Record one step."""
        self.lines.append(f"{now:9.3f}  {who}  {what}")

    @property
    def token(self) -> str:
        """The replay token of the run so far."""
        return encode_token(self._recorded)

    @property
    def faults(self) -> int:
        """How many steps were faults."""
        return sum(1 for line in self.lines if "FAULT" in line)

    def __len__(self) -> int:
        return len(self.lines)

    def __iter__(self) -> Iterator[str]:
        return iter(self.lines)

    def __str__(self) -> str:
        return "\n".join(self.lines)

    def report(self, limit: int = 200) -> str:
        """The trace (its last `limit` lines) and the replay token, for a failure report."""
        lines = self.lines
        head = ""
        if len(lines) > limit:
            head = f"  ... {len(lines) - limit} earlier steps ...\n"
            lines = lines[-limit:]
        return (
            f"simulation trace ({len(self.lines)} steps):\n{head}"
            + "\n".join(lines)
            + f"\nreplay with: Simulation(replay={self.token!r})"
        )
