"""The one benchmark harness: server processes, timed loops, medians, tables, JSON, counts.

Every benchmark spawns its servers with `spawn` (a module run as ``python -m``
from a chosen tree, printing one line, its endpoint, then serving until its
stdin closes), times its loops with `timed_calls` / `rate`, reduces with
`median_of` / `pct` / `ratio` and prints with `print_table` (or `write_json`).

The noise-free side (`Counters`): per call, the system calls (``strace -f -c``
attached for a window of calls), voluntary and involuntary context switches per
thread (``/proc/PID/task/*/status``) and instructions (``callgrind``, zeroed and
dumped around the window). A loaded machine moves latencies by tens of percent
and these counts by nothing: they are the primary evidence.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

ROOT = Path(__file__).resolve().parents[1]

__all__ = [
    "ROOT",
    "Server",
    "callgrind_window",
    "freeze_startup",
    "median_of",
    "pct",
    "print_table",
    "rate",
    "ratio",
    "rss_bytes",
    "spawn",
    "strace_window",
    "switches",
    "timed_calls",
    "write_json",
]


# -- server processes -----------------------------------------------------------------


@dataclass
class Server:
    """A benchmark server process: its first stdout line, and how to stop it."""

    proc: subprocess.Popen[str]
    line: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.proc.pid

    def stop(self, timeout: float = 15.0) -> None:
        """Close its stdin (the signal to stop), wait, kill it if it does not stop."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def spawn(
    module: str,
    *args: str,
    tree: str | os.PathLike[str] | None = None,
    wrapper: Sequence[str] = (),
    start_timeout: float = 120.0,
    env: dict[str, str] | None = None,
) -> Server:
    """Run ``python -m module *args`` with `tree`'s packages first; wait for its line.

    Args:
        module: the module to run (``bench.remote``).
        args: its arguments.
        tree: the source tree whose ``actors``/``transport``/``bench`` it imports
            (default: this one).
        wrapper: a command to run it under (``valgrind --tool=callgrind ...``).
        start_timeout: seconds to wait for its first line.
        env: extra environment variables.

    Raises:
        RuntimeError: it exited or printed nothing.
    """
    root = str(Path(tree).resolve()) if tree is not None else str(ROOT)
    environ = {**os.environ, "PYTHONPATH": root, **(env or {})}
    proc = subprocess.Popen(
        [*wrapper, sys.executable, "-m", module, *args],
        cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environ,
    )  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + start_timeout
    line = ""
    while not line and time.monotonic() < deadline and proc.poll() is None:
        line = proc.stdout.readline().strip()
    if not line:
        server = Server(proc, "")
        server.stop(timeout=1)
        raise RuntimeError(f"{module} {' '.join(args)} did not start")
    return Server(proc, line)


def serve_until_stdin_closes(line: str) -> None:
    """In a server: print `line` (its endpoint), then block until the parent closes stdin."""
    freeze_startup()
    print(line, flush=True)
    sys.stdin.read()


def freeze_startup() -> None:
    """Keep the objects built so far out of future collections, as ``actors node`` does."""
    gc.collect()
    gc.freeze()


# -- timing -------------------------------------------------------------------------------


def timed_calls(call: Callable[[], object], n: int) -> list[float]:
    """Call `call` `n` times; return each call's latency in seconds."""
    samples = []
    clock = time.perf_counter
    for _ in range(n):
        start = clock()
        call()
        samples.append(clock() - start)
    return samples


def rate(seconds: float, step: Callable[[], int]) -> float:
    """Run `step()` (which returns how many it did) for `seconds`; return the rate per second."""
    start = time.perf_counter()
    done = 0
    while time.perf_counter() - start < seconds:
        done += step()
    return done / (time.perf_counter() - start)


def median_of(repeats: int, run: Callable[[], float]) -> tuple[float, list[float]]:
    """Run `run` `repeats` times; return the median and every sample."""
    samples = [run() for _ in range(repeats)]
    return statistics.median(samples), samples


def pct(values: Sequence[float], p: float) -> float:
    """The `p` quantile (0..1) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def ratio(ours: float, floor: float) -> float:
    """`ours` / `floor` (inf when the floor is zero)."""
    return ours / floor if floor else float("inf")


def rss_bytes(pid: int | None = None) -> int:
    """A process's resident set size, from /proc (Linux); default this process."""
    with open(f"/proc/{pid or 'self'}/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


# -- output -------------------------------------------------------------------------------


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a table to stdout (rich when installed, plain columns otherwise)."""
    try:
        from rich.console import Console  # noqa: PLC0415
        from rich.table import Table  # noqa: PLC0415
    except ImportError:  # pragma: no cover - rich comes with the dev extras
        print(title)
        for row in (columns, *rows):
            print("  ".join(f"{cell:>14}" for cell in row))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column != columns[0] else "left")
    for row in rows:
        table.add_row(*row)
    Console(width=max(120, Console().width)).print(table)


def write_json(path: str | os.PathLike[str] | None, data: Any) -> None:
    """Write `data` as JSON to `path`, or print it when `path` is ``-`` or None."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    if path in (None, "-"):
        print(text)
    else:
        Path(path).write_text(text + "\n")


# -- the noise-free counts ------------------------------------------------------------------


def switches(pid: int) -> dict[int, tuple[int, int]]:
    """(voluntary, involuntary) context switches of each live thread of `pid`."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            text = (task / "status").read_text()
            vol = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", text, re.M)[1])  # type: ignore[index]
            inv = int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", text, re.M)[1])  # type: ignore[index]
            out[int(task.name)] = (vol, inv)
    return out


def switch_delta(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]
) -> dict[int, tuple[int, int]]:
    """Per thread, the switches between two `switches` readings (threads alive at both)."""
    return {
        tid: (after[tid][0] - before[tid][0], after[tid][1] - before[tid][1])
        for tid in after
        if tid in before
    }


_STRACE_LINE = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$")


def parse_strace_summary(text: str) -> dict[str, int]:
    """Calls per system call name from an ``strace -c`` summary."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        match = _STRACE_LINE.match(line)
        if match and match[3] != "total":
            counts[match[3]] = int(match[1])
    return counts


@contextlib.contextmanager
def strace_window(pid: int) -> Iterator[dict[str, int]]:
    """Count `pid`'s system calls (every thread) while the block runs; fill the yielded dict."""
    result: dict[str, int] = {}
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        # With -f, "-p PID" attaches every thread: "Process PID attached with N threads".
        tracer = subprocess.Popen(
            ["strace", "-f", "-c", "-o", out.name, "-p", str(pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert tracer.stderr is not None
        line = tracer.stderr.readline()
        if "attached" not in line:
            raise RuntimeError(f"strace failed to attach: {line.strip()}")
        try:
            yield result
        finally:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(30)
            tracer.stderr.close()
            result.update(parse_strace_summary(Path(out.name).read_text()))


def callgrind_wrapper(out: str) -> list[str]:
    """The command prefix that runs a server under callgrind, collecting nothing until zeroed."""
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no"]


@contextlib.contextmanager
def callgrind_window(pid: int, out: str) -> Iterator[dict[str, int]]:
    """Count the instructions `pid` (running under `callgrind_wrapper`) runs during the block."""
    result: dict[str, int] = {}
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
    try:
        yield result
    finally:
        before = set(Path(out).parent.glob(Path(out).name + "*"))
        subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
        dumps = sorted(set(Path(out).parent.glob(Path(out).name + "*")) - before)
        total = 0
        for dump in dumps:
            for line in dump.read_text(errors="replace").splitlines():
                if line.startswith(("summary:", "totals:")):
                    total = max(total, int(line.split()[1]))
                    break
        result["instructions"] = total
