"""The node config: every key checked with a one-line error; the reference is generated."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from actors import ConfigError, Manager, NodeConfig
from actors._config import (
    CURVE_KEYS,
    METRICS_KEYS,
    NODE_KEYS,
    OPTIONAL_TABLES,
    SERVICE_KEYS,
    ServiceSpec,
    render_reference,
)
from actors._node import Node
from actors.cli import app

ROOT = Path(__file__).resolve().parent.parent

# Wrong values for every key, checked to cover the whole schema below.
BAD_NODE: dict[str, list[Any]] = {
    "host": [5, ""],
    "database_url": [5, "not a url"],
    "database_connect_timeout": [0, -1, "5s", True],
    "database_statement_timeout": [0, [30], "x"],
    "database_pool_timeout": [0, -2, "never"],
    "bind": ["http://127.0.0.1:80", 7],
    "report_interval": ["ten", -1, True, float("inf")],
    "service_down_time": ["60s", 0],
    "heartbeat_wait": [-0.5, "1s", False],
    "periodic_fuzzy_delay": [-1, "x"],
    "rpc_timeout": [0, [1]],
    "stop_timeout": [-5, "x"],
    "mailbox_limit": [0, -1, 2.5, "many", True],
    "own_sockets": [1, "yes"],
    "on_stop": ["delete", 1],
    "log_level": ["LOUD", 3],
    "log_format": ["xml", 1],
    "allowed_exception_modules": ["actors.demo.errors", [1], [""]],
}
BAD_SERVICE: dict[str, list[Any]] = {
    "manager": [5, "no_colon_here", ":Class"],
    "topic": [5, ""],
    "host": [5, " "],
    "cluster": [True, ""],
    "options": [[1], "x"],
}
BAD_CURVE: dict[str, list[Any]] = {
    "server_keys": [5, ""],
    "client_keys": [[], ""],
    "allowed_clients": [3, " "],
}
BAD_METRICS: dict[str, list[Any]] = {
    "bind": [9464, "9464", "localhost:", "127.0.0.1:99999"],
}
GOOD_SERVICE = {"manager": "tests.node_managers:Recorder"}
GOOD_CURVE = {"server_keys": "a", "client_keys": "b", "allowed_clients": "c"}


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == float("inf"):
        return "inf"
    return json.dumps(value)  # JSON scalars and arrays of them are TOML too


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text, encoding="utf-8")
    return path


def service_table(entry: dict[str, Any]) -> str:
    return "[[services]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in entry.items())


def test_the_bad_values_cover_every_key() -> None:
    assert set(BAD_NODE) == {k.name for k in NODE_KEYS}
    assert set(BAD_SERVICE) == {k.name for k in SERVICE_KEYS}
    assert set(BAD_CURVE) == {k.name for k in CURVE_KEYS}
    assert set(BAD_METRICS) == {k.name for k in METRICS_KEYS}
    tables = {table.name for table in OPTIONAL_TABLES}
    assert tables == {"curve", "metrics"}  # a new table needs its wrong values here too
    fields = set(NodeConfig.__dataclass_fields__) - {"services"} - tables
    assert fields == {k.name for k in NODE_KEYS}  # the dataclass follows the schema


def assert_one_line(exc: ConfigError, path: Path, key: str, value: Any, expected: str) -> None:
    message = str(exc)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert f"{key} = {toml_value(value)}" in message or f"{key} = " in message
    assert f"expected {expected}" in message, message


@pytest.mark.parametrize(
    ("key", "value"), [(k, v) for k, values in BAD_NODE.items() for v in values]
)
def test_every_node_key_refuses_a_wrong_value(tmp_path: Path, key: str, value: Any) -> None:
    path = write(tmp_path, f"{key} = {toml_value(value)}\n" + service_table(GOOD_SERVICE))
    with pytest.raises(ConfigError) as caught:
        NodeConfig.load(path)
    expected = next(k.expected for k in NODE_KEYS if k.name == key)
    assert_one_line(caught.value, path, key, value, expected)


@pytest.mark.parametrize(
    ("key", "value"), [(k, v) for k, values in BAD_SERVICE.items() for v in values]
)
def test_every_service_key_refuses_a_wrong_value(tmp_path: Path, key: str, value: Any) -> None:
    entry = {**GOOD_SERVICE, key: value}
    path = write(tmp_path, service_table(GOOD_SERVICE) + service_table(entry))
    with pytest.raises(ConfigError) as caught:
        NodeConfig.load(path)
    expected = next(k.expected for k in SERVICE_KEYS if k.name == key)
    assert_one_line(caught.value, path, f"services[1].{key}", value, expected)


@pytest.mark.parametrize(
    ("key", "value"), [(k, v) for k, values in BAD_CURVE.items() for v in values]
)
def test_every_curve_key_refuses_a_wrong_value(tmp_path: Path, key: str, value: Any) -> None:
    curve = {**GOOD_CURVE, key: value}
    text = service_table(GOOD_SERVICE) + "[curve]\n" + "".join(
        f"{k} = {toml_value(v)}\n" for k, v in curve.items()
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        NodeConfig.load(path)
    expected = next(k.expected for k in CURVE_KEYS if k.name == key)
    assert_one_line(caught.value, path, f"curve.{key}", value, expected)


@pytest.mark.parametrize(
    ("key", "value"), [(k, v) for k, values in BAD_METRICS.items() for v in values]
)
def test_every_metrics_key_refuses_a_wrong_value(tmp_path: Path, key: str, value: Any) -> None:
    text = service_table(GOOD_SERVICE) + f"[metrics]\n{key} = {toml_value(value)}\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        NodeConfig.load(path)
    expected = next(k.expected for k in METRICS_KEYS if k.name == key)
    assert_one_line(caught.value, path, f"metrics.{key}", value, expected)


def test_python_built_configs_are_checked_too() -> None:
    with pytest.raises(ConfigError, match=r'^report_interval = "ten": expected a number'):
        NodeConfig(report_interval="ten")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^services\.manager = 5: expected an import path"):
        ServiceSpec(manager=5)  # type: ignore[arg-type]
    cfg = NodeConfig(host="h", report_interval=2, log_level="debug")
    assert (cfg.report_interval, cfg.log_level) == (2.0, "DEBUG")
    assert cfg.effective_down_time == 60.0
    assert NodeConfig(report_interval=30, service_down_time=30).effective_down_time == 75.0
    # 0: no heartbeats, and nothing to raise the down time above
    assert NodeConfig(report_interval=0, service_down_time=30).effective_down_time == 30.0


def test_unknown_missing_and_misshapen_keys(tmp_path: Path) -> None:
    cases = {
        'reprot_interval = 5\n' + service_table(GOOD_SERVICE):
            "reprot_interval = 5: unknown key; valid keys: host, database_url, "
            "database_connect_timeout, database_statement_timeout, database_pool_timeout, "
            "bind, report_interval, service_down_time, heartbeat_wait, periodic_fuzzy_delay, "
            "rpc_timeout, stop_timeout, mailbox_limit, own_sockets, on_stop, log_level, "
            "log_format, allowed_exception_modules, [[services]], [curve], [metrics]",
        'host = "x"\n': "services: missing; expected at least one [[services]] table",
        # [services] written as a table, not an array of tables
        '[services]\nmanager = "a:B"\n':
            'services = {"manager": "a:B"}: expected at least one [[services]] table '
            "(an array of tables, each with a manager)",
        '[[services]]\ntopic = "x"\n':
            "services[0].manager: missing; expected an import path",
        service_table({**GOOD_SERVICE, "opts": {}}): "services[0].opts = {}: unknown key",
        service_table(GOOD_SERVICE) + '[curve]\nserver_keys = "a"\n':
            "curve.client_keys: missing; expected a path",
        service_table(GOOD_SERVICE) + 'curve = 5\n': "",  # a TOML error: keys after a table
        'host = "x\n': "not valid TOML",
    }
    for text, expected in cases.items():
        path = write(tmp_path, text)
        with pytest.raises(ConfigError) as caught:
            NodeConfig.load(path)
        assert "\n" not in str(caught.value)
        assert expected in str(caught.value), (text, str(caught.value))
    with pytest.raises(ConfigError, match="cannot read"):
        NodeConfig.load(tmp_path / "missing.toml")


def test_a_bad_value_stops_the_node_with_one_line_not_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, 'report_interval = "ten"\n' + service_table(GOOD_SERVICE))
    done = subprocess.run(
        [sys.executable, "-m", "actors", "node", "--config", str(path)],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f'error: {path}: report_interval = "ten": expected a number of seconds, 0 or more'
    ]


class Compactor(Manager):
    TOPIC = "compactor"
    OPTIONS = ("compact_every",)

    def __init__(self, *, compact_every: float = 60, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.compact_every = compact_every


class NeedsMagic(Manager):
    TOPIC = "magic"
    DEPENDENCIES = ("magic_wand",)


class NotAManager:
    pass


def check(manager: str, options: dict[str, Any] | None = None) -> None:
    Node(NodeConfig(services=(ServiceSpec(manager, options=options or {}),))).check()


def test_manager_and_option_mistakes_are_one_line_config_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        check("tests.test_config:Compactr")
    assert str(caught.value) == (
        'services[0].manager = "tests.test_config:Compactr": cannot import it: import path '
        "'tests.test_config:Compactr': 'tests.test_config' has no attribute 'Compactr'"
    )
    with pytest.raises(ConfigError, match=r"cannot import it: .*module 'tests.nowhere' cannot"):
        check("tests.nowhere:X")
    with pytest.raises(ConfigError) as caught:
        check("tests._raises_on_import:X")
    assert str(caught.value) == (
        'services[0].manager = "tests._raises_on_import:X": importing it raised RuntimeError: '
        "this module cannot be imported"
    )
    with pytest.raises(ConfigError, match=r"expected a subclass of actors\.Manager"):
        check("tests.test_config:NotAManager")
    # a typo in an option is refused, listing the valid ones (Manager swallowed it before)
    with pytest.raises(ConfigError) as caught:
        check("tests.test_config:Compactor", {"compact_evry": 5})
    assert str(caught.value) == (
        "services[0].options.compact_evry = 5: 'compact_evry' is not an option of Compactor; "
        "valid: compact_every"
    )
    with pytest.raises(ConfigError, match="'db' is given by the node, not set in options"):
        check("tests.test_config:Compactor", {"db": "x"})
    with pytest.raises(ConfigError, match="DEPENDENCIES names magic_wand, which no node"):
        check("tests.test_config:NeedsMagic")
    check("tests.test_config:Compactor", {"compact_every": 5})  # declared: accepted


def test_config_check_command(tmp_path: Path) -> None:
    good = write(tmp_path, service_table(GOOD_SERVICE))
    result = CliRunner().invoke(app, ["config", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert "1 service(s)" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text(service_table(GOOD_SERVICE) + 'options = { jounral = "x" }\n')
    for command in (["config", "check", str(bad)], ["node", "--config", str(bad)]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2
        assert result.output.strip() == (
            f"error: {bad}: services[0].options.jounral = \"x\": 'jounral' is not an option "
            "of Recorder; valid: journal"
        )


def test_docs_config_rst_is_generated_from_the_schema() -> None:
    text = (ROOT / "docs" / "config.rst").read_text(encoding="utf-8")
    assert text == render_reference(), "run: actors config reference > docs/config.rst"
    for key in (*NODE_KEYS, *SERVICE_KEYS, *CURVE_KEYS):
        assert f"\n``{key.name}``\n" in text


def test_docs_dependencies_rst_lists_what_the_node_gives() -> None:
    from actors._dependencies import CONTEXT, PROVIDERS  # noqa: PLC0415

    text = (ROOT / "docs" / "dependencies.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^``(\w+)`` \(", text, flags=re.MULTILINE))
    assert listed == {p.name for p in (*PROVIDERS, *CONTEXT)}
