"""The noise-free counts, on a real process: ``cat`` echoing lines back through pipes."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bench import _harness as h

if TYPE_CHECKING:
    from collections.abc import Iterator

# ``strace -c -f`` output, as strace 6 prints it (the harness's parser reads this format).
STRACE_SUMMARY = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 41.67    0.000250           2       100           write
 33.33    0.000200           2       101         1 read
 25.00    0.000150          75         2           futex
------ ----------- ----------- --------- --------- ----------------
100.00    0.000600           2       203         1 total
"""


def test_parse_strace_summary() -> None:
    assert h.parse_strace_summary(STRACE_SUMMARY) == {"write": 100, "read": 101, "futex": 2}


def _echo(proc: subprocess.Popen[bytes], lines: int) -> None:
    assert proc.stdin is not None
    assert proc.stdout is not None
    for _ in range(lines):
        proc.stdin.write(b"hello\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"hello\n"


@contextlib.contextmanager
def _cat(*wrapper: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [*wrapper, "cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _echo(proc, 1)  # started
        yield proc
    finally:
        h.stop_process(proc, grace=5)


@pytest.fixture
def cat() -> Iterator[subprocess.Popen[bytes]]:
    with _cat() as proc:
        yield proc


def _until_asleep(pid: int) -> None:
    """Wait (bounded) until `pid` sleeps: cat blocked in read() for the next line."""
    stat = Path(f"/proc/{pid}/stat")
    waiter = threading.Event()
    for _ in range(20_000):
        if stat.read_text().rpartition(")")[2].split()[0] == "S":
            return
        waiter.wait(0.0001)
    pytest.fail(f"{pid} never blocked")


def test_switches_counts_a_blocked_thread_woken_per_line(cat: subprocess.Popen[bytes]) -> None:
    assert cat.stdin is not None
    assert cat.stdout is not None
    before = h.switches(cat.pid)
    for _ in range(40):
        # Write only once cat sleeps in read(): else a line can be there before it
        # reads again, and that read does not block (CI saw 39 switches for 40 lines).
        _until_asleep(cat.pid)
        cat.stdin.write(b"hello\n")
        cat.stdin.flush()
        assert cat.stdout.readline() == b"hello\n"
    delta = h.switch_delta(before, h.switches(cat.pid))
    assert list(delta) == [cat.pid]  # cat has one thread
    voluntary, _ = delta[cat.pid]
    assert voluntary >= 40  # it blocked in read() before each line


def test_strace_window_counts_the_system_calls_of_the_window(
    cat: subprocess.Popen[bytes],
) -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    try:
        with h.strace_window(cat.pid) as counts:
            # 51 lines: the read() cat was blocked in when strace attached is not seen
            # whole, so it may not be counted (CI once counted 49 reads for 50 lines).
            _echo(cat, 51)
    except RuntimeError as exc:  # e.g. ptrace forbidden here
        pytest.skip(str(exc))
    assert counts["write"] >= 50
    assert counts["read"] >= 50


def test_callgrind_window_counts_instructions_in_proportion(tmp_path: Path) -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        pytest.skip("valgrind (callgrind) is not installed")
    out = str(tmp_path / "cat.cg")
    with _cat(*h.callgrind_wrapper(out)) as proc:
        counted = []
        for lines in (10, 100):
            with h.callgrind_window(proc.pid, out) as result:
                _echo(proc, lines)
            counted.append(result["instructions"])
        assert counted[0] > 0
        assert 9 <= counted[1] / counted[0] <= 11  # ten times the lines, ten times the work
