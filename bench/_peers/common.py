"""What every peer shares: the service, the client interface, child processes, the loop."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from bench import _harness as h
from bench._harness import stop_process as stop

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Executor

__all__ = [
    "COUNT_TIMEOUT", "LARGE", "MEASURES", "SMALL_CAST", "START_TIMEOUT", "Client", "Service",
    "Unavailable", "free_port", "measure", "shared_out", "spawn_server", "stop", "timed_casts",
    "until_stdin_closes",
]  # fmt: skip

LARGE = b"\xab" * 65536
"""The 64 KiB payload of the large rows (a str of the same length where bytes are not allowed)."""
SMALL_CAST = 1
"""The small cast's argument."""
START_TIMEOUT = 60.0
"""The longest any server may take to say it is ready."""
COUNT_TIMEOUT = 60.0
"""The longest a client waits for the counter to confirm its casts."""

MEASURES = (
    "call p50 small (us)",
    "call p99 small (us)",
    "call p50 64KiB (us)",
    "call p99 64KiB (us)",
    "pipelined small (calls/s)",
    "pipelined 64KiB (calls/s)",
    "casts small (delivered/s)",
    "casts 64KiB (delivered/s)",
)
"""The rows, in order; "(us)" rows are latencies (lower is better), the others rates."""


class Unavailable(Exception):
    """A system that is not installed or cannot start; its message is the row's text."""


class Client:
    """A connected client of the service ``add(a, b)``, ``echo(payload)``, ``tally(payload)``.

    ``tally`` is the counting cast: one-way, it increments the server's counter;
    ``counted()`` (a call) reads it. Subclasses implement `add`, `echo`, `counted`,
    `pipelined` and `casts`; `seq` times single calls.
    """

    large: Any = LARGE
    """The 64 KiB payload as this system carries it."""
    notes: dict[str, Any] = {}
    """How this client was set up, for the report (e.g. its thread count)."""

    def prepare(self) -> None:
        """Choose settings by trial, before calibration (default: nothing to choose)."""

    def add(self, a: int, b: int) -> Any:
        raise NotImplementedError

    def echo(self, payload: Any) -> Any:
        raise NotImplementedError

    def counted(self) -> int:
        raise NotImplementedError

    def pipelined(self, large: bool, n: int) -> float:
        """Make n calls with many in flight; return calls per second."""
        raise NotImplementedError

    def casts(self, large: bool, n: int) -> float:
        """Send n counting casts; return the rate at which they were delivered."""
        raise NotImplementedError

    def check(self) -> None:
        """Fail unless the service answers correctly (run once, before timing)."""
        assert self.add(1, 2) == 3
        assert self.echo(self.large) == self.large

    def call(self, large: bool) -> None:
        if large:
            self.echo(self.large)
        else:
            self.add(1, 2)

    def seq(self, large: bool, n: int) -> list[float]:
        """Time n sequential calls (``add(1, 2)`` or ``echo(64 KiB)``); seconds each."""
        if large:
            return h.timed_calls(lambda: self.echo(self.large), n)
        return h.timed_calls(lambda: self.add(1, 2), n)

    def payload(self, large: bool) -> Any:
        return self.large if large else SMALL_CAST

    def wait_count(self, target: int) -> None:
        """Poll `counted` until it reaches target (bounded by `COUNT_TIMEOUT`)."""
        deadline = time.monotonic() + COUNT_TIMEOUT
        pause = 0.0002
        while (count := self.counted()) < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {count} of {target} casts counted")
            time.sleep(pause)
            pause = min(pause * 2, 0.01)


def timed_casts(client: Client, cast: Callable[[Any], object], large: bool, n: int) -> float:
    """Cast ``cast(payload)`` n times, wait until the counter shows them all; the rate."""
    payload = client.payload(large)
    base = client.counted()

    def run() -> None:
        for _ in range(n):
            cast(payload)
        client.wait_count(base + n)

    return h.rate_of(n, run)


def shared_out(pool: Executor, threads: int, work: Callable[[int], object], n: int) -> float:
    """`n` operations shared among `threads` threads of `pool` (each `work(share)`); per second."""
    shares = [n // threads + (i < n % threads) for i in range(threads)]

    def run() -> None:
        for future in [pool.submit(work, share) for share in shares]:
            future.result()

    return h.rate_of(n, run)


class Service:
    """The benchmark's service: ``add``, ``echo`` and the counting cast ``tally``.

    Cooperative, so a peer can mix it into its own base class (ours: a Manager).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.count = 0

    def add(self, a: int, b: int) -> int:
        return a + b

    def echo(self, payload: Any) -> Any:
        return payload

    def tally(self, payload: Any) -> None:
        self.count += 1

    def counted(self) -> int:
        return self.count


# -- the measuring loop ----------------------------------------------------------


def _clamp(value: float, low: int, high: int) -> int:
    return max(low, min(high, int(value)))


def measure(client: Client, reps: int, budget: float) -> dict[str, list[float]]:
    """Every measure `reps` times; each run sized to take about `budget` seconds.

    Sizes come from a short calibration run of each measure, so a system that
    is 20 times slower gets 20 times fewer messages, not 20 times the wall time.
    """
    client.check()
    client.prepare()
    seq_n: dict[bool, int] = {}
    pipe_n: dict[bool, int] = {}
    cast_n: dict[bool, int] = {}
    for large in (False, True):
        client.seq(large, 20)
        t = time.perf_counter()
        client.seq(large, 30)
        seq_n[large] = _clamp(budget / ((time.perf_counter() - t) / 30), 200, 20000)
        top = 1000 if large else 50000
        rate = client.pipelined(large, 64)
        rate = client.pipelined(large, _clamp(rate * budget / 4, 64, top))
        pipe_n[large] = _clamp(rate * budget, 200, top)
        rate = client.casts(large, 64)
        rate = client.casts(large, _clamp(rate * budget / 4, 64, top))
        cast_n[large] = _clamp(rate * budget, 200, top)
    samples: dict[str, list[float]] = {m: [] for m in MEASURES}
    for _ in range(reps):
        for large, label in ((False, "small"), (True, "64KiB")):
            lat = client.seq(large, seq_n[large])
            samples[f"call p50 {label} (us)"].append(h.pct(lat, 0.5) * 1e6)
            samples[f"call p99 {label} (us)"].append(h.pct(lat, 0.99) * 1e6)
        for large, label in ((False, "small"), (True, "64KiB")):
            samples[f"pipelined {label} (calls/s)"].append(client.pipelined(large, pipe_n[large]))
        for large, label in ((False, "small"), (True, "64KiB")):
            samples[f"casts {label} (delivered/s)"].append(client.casts(large, cast_n[large]))
    return samples


# -- child processes ------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn_server(*args: str, timeout: float = START_TIMEOUT) -> h.Server:
    """Start ``python -m bench._peers serve *args``; return it once it printed its first line.

    The child serves until its stdin closes. Its stderr goes to ours.

    Raises:
        Unavailable: it exited or said nothing within `timeout`.
    """
    try:
        return h.spawn("bench._peers", "serve", *args, start_timeout=timeout)
    except RuntimeError as exc:
        raise Unavailable(str(exc)) from None


def until_stdin_closes(shutdown: Callable[[], None] | None = None) -> None:
    """In a server: block until the parent closes our stdin, then run `shutdown`.

    Without `shutdown`, watch from a daemon thread and leave the process at
    once (for servers whose own loop owns the main thread, e.g. gevent's hub).
    """
    if shutdown is None:

        def watch() -> None:
            sys.stdin.read()
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()
        return
    try:
        sys.stdin.read()
    finally:
        shutdown()
