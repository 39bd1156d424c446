"""bench.critical's pieces for real, on loopback: the minimal peers, the pairings, the marks."""

from __future__ import annotations

import importlib
import math
import shutil
import sys
import threading
from typing import TYPE_CHECKING, Any

import pytest
import zmq

import transport
from bench import _harness as h
from bench import _minimal, critical

if TYPE_CHECKING:
    from pathlib import Path

needs_valgrind = pytest.mark.skipif(
    shutil.which("valgrind") is None or shutil.which("callgrind_control") is None,
    reason="valgrind is not installed",
)


@pytest.mark.parametrize("poll", [False, True], ids=["blocking", "poll"])
def test_the_minimal_server_answers_our_proxy_and_the_minimal_client(poll: bool) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router, endpoint = _minimal.bind(ctx)
    stop = threading.Event()
    thread = threading.Thread(target=_minimal.answer, args=(router, stop), kwargs={"poll": poll})
    thread.start()
    client = _minimal.MinimalClient(endpoint, timeout=10)
    try:
        with transport.connect(endpoint, timeout=10) as conn:
            proxy = conn.proxy("sink")  # a describe: the minimal description is enough
            assert proxy.echo([1, "x"]).get(timeout=10) == [1, "x"]
            assert [proxy.echo(i).get(timeout=10) for i in range(5)] == list(range(5))
        assert client.call({"a": [1, 2]}) == {"a": [1, 2]}
    finally:
        client.close()
        stop.set()
        thread.join(10)
        router.close(linger=0)
        ctx.term()
    assert not thread.is_alive()


def test_the_minimal_client_calls_our_own_socket_server() -> None:
    with h.spawn("bench.critical", "--serve", "own") as server:
        client = _minimal.MinimalClient(server.line, timeout=10)
        try:
            assert [client.call([i, "x"]) for i in range(3)] == [[0, "x"], [1, "x"], [2, "x"]]
        finally:
            client.close()


def test_every_pairing_is_timed_and_the_shares_follow(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "critical.json"
    module: Any = importlib.import_module("bench.critical")
    argv = ["bench.critical", "--rounds", "2", "--block", "20", "--json", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    module.main()
    data, rows = h.read_json(out)
    assert data["benchmark"] == "bench.critical"
    lat = data["results"]["latency"]
    assert list(lat) == ["raw", "min", "our client", "our server", "ours"]
    for values in lat.values():
        assert values["calls"] == 40  # two blocks of 20, warm-up calls left out
        assert 0 < values["p50 us"] <= values["p99 us"] < 1e6
    share = data["results"]["shares us"]
    p50 = {name: values["p50 us"] for name, values in lat.items()}
    assert share["client"] == pytest.approx(p50["our client"] - p50["min"])
    assert share["server"] == pytest.approx(p50["our server"] - p50["min"])
    assert share["both"] == pytest.approx(p50["ours"] - p50["min"])
    p50_row = next(row for row in rows if row.measure == "call p50")
    assert p50_row.floor == "raw"
    assert set(p50_row.ratios()) == {"min", "our client", "our server", "ours"}


def _dumps(*marks: h.Mark | None) -> list[h.Dump]:
    return [h.Dump(part, 1, mark, 1000 + part) for part, mark in enumerate(marks, 1)]


def test_client_calls_are_told_apart_by_how_they_waited() -> None:
    recv, send, wake, poll = critical.RECV, critical.SEND, critical.WAKE, critical.POLL
    dumps = _dumps(send, recv, send, poll, wake, recv, send, recv, send, None, send, poll, recv,
                   send)  # fmt: skip
    paths = critical.client_paths(dumps)  # the parts that end at a send:
    assert paths == {"lean": [1003, 1009], "general": [1007], "checked": [1014]}
    assert h.spans(dumps, recv, send) == [1003, 1007, 1009, 1014]
    assert critical.server_path(_dumps(send, wake, send, send, wake, recv, send)) == [1003]


@needs_valgrind
def test_callgrind_counts_a_real_client_and_server_between_the_marks() -> None:
    client = critical.count("client", "min", "min", 20)
    assert client["general"]["calls"] == client["checked"]["calls"] == 0  # it never checks
    assert client["lean"]["calls"] >= 18
    assert 1_000 < client["lean"]["median"] < 200_000
    server = critical.count("server", "min-poll", "min", 20)["wake-up"]
    assert server["of"] == 20
    assert 0 < server["calls"] <= 20
    assert 1_000 < server["median"] < 200_000
    counted = {"client": {"min": client}, "server": {"min poll": {"wake-up": server}}}
    rows = critical.instruction_rows(counted)
    assert [row.measure for row in rows] == ["client critical path", "server critical path"]
    assert rows[0].values["min"] == client["lean"]["median"]
    assert not math.isnan(rows[1].values["min poll"])


@pytest.mark.parametrize("pairings", ["raw,nope", "ours,our client"])
def test_pairings_must_be_known_and_include_the_floors(
    pairings: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["bench.critical", "--pairings", pairings])
    with pytest.raises(SystemExit) as info:
        critical.main()
    assert info.value.code == 2
    assert "--pairings: raw and min" in capsys.readouterr().err


@needs_valgrind
def test_a_wider_lean_slice_keeps_our_client_lean_under_callgrind() -> None:
    counted = critical.count("client", "min", "ours", 20, lean_slice_ms=100)
    assert counted["lean"]["calls"] >= 15  # (the once-a-second sweep may check first)
    assert counted["general"]["calls"] <= 2
    assert 1_000 < counted["lean"]["median"] < 500_000


def test_a_file_that_is_not_a_callgrind_dump_is_refused() -> None:
    with pytest.raises(ValueError, match="not a callgrind dump"):
        h.parse_dump("events: Ir\nfn=(1) main\n")
