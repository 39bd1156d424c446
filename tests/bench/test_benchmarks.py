"""Every benchmark: its ``--help``, the line it prints when run as a file, and small real runs."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from bench import _harness as h

if TYPE_CHECKING:
    from pathlib import Path

BENCHMARKS = sorted(p.stem for p in (h.ROOT / "bench").glob("*.py") if not p.stem.startswith("_"))


def run_main(monkeypatch: pytest.MonkeyPatch, name: str, *args: str) -> None:
    """Run ``python -m bench.NAME *args`` in this process."""
    module: Any = importlib.import_module(f"bench.{name}")
    monkeypatch.setattr(sys, "argv", [f"bench.{name}", *args])
    module.main()


def document(path: Path, benchmark: str) -> tuple[dict[str, Any], list[h.Row]]:
    data, rows = h.read_json(path)
    assert data["benchmark"] == benchmark
    return data, rows


def test_every_benchmark_is_found() -> None:
    assert {"remote", "percall", "peers", "scaling", "flood", "ab", "core"} <= set(BENCHMARKS)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_help(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        run_main(monkeypatch, name, "--help")
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:")
    assert "--json FILE" in out


def test_run_as_a_file_each_says_how_to_run_it(tmp_path: Path) -> None:
    """``python bench/x.py`` cannot import the package; each says the ``-m`` form instead."""
    script = (
        "import json, runpy, sys\n"
        "said = {}\n"
        "for name in sys.argv[2:]:\n"
        "    try:\n"
        "        runpy.run_path(f'{sys.argv[1]}/{name}.py', run_name='__main__')\n"
        "    except SystemExit as exc:\n"
        "        said[name] = str(exc.code)\n"
        "print(json.dumps(said))\n"
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(h.ROOT / "bench"), *BENCHMARKS],
        cwd=tmp_path, env=env, text=True, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert said == {name: f"run it as: python -m bench.{name}" for name in BENCHMARKS}


def test_percall_counts_for_real(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    out = tmp_path / "percall.json"
    try:
        args = ("--calls", "100", "--servers", "raw,own", "--json", str(out))
        run_main(monkeypatch, "percall", *args)
    except RuntimeError as exc:  # e.g. ptrace forbidden in this container
        if "strace failed to attach" not in str(exc):
            raise
        pytest.skip(str(exc))
    data, rows = document(out, "bench.percall")
    by_name = {row.measure: row for row in rows}
    syscalls = by_name["server syscalls"]
    assert syscalls.floor == "raw"
    assert syscalls.ours == "own"
    assert syscalls.values["raw"] > 2  # a recv and a send at least, per call
    assert syscalls.values["own"] > 2
    assert syscalls.target is not None
    assert by_name["server threads woken"].values["raw"] >= 1
    assert data["results"]["counts"]["raw"]["server recvfrom"] > 0


def test_ab_runs_a_revision_beside_this_tree(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if not (h.ROOT / ".git").exists():
        pytest.skip("not a git checkout: no revision to compare with")
    out = tmp_path / "ab.json"
    run_main(monkeypatch, "ab", "--rounds", "1", "--seconds", "0.05", "--json", str(out))
    data, rows = document(out, "bench.ab")
    assert [row.measure for row in rows] == [
        "casts small", "call p50 small", "pipelined small", "call p50 64KiB", "pipelined 64KiB"
    ]  # fmt: skip
    assert all(row.values["base"] > 0 and row.values["this tree"] > 0 for row in rows)
    assert len(data["results"]["base"]) == len(data["results"]["this tree"]) == 1


def test_sim_fidelity_writes_the_common_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "fidelity.json"
    run_main(monkeypatch, "sim_fidelity", "--schedules", "10", "--json", str(out))
    data, rows = document(out, "bench.sim_fidelity")
    assert data["results"]["schedules"] == 10
    assert data["results"]["steps"] > 10
    assert rows == []


def test_the_remote_loops_against_real_servers() -> None:
    """bench.remote's loops and the raw floors', a few calls each (the full run takes minutes)."""
    import transport  # noqa: PLC0415
    from bench import _floors, remote  # noqa: PLC0415

    with (
        h.servers(["bench.remote", "--serve", "own"], ["bench.remote", "--serve", "raw"]) as (
            ours, raw,
        ),
        transport.connect(ours.line, timeout=30) as conn,
    ):  # fmt: skip
        floors = _floors.Floors(raw.line, timeout=30)
        proxy = conn.proxy("sink")
        try:
            assert floors.call(_floors.SMALL)[5] == [_floors.SMALL]  # the request, echoed
            assert remote.bridge_call(proxy, _floors.SMALL) == _floors.SMALL
            samples = h.interleaved(
                {"raw": lambda: floors.call(1), "ours": lambda: remote.bridge_call(proxy, 1)},
                n=20, block=10, warm=2,
            )  # fmt: skip
            assert [len(s) for s in samples.values()] == [20, 20]
            for rate in (
                floors.pipelined(_floors.LARGE, 30),
                remote.bridge_pipelined(proxy, _floors.LARGE, 30),
                floors.oneway(_floors.SMALL, 100),  # asserts the server counted all 100
                remote.bridge_casts(proxy, _floors.SMALL, 100),  # the same, for the sink
            ):
                assert rate > 0
        finally:
            floors.close()
    rows = remote.rows({key: {"bridge": 2.0, "raw": 1.0} for key in remote.TARGETS})
    assert [row.met for row in rows][:2] == [False, False]  # 2x the floor: over 1.3x
    assert rows[4].met  # a rate at 200 % of the floor
