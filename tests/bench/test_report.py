"""Rows, targets, tables, the JSON schema and the plot of the harness."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from bench import _harness as h
from bench._harness import _plot


def rows() -> list[h.Row]:
    return [
        h.Row("call p50", {"own": 130.0, "raw": 100.0}, unit="us", floor="raw",
              target=h.Target("<=", 1.3)),
        h.Row("casts", {"own": 20.0, "raw": 100.0}, unit="msg/s", floor="raw",
              target=h.Target(">=", 0.3, "%")),
        h.Row("overhead", {"on": 103.0, "off": 100.0}, floor="off", figure=0.01,
              target=h.Target("<=", 0.03, "+%"), note="A/A noise +0.2%"),
        h.Row("idle pass", {"pass": 0.2}, unit="ms", target=h.Target("<", 20, "ms")),
        h.Row("threads", {"raw": 2.0, "bridge": 3.0, "own": 2.0}, floor="raw", subject="own",
              target=h.Target("<=", 1.0)),
    ]  # fmt: skip


def test_targets_compare_each_way_and_say_so() -> None:
    assert h.Target("<=", 1.3).met(1.3)
    assert not h.Target("<", 1.3).met(1.3)
    assert h.Target(">=", 0.5).met(0.5)
    assert not h.Target(">", 0.5).met(0.5)
    assert str(h.Target("<=", 1.3)) == "<= 1.30x"
    assert str(h.Target(">=", 0.5, "%")) == ">= 50 %"
    assert str(h.Target("<", 20, "ms")) == "< 20.0 ms"
    with pytest.raises(ValueError, match="unknown comparison"):
        h.Target("=<", 1)


def test_rows_check_the_ratio_the_figure_or_the_value() -> None:
    call, casts, overhead, idle, threads = rows()
    assert call.ratios() == {"own": 1.3}
    assert (call.checked, call.met) == (1.3, True)
    assert (casts.checked, casts.met) == (0.2, False)
    assert (overhead.checked, overhead.met) == (0.01, True)  # the figure, not 1.03
    assert (idle.ratios(), idle.checked, idle.met) == ({}, 0.2, True)
    assert (threads.ours, threads.checked, threads.met) == ("own", 1.0, True)
    assert h.all_met(rows()) is False
    assert h.all_met([call, idle]) is True
    assert h.all_met([h.Row("x", {"a": 1.0})]) is None


def test_the_table_has_each_series_its_ratio_and_the_verdicts() -> None:
    columns, cells = h.rows_table(rows())
    assert columns == ["measure", "own", "raw", "on", "off", "pass", "bridge",
                       "own/floor", "on/floor", "bridge/floor", "target", "ok", "note"]  # fmt: skip
    by_measure = {line[0]: dict(zip(columns, line, strict=True)) for line in cells}
    assert by_measure["call p50 (us)"]["own/floor"] == "1.30x"
    assert by_measure["call p50 (us)"]["ok"] == "yes"
    assert by_measure["casts (msg/s)"]["own/floor"] == "20 %"
    assert by_measure["casts (msg/s)"]["ok"] == "NO"
    assert by_measure["overhead"]["target"] == "+1.0 % <= +3.0 %"
    assert by_measure["idle pass (ms)"]["own/floor"] == "-"
    assert by_measure["threads"]["bridge/floor"] == "1.50x"
    assert by_measure["overhead"]["note"] == "A/A noise +0.2%"


def test_print_table_draws_every_cell(capsys: pytest.CaptureFixture[str]) -> None:
    h.print_table("the title", ["a", "b"], [["x1", "y1"], ["x2", "y2"]])
    out = capsys.readouterr().out
    assert all(word in out for word in ("the title", "x1", "y2"))


def test_json_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    written = h.write_json(path, "bench.test", {"raw": [1, 2]}, rows=rows(),
                           options={"quick": True}, elapsed=1.5)  # fmt: skip
    document, back = h.read_json(path)
    assert back == rows()
    assert document == json.loads(json.dumps(written))
    assert document["schema"] == h.SCHEMA
    assert (document["benchmark"], document["ok"]) == ("bench.test", False)
    assert document["results"] == {"raw": [1, 2]}
    assert document["rows"][0]["ratios"] == {"own": 1.3}
    assert document["machine"]["cpus"] >= 1


def test_read_json_refuses_another_document(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"call p50": 1}')
    with pytest.raises(ValueError, match="not a benchmark result"):
        h.read_json(path)


def test_output_with_json_to_stdout_keeps_the_tables_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = h.Output("bench.test", argparse.Namespace(json="-", plot=None, quick=True))
    assert out.compare("some rows", rows()[:2]) is False
    out.print("a line")
    out.finish({"x": 1})
    captured = capsys.readouterr()
    document = json.loads(captured.out)  # nothing but the JSON
    assert document["options"] == {"quick": True}
    assert [row["measure"] for row in document["rows"]] == ["call p50", "casts"]
    assert "some rows" in captured.err
    assert "a line" in captured.err


def test_plot_draws_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "rows.png"
    out = h.Output("bench.test", argparse.Namespace(json=None, plot=str(path)))
    out.compare("some rows", rows())
    out.finish({})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_stops_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what a missing package raises
    with pytest.raises(SystemExit, match=r"^--plot needs matplotlib: pip install") as info:
        h.Output("bench.test", argparse.Namespace(json=None, plot="x.png"))
    assert "\n" not in str(info.value)
    assert str(info.value) == _plot.MISSING
