"""The noise-free counts per call: system calls, context switches, instructions.

System calls come from ``strace -f -c`` attached to every thread of a process
for a window of calls; context switches from ``/proc/PID/task/*/status``
(voluntary: a thread blocked and was woken again); instructions from
``callgrind``, zeroed and dumped around the window. A loaded machine moves
latencies by tens of percent and these counts by nothing.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


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
    return ["valgrind", "-q", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no"]


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
