"""Traces across two bridges (OpenTelemetry SDK, in memory), traceparent propagation, JSON logs."""

from __future__ import annotations

import io
import json
import logging
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import transport
from actors._logjson import JsonFormatter
from actors._metrics import ManagerProbe
from actors._node import ConfigError, NodeConfig
from actors._tracing import Tracing, configured_tracing
from tests.observed_managers import Leaf, Relay
from tests.test_node import NodeProcess

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("test-host"))
    log = logging.getLogger("tests.observed_managers")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield out
    finally:
        log.removeHandler(handler)


def lines(out: io.StringIO) -> dict[str, dict[str, Any]]:
    """The JSON log lines, by message."""
    parsed = [json.loads(line) for line in out.getvalue().splitlines()]
    return {line["message"]: line for line in parsed}


@pytest.fixture
def two_nodes() -> Iterator[tuple[Any, Any, transport.Bridge, transport.Bridge]]:
    relay, leaf = Relay.start(host="a"), Leaf.start(host="b")
    with transport.Bridge("tcp://127.0.0.1:*") as bridge_a, transport.Bridge(
        "tcp://127.0.0.1:*"
    ) as bridge_b:
        bridge_a.expose("relay", relay)
        bridge_b.expose("leaf", leaf)
        yield relay, leaf, bridge_a, bridge_b


def test_a_call_chain_across_two_bridges_is_one_trace(
    two_nodes: tuple[Any, Any, transport.Bridge, transport.Bridge], json_logs: io.StringIO
) -> None:
    relay, leaf, bridge_a, bridge_b = two_nodes
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider)
    relay.proxy().mailbox_probe = ManagerProbe(tracing=tracing, label="relay")
    leaf.proxy().mailbox_probe = ManagerProbe(tracing=tracing, label="leaf")
    tracing.install()
    try:
        with (
            provider.get_tracer("test").start_as_current_span("root") as root,
            transport.use_context(user_id="alice") as ctx,
            transport.connect(bridge_a.endpoint, timeout=10) as conn,
        ):
            answer = conn.proxy("relay").relay(bridge_b.endpoint, "hi").get(timeout=10)
    finally:
        tracing.uninstall()
    assert answer == "relayed hi"
    trace_id = root.get_span_context().trace_id
    spans = {(span.name, span.kind): span for span in exporter.get_finished_spans()}
    chain = [
        spans[("relay.relay", SpanKind.CLIENT)],
        spans[("relay.relay", SpanKind.SERVER)],
        spans[("leaf.echo", SpanKind.CLIENT)],
        spans[("leaf.echo", SpanKind.SERVER)],
    ]
    assert {span.context.trace_id for span in chain} == {trace_id}
    parent = root.get_span_context().span_id
    for span in chain:  # each span is the child of the one before it
        assert span.parent is not None
        assert span.parent.span_id == parent
        parent = span.context.span_id
    assert chain[1].attributes is not None
    assert chain[1].attributes["actors.request_id"] == ctx.request_id
    logged = lines(json_logs)
    relaying, echoing = logged["relaying hi"], logged["echoing hi"]
    assert relaying["trace_id"] == echoing["trace_id"] == f"{trace_id:032x}"
    assert relaying["span_id"] == f"{chain[1].context.span_id:016x}"
    assert echoing["span_id"] == f"{chain[3].context.span_id:016x}"
    assert relaying["request_id"] == echoing["request_id"] == ctx.request_id
    assert relaying["host"] == "test-host"
    assert relaying["logger"] == "tests.observed_managers"


@pytest.mark.parametrize("traceparent", [5, b"00-x", ["a"], "garbage", None])
def test_a_bad_traceparent_starts_a_new_trace(
    two_nodes: tuple[Any, Any, transport.Bridge, transport.Bridge], traceparent: Any
) -> None:
    relay, _, bridge_a, bridge_b = two_nodes
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    relay.proxy().mailbox_probe = ManagerProbe(tracing=Tracing(provider), label="relay")
    with (
        transport.use_context(transport.RequestContext(traceparent=traceparent)),
        transport.connect(bridge_a.endpoint, timeout=10) as conn,
    ):
        assert conn.proxy("relay").relay(bridge_b.endpoint, "y").get(timeout=10) == "relayed y"
    (server,) = exporter.get_finished_spans()
    assert server.kind is SpanKind.SERVER
    assert server.parent is None  # a root span: nothing usable came in


def test_traceparent_travels_on_without_opentelemetry(
    two_nodes: tuple[Any, Any, transport.Bridge, transport.Bridge], json_logs: io.StringIO
) -> None:
    _, _, bridge_a, bridge_b = two_nodes
    incoming = transport.RequestContext(traceparent=f"00-{TRACE}-{PARENT}-01")
    with (
        transport.use_context(incoming),
        transport.connect(bridge_a.endpoint, timeout=10) as conn,
    ):
        assert conn.proxy("relay").relay(bridge_b.endpoint, "x").get(timeout=10) == "relayed x"
    logged = lines(json_logs)
    for message in ("relaying x", "echoing x"):
        assert logged[message]["trace_id"] == TRACE
        assert logged[message]["span_id"] == PARENT
        assert logged[message]["request_id"] == incoming.request_id


def test_no_tracing_without_a_configured_provider() -> None:
    assert configured_tracing() is None  # the API is installed, no SDK provider is set


@pytest.mark.parametrize("where", ["config", "cli"])
def test_a_node_writes_json_log_lines_with_the_ids(tmp_path: Path, where: str) -> None:
    config = tmp_path / "leaf.toml"
    config.write_text(f"""
host = "node-j"
database_url = "sqlite:///{tmp_path / 'cluster.sqlite3'}"
log_format = "{'json' if where == 'config' else 'text'}"

[[services]]
manager = "tests.observed_managers:Leaf"
""")
    process = NodeProcess(config, *(["--log-format", "json"] if where == "cli" else []))
    try:
        incoming = transport.RequestContext("req-json-test", traceparent=f"00-{TRACE}-{PARENT}-01")
        with (
            transport.use_context(incoming),
            transport.connect(process.endpoint, timeout=10) as conn,
        ):
            assert conn.proxy("leaf.node-j").echo("json").get(timeout=10) == "json"
        line = json.loads(process.wait_for_log('"echoing json"'))
    finally:
        process.kill()
    assert line["request_id"] == "req-json-test"
    assert line["trace_id"] == TRACE
    assert line["span_id"] == PARENT
    assert line["host"] == "node-j"
    assert line["level"] == "INFO"
    started = [json.loads(text) for text in process.stderr if "serving" in text]
    assert started
    assert started[0]["request_id"] is None


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ('log_format = "yaml"', 'log_format = "yaml": expected one of "text", "json"'),
        ('[metrics]\nbind = "9464"', 'metrics.bind = "9464": expected a "HOST:PORT" address'),
        ("[metrics]\nport = 9464", "metrics.port = 9464: unknown key; valid keys: bind"),
        ("[metrics]", "metrics.bind: missing"),
    ],
)
def test_observability_config_errors_are_one_line(extra: str, error: str) -> None:
    data = tomllib.loads(f'{extra}\n[[services]]\nmanager = "x:Y"\n')
    with pytest.raises(ConfigError) as caught:
        NodeConfig.from_dict(data)
    assert error in str(caught.value)
    assert "\n" not in str(caught.value)


def test_one_trace_across_two_node_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two real nodes with an OpenTelemetry SDK: relay on one calls leaf on the other."""
    db = f"sqlite:///{tmp_path / 'cluster.sqlite3'}"
    processes = []
    try:
        for host, manager in (("node-b", "Leaf"), ("node-a", "Relay")):
            config = tmp_path / f"{host}.toml"
            config.write_text(f"""
host = "{host}"
database_url = "{db}"
log_format = "json"

[[services]]
manager = "tests.traced_managers:{manager}"
""")
            monkeypatch.setenv("ACTORS_TEST_SPANS", str(tmp_path / f"{host}.spans"))
            processes.append(NodeProcess(config))
        leaf_node, relay_node = processes
        incoming = transport.RequestContext(traceparent=f"00-{TRACE}-{PARENT}-01")
        with (
            transport.use_context(incoming),
            transport.connect(relay_node.endpoint, timeout=10) as conn,
        ):
            relay = conn.proxy("relay.node-a", check=False)
            answer = relay.relay(leaf_node.endpoint, "far", "leaf.node-b").get(timeout=10)
        assert answer == "relayed far"
        relaying = json.loads(relay_node.wait_for_log('"relaying far"'))
        echoing = json.loads(leaf_node.wait_for_log('"echoing far"'))
    finally:
        for process in processes:
            process.kill()

    def spans(host: str) -> dict[tuple[str, str], dict[str, Any]]:
        lines = (tmp_path / f"{host}.spans").read_text(encoding="utf-8").splitlines()
        return {(span["name"], span["kind"]): span for span in map(json.loads, lines)}

    a, b = spans("node-a"), spans("node-b")
    served = a[("relay.relay", "SERVER")]
    sent = a[("leaf.node-b.echo", "CLIENT")]
    echoed = b[("leaf.echo", "SERVER")]
    assert {served["trace_id"], sent["trace_id"], echoed["trace_id"]} == {TRACE}
    assert served["parent_id"] == PARENT  # the caller's traceparent
    assert sent["parent_id"] == served["span_id"]
    assert echoed["parent_id"] == sent["span_id"]
    assert relaying["trace_id"] == echoing["trace_id"] == TRACE
    assert (relaying["span_id"], echoing["span_id"]) == (served["span_id"], echoed["span_id"])
    assert relaying["request_id"] == echoing["request_id"] == incoming.request_id
