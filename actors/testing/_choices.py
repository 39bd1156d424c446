"""Where a simulation's choices come from: a seed, a replay token, or hypothesis.

Every nondeterministic decision of the scheduler is one call to `Chooser.choose`
(an index in ``range(n)``, 0 being plain arrival order) or `Chooser.fault`
(``False`` being no fault). Each chooser records what it returned, so any run
can be replayed from the recording (`actors.testing.Trace.token`).
"""

from __future__ import annotations

import base64
import random
import zlib
from typing import TYPE_CHECKING, Protocol

from actors.testing._errors import ReplayDiverged

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "Chooser",
    "DrawChooser",
    "RandomChooser",
    "ReplayChooser",
    "decode_token",
    "encode_token",
]

_TOKEN_PREFIX = "sim1."  # noqa: S105  (a format tag, not a secret)


class Chooser(Protocol):
    """The source of a simulation's decisions."""

    recorded: list[int]

    def choose(self, n: int) -> int:
        """Return an index in ``range(n)`` (``n > 1``); 0 is plain arrival order."""
        ...

    def fault(self, percent: int) -> bool:
        """Return whether a fault happens now, `percent` % of the time."""
        ...


class RandomChooser:
    """Choices from a seeded `random.Random`: `Simulation(seed=N)`."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self.recorded: list[int] = []

    def choose(self, n: int) -> int:
        """Pick uniformly."""
        value = int(self._rng.random() * n)
        self.recorded.append(value)
        return value

    def fault(self, percent: int) -> bool:
        """Fault with probability `percent` %."""
        value = int(self._rng.random() * 100)
        hit = value >= 100 - percent
        self.recorded.append(value if hit else 0)
        return hit


class ReplayChooser:
    """Choices read back from a replay token; past its end, plain order and no faults."""

    def __init__(self, choices: Sequence[int]) -> None:
        self._choices = list(choices)
        self._next = 0
        self.recorded: list[int] = []

    def _take(self) -> int:
        index = self._next
        self._next += 1
        return self._choices[index] if index < len(self._choices) else 0

    def choose(self, n: int) -> int:
        """Return the recorded index."""
        value = self._take()
        if value >= n:
            msg = (
                f"replay diverged at decision {self._next - 1}: the token says {value} "
                f"but only {n} choices are possible here (did the test change?)"
            )
            raise ReplayDiverged(msg)
        self.recorded.append(value)
        return value

    def fault(self, percent: int) -> bool:
        """Return the recorded fault decision."""
        value = self._take()
        self.recorded.append(value)
        return value >= 100 - percent and value > 0


class DrawChooser:
    """Choices drawn from hypothesis (a ``st.randoms()`` instance), which shrinks them toward 0.

    0 is plain arrival order and no fault, so a failing schedule shrinks toward
    the fewest deviations from plain order and the fewest faults.
    """

    def __init__(self, rnd: random.Random) -> None:
        self._rnd = rnd
        self.recorded: list[int] = []

    def choose(self, n: int) -> int:
        """Draw an index."""
        value = self._rnd.randrange(n)
        self.recorded.append(value)
        return value

    def fault(self, percent: int) -> bool:
        """Draw a fault decision."""
        value = self._rnd.randrange(100)
        hit = value >= 100 - percent
        self.recorded.append(value if hit else 0)
        return hit


def _varints(values: Sequence[int]) -> bytes:
    out = bytearray()
    for value in values:
        v = value
        while True:
            byte = v & 0x7F
            v >>= 7
            if v:
                out.append(byte | 0x80)
            else:
                out.append(byte)
                break
    return bytes(out)


def encode_token(choices: Sequence[int]) -> str:
    """Encode recorded choices as a short printable replay token."""
    packed = zlib.compress(_varints(choices), 9)
    return _TOKEN_PREFIX + base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")


def decode_token(token: str) -> list[int]:
    """Decode a replay token made by `encode_token`.

    Raises:
        ValueError: not a replay token.
    """
    if not token.startswith(_TOKEN_PREFIX):
        msg = f"not a simulation replay token: {token[:20]!r}"
        raise ValueError(msg)
    body = token[len(_TOKEN_PREFIX) :]
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except Exception as exc:
        msg = f"corrupt simulation replay token: {exc}"
        raise ValueError(msg) from exc
    values: list[int] = []
    shift = current = 0
    for byte in raw:
        current |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
        else:
            values.append(current)
            shift = current = 0
    return values
