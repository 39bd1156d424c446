"""Deployment: the systemd unit shipped in the package, and the node's sd_notify readiness."""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actors import Directory, NodeConfig
from actors._systemd import UNIT_NAME, unit_text
from actors.cli import app
from actors.db import Database

ROOT = Path(__file__).resolve().parent.parent


class UnitParser(configparser.ConfigParser):
    """An INI reader with systemd's case-sensitive keys and no % interpolation."""

    def __init__(self) -> None:
        super().__init__(interpolation=None, strict=True)

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def parse(text: str) -> configparser.ConfigParser:
    parser = UnitParser()
    parser.read_string(text)
    return parser


def test_the_shipped_unit_runs_a_node_under_systemd_rules() -> None:
    unit = parse(unit_text())
    assert unit.sections() == ["Unit", "Service", "Install"]
    service = unit["Service"]
    assert service["Type"] == "notify"  # READY=1 when discoverable
    assert service["ExecStart"].endswith("actors node --config /etc/actors/%i.toml")
    assert service["ExecStartPre"].endswith("actors config check /etc/actors/%i.toml")
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillSignal"] == "SIGTERM"
    # systemd must not kill the node before its own bound: stop_timeout + 5 s
    assert float(service["TimeoutStopSec"]) > NodeConfig().stop_timeout + 5
    assert service["Restart"] == "on-failure"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_analyze_verifies_the_installed_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze not found: .ci/run must install systemd")
        pytest.skip("systemd-analyze is not installed (the parse test above still runs)")
    actors = shutil.which("actors") or str(Path(sys.executable).with_name("actors"))
    result = CliRunner().invoke(app, ["systemd-unit", "--executable", actors])
    assert result.exit_code == 0, result.output
    assert f"ExecStart={actors} node" in result.output
    unit = tmp_path / UNIT_NAME.replace("@", "@node-1")  # an instance of the template
    unit.write_text(result.output)
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # not even a warning (an unknown key, a typo)
    # and it does catch mistakes: a unit whose executable is missing fails
    unit.write_text(result.output.replace(actors, str(tmp_path / "no-such-actors")))
    broken = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert broken.returncode != 0


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    yield sock, path
    sock.close()


def test_the_node_tells_systemd_ready_once_discoverable(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    url = f"sqlite:///{tmp_path / 'n.sqlite3'}"
    config = tmp_path / "node.toml"
    config.write_text(
        f'host = "sd-1"\ndatabase_url = "{url}"\nreport_interval = 30\nservice_down_time = 90\n'
        f'periodic_fuzzy_delay = 0\n[[services]]\nmanager = "tests.node_managers:Recorder"\n'
        f'options = {{ journal = "{tmp_path / "j"}" }}\n'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": path}
    proc = subprocess.Popen([sys.executable, "-m", "actors", "node", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            cwd=ROOT)
    try:
        assert sock.recv(4096) == b"READY=1"
        directory = Directory(Database(url), timeout=10)
        assert directory.proxy("recorder", "sd-1").ping().get(timeout=10) == "pong from sd-1"
        directory.close()
        os.kill(proc.pid, signal.SIGTERM)
        assert sock.recv(4096) == b"STOPPING=1"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
