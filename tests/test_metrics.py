"""Metrics scraped over HTTP from a real node process while it serves calls; `actors top --once`."""

from __future__ import annotations

import io
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from typer.testing import CliRunner

import transport
from actors import Directory, ManualClock, TimerActor
from actors._metrics import BUCKETS, SAMPLE, ManagerProbe, NodeCollector, parse_bind
from actors._top import _quantile, run_top
from actors.cli import app
from actors.db import Database
from tests.observed_managers import Counter
from tests.test_node import NodeProcess
from tests.test_service import make_service

LABELS = {"manager": "Counter", "topic": "counter", "host": "node-m"}


def scrape(url: str) -> dict[str, tuple[str, dict[tuple[str, frozenset[Any]], float]]]:
    """Family name -> (type, {(sample name, labels): value})."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    families = {}
    for family in text_string_to_metric_families(text):
        samples = {(s.name, frozenset(s.labels.items())): s.value for s in family.samples}
        families[family.name] = (family.type, samples)
    return families


def value(families: dict[str, Any], family: str, sample: str, **labels: str) -> float:
    return float(families[family][1][(sample, frozenset(labels.items()))])


def manager_value(families: dict[str, Any], family: str, sample: str | None = None) -> float:
    return value(families, family, sample or family, **LABELS)


@pytest.fixture(scope="module")
def metrics_node(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[NodeProcess, str, str]]:
    tmp = tmp_path_factory.mktemp("metrics")
    db_url = f"sqlite:///{tmp / 'cluster.sqlite3'}"
    config = tmp / "node-m.toml"
    config.write_text(f"""
host = "node-m"
database_url = "{db_url}"
report_interval = 1
service_down_time = 5
periodic_fuzzy_delay = 0

[[services]]
manager = "tests.observed_managers:Counter"

[metrics]
bind = "127.0.0.1:0"
""")
    process = NodeProcess(config)
    try:
        line = process.wait_for_log("metrics at ")
        url = line.split("metrics at ")[1].strip()
        yield process, url, db_url
    finally:
        process.kill()


@pytest.fixture
def counter(metrics_node: tuple[NodeProcess, str, str]) -> Iterator[Any]:
    with transport.connect(metrics_node[0].endpoint, timeout=10) as conn:
        yield conn.proxy("counter.node-m", check=False)  # no describe traffic


def test_names_and_types(metrics_node: tuple[NodeProcess, str, str], counter: Any) -> None:
    counter.add(1).get(timeout=10)
    families = scrape(metrics_node[1])
    expected = {
        "actors_mailbox_depth": "gauge",
        "actors_mailbox_wait_seconds": "histogram",
        "actors_handler_duration_seconds": "histogram",
        "actors_calls": "counter",
        "actors_casts": "counter",
        "actors_ticks": "counter",
        "actors_handler_errors": "counter",
        "actors_periodic_runs": "counter",
        "actors_periodic_failures": "counter",
        "actors_heartbeat_age_seconds": "gauge",
        "actors_last_tick_age_seconds": "gauge",
        "actors_manager_up": "gauge",
        "actors_manager_restarts": "counter",
        "actors_bridge_messages": "counter",
        "actors_bridge_bytes": "counter",
        "actors_bridge_refused": "counter",
        "process_resident_memory_bytes": "gauge",
    }
    assert {name: families[name][0] for name in expected if name in families} == expected
    buckets = [
        float(dict(labels)["le"])
        for (name, labels) in families["actors_handler_duration_seconds"][1]
        if name.endswith("_bucket")
    ]
    assert sorted(buckets) == [*BUCKETS, float("inf")]
    assert manager_value(families, "actors_manager_up") == 1.0
    assert manager_value(families, "actors_calls", "actors_calls_total") >= 1


def test_values_move_with_the_calls_served(
    metrics_node: tuple[NodeProcess, str, str], counter: Any
) -> None:
    url = metrics_node[1]
    counter.add(0).get(timeout=10)
    before = scrape(url)
    for _ in range(SAMPLE):  # enough calls that one is timed, whatever came before
        counter.add(1).get(timeout=10)
    for _ in range(2):
        with pytest.raises(ValueError, match="asked to fail"):
            counter.fail().get(timeout=10)
    for _ in range(3):
        counter.add.defer(1)
    counter.add(0).get(timeout=10)  # after the casts (per-sender order)
    with pytest.raises(transport.NoSuchMethod):
        counter.no_such_method().get(timeout=10)
    with (
        transport.connect(metrics_node[0].endpoint, timeout=10) as conn,
        pytest.raises(transport.UnknownActor),
    ):
        conn.proxy("nobody", check=False).add(1).get(timeout=10)
    after = scrape(url)

    def delta(family: str, sample: str | None = None, **labels: str) -> float:
        if labels:
            return value(after, family, sample or family, **labels) - value(
                before, family, sample or family, **labels
            )
        return manager_value(after, family, sample) - manager_value(before, family, sample)

    calls = SAMPLE + 3  # add() SAMPLE times, fail() twice, add(0) once
    assert delta("actors_calls", "actors_calls_total") == calls
    assert delta("actors_casts", "actors_casts_total") == 3
    assert delta("actors_handler_errors", "actors_handler_errors_total") == 2
    # Every SAMPLE-th call and cast is timed, and every tick: 1 or 2 calls, 0 or 1 cast.
    timed = delta("actors_handler_duration_seconds", "actors_handler_duration_seconds_count")
    ticks = delta("actors_ticks", "actors_ticks_total")
    assert 1 + ticks <= timed <= 3 + ticks
    assert delta("actors_mailbox_wait_seconds", "actors_mailbox_wait_seconds_count") == timed
    assert delta("actors_handler_duration_seconds", "actors_handler_duration_seconds_sum") > 0
    # The calls, the casts and two refused calls reached the bridge; replies and refusals
    # went back.
    requests = calls + 3 + 2
    assert delta("actors_bridge_messages", "actors_bridge_messages_total", direction="in") == (
        requests
    )
    assert delta("actors_bridge_messages", "actors_bridge_messages_total", direction="out") == (
        calls + 2
    )
    assert delta("actors_bridge_bytes", "actors_bridge_bytes_total", direction="in") > requests * 20
    refused = {
        dict(labels)["reason"]: count
        for (_, labels), count in after["actors_bridge_refused"][1].items()
    }
    assert refused.get("no_such_method", 0) >= 1
    assert refused.get("unknown_actor", 0) >= 1


def test_mailbox_depth_shows_what_waits(
    metrics_node: tuple[NodeProcess, str, str], counter: Any, tmp_path: Path
) -> None:
    with socket.socket(socket.AF_UNIX) as gate:  # hold() blocks until its end is closed
        gate.bind(str(tmp_path / "gate"))
        gate.listen(1)
        gate.settimeout(10)
        counter.hold.defer(str(tmp_path / "gate"))
        for _ in range(3):
            counter.add.defer(1)
        held, _ = gate.accept()  # the manager is inside hold(): the casts queue behind it
        with held:
            deadline = time.monotonic() + 10
            depth = 0.0
            while depth < 3 and time.monotonic() < deadline:  # the casts are in flight meanwhile
                depth = manager_value(scrape(metrics_node[1]), "actors_mailbox_depth")
            assert depth >= 3
    counter.add(0).get(timeout=10)
    assert manager_value(scrape(metrics_node[1]), "actors_mailbox_depth") == 0


def test_periodic_tasks_heartbeats_and_ticks(metrics_node: tuple[NodeProcess, str, str]) -> None:
    url = metrics_node[1]
    deadline = time.monotonic() + 15
    while True:  # the node's periodic tasks run on its real clock, once a second
        families = scrape(url)
        runs = families["actors_periodic_runs"][1]
        failures = families["actors_periodic_failures"][1]
        failed = ("actors_periodic_failures_total", frozenset({**LABELS, "task": "flaky"}.items()))
        beat = ("actors_periodic_runs_total", frozenset({**LABELS, "task": "report_state"}.items()))
        if (failures.get(failed, 0) >= 1 and beat in runs) or time.monotonic() > deadline:
            break
    task = {**LABELS}

    def of(samples: dict[Any, float], name: str, task_name: str) -> float:
        return samples[(name, frozenset({**task, "task": task_name}.items()))]

    assert of(failures, "actors_periodic_failures_total", "flaky") >= 1
    assert of(runs, "actors_periodic_runs_total", "flaky") >= of(
        failures, "actors_periodic_failures_total", "flaky"
    )
    assert of(runs, "actors_periodic_runs_total", "steady") >= 1
    assert of(failures, "actors_periodic_failures_total", "steady") == 0
    assert of(runs, "actors_periodic_runs_total", "report_state") >= 1
    assert 0 <= manager_value(families, "actors_heartbeat_age_seconds") < 5
    assert 0 <= manager_value(families, "actors_last_tick_age_seconds") < 5
    assert manager_value(families, "actors_ticks", "actors_ticks_total") >= 1
    directory = Directory(Database(metrics_node[2]), service_down_time=5)
    try:
        assert [row.host for row in directory.services("counter", up_only=True)] == ["node-m"]
    finally:
        directory.close()


def test_top_once_shows_the_managers(
    metrics_node: tuple[NodeProcess, str, str], counter: Any
) -> None:
    stop = threading.Event()

    def load() -> None:
        for _ in range(20_000):  # bounded; stopped once `top` has printed
            if stop.is_set():
                return
            counter.add(1).get(timeout=10)

    with pytest.raises(transport.NoSuchMethod):
        counter.nothing_here().get(timeout=10)
    worker = threading.Thread(target=load)
    worker.start()
    try:
        result = CliRunner().invoke(
            app, ["top", metrics_node[1], "--once", "--interval", "0.5"], env={"COLUMNS": "160"}
        )
    finally:
        stop.set()
        worker.join(timeout=20)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(line for line in lines if "calls/s" in line)
    for column in ("mailbox", "calls/s", "errors", "handler p99", "last tick", "heartbeat"):
        assert column in header
    row = next(line for line in lines if "Counter" in line)
    cells = [cell.strip() for cell in row.split("│") if cell.strip()]
    assert cells[:4] == ["Counter", "counter", "node-m", "yes"]
    assert float(cells[5].replace(",", "")) > 0  # calls/s over the window
    assert cells[8].endswith(("µs", "ms"))  # handler p99
    assert cells[10].endswith("ago")  # last tick
    caption = next(line for line in lines if "bridge: in " in line)
    assert "/s, out " in caption
    assert re.search(r"refused: .*no_such_method \d+", caption)


def test_top_live_refreshes(metrics_node: tuple[NodeProcess, str, str], counter: Any) -> None:
    counter.add(1).get(timeout=10)
    out = io.StringIO()
    run_top(metrics_node[1], Console(file=out, width=160), interval=0.05, count=2)
    row = next(line for line in out.getvalue().splitlines() if "Counter" in line)
    cells = [cell.strip() for cell in row.split("│") if cell.strip()]
    # A file is no terminal: Live prints the last table, whose rates need a refresh.
    assert cells[:4] == ["Counter", "counter", "node-m", "yes"]
    assert cells[5] != "-"
    float(cells[5].replace(",", ""))


def test_top_reports_an_unreachable_endpoint() -> None:
    result = CliRunner().invoke(app, ["top", "http://127.0.0.1:9/metrics", "--once"])
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_quantile_interpolates_within_a_bucket() -> None:
    buckets = [(0.001, 50.0), (0.01, 100.0), (float("inf"), 100.0)]
    assert _quantile(0.5, buckets) == pytest.approx(0.001)
    assert _quantile(0.75, buckets) == pytest.approx(0.0055)
    assert _quantile(0.99, [(0.001, 0.0), (float("inf"), 0.0)]) is None
    assert _quantile(0.99, [(0.001, 0.0), (float("inf"), 4.0)]) == 0.001


def test_parse_bind() -> None:
    assert parse_bind("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_bind("[::1]:0") == ("::1", 0)
    for bad in ("9464", "host:", "host:99999", ":80"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_bind(bad)


def test_probe_counts_without_a_node() -> None:
    """The collector reports a probe's counts for a service-like object (no threads)."""
    probe = ManagerProbe()
    assert probe.run(lambda m: m * 2, 21, None, None) == 42
    with pytest.raises(KeyError):
        probe.run(lambda m: {}[m], "x", None, None)
    probe.failed()  # the mailbox tells the probe (see test_a_probe_keeps_the_mailbox_semantics)
    for _ in range(SAMPLE):
        probe.run(lambda m: m, 1, None, None)
    probe.task_ran("t", failed=True)
    assert probe.counts == {"call": 0, "cast": SAMPLE + 2, "tick": 0}
    assert probe.errors == 1
    assert sum(probe.handler.counts) == (SAMPLE + 2) // SAMPLE  # every SAMPLE-th cast
    assert sum(probe.wait.counts) == 0  # no arrival time on a local message
    assert probe.tasks == {"t": [1, 1]}
    assert list(NodeCollector(list)._manager_metrics())  # families even with no service


def test_a_probe_keeps_the_mailbox_semantics(caplog: pytest.LogCaptureFixture) -> None:
    """With a probe, a failing call still reaches its caller and a failing cast is logged."""
    ref = Counter.start(host="p")
    probe = ManagerProbe()
    proxy = ref.proxy()
    proxy.mailbox_probe = probe
    with pytest.raises(ValueError, match="asked to fail"):
        proxy.fail().get(timeout=5)
    proxy.fail.defer()
    assert proxy.add(2).get(timeout=5) == 2  # still serving, after the failing cast
    assert "fail() failed" in caplog.text
    counts = probe.counts
    assert counts["call"] == 2  # fail() and add(); the setattr ran before the probe was set
    assert counts["cast"] == 1
    assert probe.errors == 2
    ref.stop()


def _samples(collector: NodeCollector) -> dict[tuple[str, frozenset[Any]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def test_a_service_keeps_its_probe_across_restarts_and_reports_heartbeat_age(
    tmp_path: Path, clock: ManualClock
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'services.sqlite3'}")
    timer = TimerActor.start(clock=clock)
    bridge = transport.Bridge("tcp://127.0.0.1:*")
    bridge.start()
    conn = transport.connect(bridge.endpoint, timeout=5)
    try:
        service = make_service(db, timer, clock, bridge, restart_backoff=(0.01, 0.05))
        service.mailbox_probe = ManagerProbe()
        service.start()
        collector = NodeCollector(lambda: [service], lambda: bridge)
        labels = frozenset({"manager": "Journal", "topic": "journal", "host": "node-1"}.items())
        # start() marks the service up (a first write): its age is 0 on the manual clock.
        assert _samples(collector)[("actors_heartbeat_age_seconds", labels)] == 0.0
        timer.proxy().advance(10).get(timeout=10)  # the first heartbeat, at +10 s
        timer.proxy().advance(3).get(timeout=10)
        samples = _samples(collector)
        assert samples[("actors_heartbeat_age_seconds", labels)] == 3.0  # the manual clock's
        assert samples[("actors_ticks_total", labels)] >= 1
        remote = conn.proxy("journal.node-1", check=False)
        remote.note("before").get(timeout=5)
        with pytest.raises(transport.RemoteError, match="SystemExit"):
            remote.explode().get(timeout=5)
        assert service.wait_for_restart(1, timeout=10)
        remote.note("after").get(timeout=5)
        samples = _samples(collector)
        assert samples[("actors_manager_restarts_total", labels)] == 1
        assert samples[("actors_manager_up", labels)] == 1
        # note, explode and note again: the fresh manager was given the same probe.
        assert samples[("actors_calls_total", labels)] >= 3
        in_total = ("actors_bridge_messages_total", frozenset({"direction": "in"}.items()))
        assert samples[in_total] == 3
        service.stop()
    finally:
        conn.close()
        bridge.stop()
        db.dispose()
