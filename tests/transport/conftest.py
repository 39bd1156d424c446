"""Fixtures of the transport tests: server processes, in-process bridges, connections."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import transport
from tests.transport._actors import EVENT, GATE, start_actors

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    endpoint: str

    def kill(self) -> None:
        """SIGKILL by PID and reap."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """Ask to stop (stdin EOF), then kill by PID if it does not exit in time."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise TimeoutError(f"server process printed nothing within {timeout} s")
    line = proc.stdout.readline().strip()
    if not line:
        raise RuntimeError(f"server process exited early (code {proc.wait(5)})")
    return line


@pytest.fixture
def spawn_server() -> Iterator[Callable[..., ServerProcess]]:
    """Start `python -m tests.transport._server ARGS...`; every process is stopped at teardown."""
    started: list[ServerProcess] = []

    def spawn(*args: str) -> ServerProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.transport._server", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        server = ServerProcess(proc, "")
        started.append(server)
        server.endpoint = _read_line(proc, START_TIMEOUT)
        return server

    yield spawn
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server_endpoint() -> Iterator[str]:
    """One shared server process for tests that do not disturb it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.transport._server", "--max-message-size", "1000000"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    server = ServerProcess(proc, "")
    try:
        server.endpoint = _read_line(proc, START_TIMEOUT)
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def conn(server_endpoint: str) -> Iterator[transport.Connection]:
    """A connection to the shared server process (calls time out after 10 s)."""
    connection = transport.connect(server_endpoint, timeout=10.0)
    try:
        yield connection
    finally:
        connection.close(linger=0)


@pytest.fixture
def local_bridge() -> Iterator[transport.Bridge]:
    """A bridge in this process, serving the test actors (for server-side observations)."""
    GATE.clear()
    EVENT.clear()
    refs = start_actors()
    bridge = transport.Bridge("tcp://127.0.0.1:*")
    for name, ref in refs.items():
        bridge.expose(name, ref)
    bridge.start()
    try:
        yield bridge
    finally:
        GATE.set()  # unblock a gated actor so it can stop
        EVENT.set()
        bridge.stop()


@pytest.fixture
def local_conn(local_bridge: transport.Bridge) -> Iterator[transport.Connection]:
    connection = transport.connect(local_bridge.endpoint, timeout=10.0)
    try:
        yield connection
    finally:
        connection.close(linger=0)


def release_gate(connection: transport.Connection) -> Any:
    """Release the server's gate (unblocks Slow.wait_gate) and re-arm it afterwards."""
    return connection.proxy("gate").release().get(timeout=10)
