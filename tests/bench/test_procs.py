"""The harness's child processes, for real: spawn, lines, stop by PID, no process left."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bench import _harness as h

CHILD = "tests.bench._children"


def _dead(pid: int, within: float = 10.0) -> bool:
    """Whether `pid` is gone or a zombie, waiting at most `within` seconds for it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        os.sched_yield()
    return False


def test_spawn_reads_the_first_line_answers_commands_and_stops_at_stdin_end() -> None:
    with h.spawn(CHILD, "echo") as server:
        assert server.line == "ready"
        assert server.command("one", timeout=10) == "got one"
        assert server.command("two", timeout=10) == "got two"
        pid = server.pid
    assert server.proc.returncode == 0  # it left at its stdin's end: no signal needed
    assert _dead(pid)


def test_a_child_that_prints_nothing_is_an_error_and_is_not_left_behind() -> None:
    with pytest.raises(RuntimeError, match=r"exited \(status 3\)"):
        h.spawn(CHILD, "silent", start_timeout=30)


def test_readline_times_out_and_stop_escalates_to_sigkill() -> None:
    server = h.spawn(CHILD, "stubborn")  # ignores its stdin's end and SIGTERM
    with pytest.raises(RuntimeError, match="no answer"):
        server.readline(timeout=0.2)
    started = time.monotonic()
    server.stop(grace=0.3)
    assert server.proc.returncode == -9  # SIGKILL, after stdin's end and SIGTERM were ignored
    assert time.monotonic() - started < 5
    assert _dead(server.pid)


def test_servers_starts_several_and_stops_them_all() -> None:
    with h.servers([CHILD, "echo"], [CHILD, "echo"], [CHILD, "env"], env={"BENCH_TEST": "x"}) as (
        a, b, c,
    ):  # fmt: skip
        assert a.line == b.line == "ready"
        assert c.line.endswith(" x")  # the extra environment reached the child
        assert a.pid != b.pid
        pids = [a.pid, b.pid, c.pid]
    assert all(_dead(pid) for pid in pids)


def test_run_module_kills_the_whole_group_when_it_overstays() -> None:
    done = h.run_module(CHILD, "group", timeout=1.0)
    assert done.timed_out
    assert done.returncode is None
    grandchild = int(done.stdout.split()[0])  # printed before the timeout, still collected
    assert _dead(grandchild)


def test_run_module_returns_the_status_and_output_of_a_child_that_ends() -> None:
    done = h.run_module(CHILD, "silent", timeout=30)
    assert (done.returncode, done.stdout, done.timed_out) == (3, "", False)


def test_a_revision_tree_comes_first_on_the_child_path() -> None:
    if not (h.ROOT / ".git").exists():
        pytest.skip("not a git checkout: no revision to extract")
    with h.revision_tree("HEAD") as tree:
        assert (tree / "actors" / "__init__.py").is_file()
        assert (tree / "transport" / "__init__.py").is_file()
        assert not (tree / "bench").exists()  # the benchmarks stay this tree's
        with h.spawn(CHILD, "env", tree=tree) as server:
            assert Path(server.line.split()[0]) == tree / "actors"
    assert not tree.exists()


def test_rss_and_cpu_of_a_child() -> None:
    with h.spawn(CHILD, "echo") as server:
        assert server.rss_bytes() > 1 << 20  # a Python interpreter: over a MiB
        assert server.cpu_seconds() >= 0
    assert h.rss_bytes() > 1 << 20
