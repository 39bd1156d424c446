"""A private RabbitMQ node from Debian's ``rabbitmq-server`` package, on 127.0.0.1 only.

It runs as the ``rabbitmq`` user (so we must be root), with its own epmd on a
free port, a unique node name, free AMQP and distribution ports, and its
database and logs in a temporary directory; no plugins. Erlang's schedulers
do not busy-wait (``+sbwt none``...), as RabbitMQ's docs advise on a host whose
CPUs are shared: here with the Python clients and servers on 2 cores.
Everything it starts is stopped by PID (with ``rabbitmqctl stop`` as a fallback).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench._peers.common import Unavailable, free_port, stop

if TYPE_CHECKING:
    from collections.abc import Iterator

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
CTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")
USER = "rabbitmq"
ERL_ARGS = "+sbwt none +sbwtdcpu none +sbwtdio none -kernel inet_dist_use_interface {127,0,0,1}"
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def _answers_amqp(port: int) -> bool:
    """Whether a broker on the port answers the AMQP 0-9-1 header with a frame."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(AMQP_HEADER)
            return sock.recv(1) == b"\x01"  # a method frame: Connection.Start
    except OSError:
        return False


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def rabbitmq(timeout: float = 90.0) -> Iterator[str]:
    """Run a node for the duration of the block; yield its AMQP URL (user guest)."""
    if not SERVER.exists() or shutil.which("epmd") is None:
        raise Unavailable("not installed (apt-get install rabbitmq-server)")
    if os.geteuid() != 0:
        raise Unavailable("cannot start: must be root to run it as the rabbitmq user")
    user = pwd.getpwnam(USER)
    base = Path(tempfile.mkdtemp(prefix="bench-rabbitmq-"))
    os.chown(base, user.pw_uid, user.pw_gid)
    port, dist_port, epmd_port = free_port(), free_port(), free_port()
    node = f"bench{os.getpid()}@localhost"
    (base / "enabled_plugins").write_text("[].\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": user.pw_dir,  # its Erlang cookie
        "LANG": "C.UTF-8",
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),  # absent: defaults
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": ERL_ARGS,
        "ERL_EPMD_PORT": str(epmd_port),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }
    log = base / "server.out"
    epmd = server = None
    try:
        with open(base / "epmd.out", "wb") as out:
            epmd = subprocess.Popen(
                ["epmd", "-port", str(epmd_port), "-address", "127.0.0.1"],
                user=USER, group=user.pw_gid, env=env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        with open(log, "wb") as out:
            server = subprocess.Popen(
                [str(SERVER)],
                user=USER, group=user.pw_gid, env=env, cwd=base, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not _answers_amqp(port):
            if server.poll() is not None:
                raise Unavailable(f"cannot start: exited ({server.returncode}): {_tail(log)}")
            if time.monotonic() > deadline:
                raise Unavailable(f"cannot start: no AMQP on port {port} after {timeout:.0f} s")
            time.sleep(0.25)
        yield f"rabbit://guest:guest@127.0.0.1:{port}/"
    finally:
        if server is not None:
            _stop_server(server, node, env)
        if epmd is not None:
            stop(epmd)
        shutil.rmtree(base, ignore_errors=True)


def _stop_server(server: subprocess.Popen[bytes], node: str, env: dict[str, str]) -> None:
    """SIGTERM (the script passes it to the VM), else ``rabbitmqctl stop``, else SIGKILL."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run(
                    [str(CTL), "-n", node, "stop"],
                    user=USER, env=env, timeout=30, check=False,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)  # its session: the VM's helpers, if any remain
    stop(server)
