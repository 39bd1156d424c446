"""The fault suite's node: its settings and the process that runs it in its namespace."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import transport
from tests.faults._lab import ADDRESSES, Lab, Postgres, Process

REPORT_INTERVAL = 1.0
SERVICE_DOWN_TIME = 3.0
DB_CONNECT_TIMEOUT = 2.0  # the node's (libpq's least): a connection attempt fails within it
DB_USER_TIMEOUT = 1.0  # the node's tcp_user_timeout: a statement unanswered on the wire fails
# the longest one heartbeat write can hang: the pre-ping on a pooled connection, then a reconnect
DB_ATTEMPT = DB_USER_TIMEOUT + DB_CONNECT_TIMEOUT
NODE_HOST = "node-f"
ENDPOINT = f"tcp://{ADDRESSES['node']}:5555"
ACTOR = f"ledger.{NODE_HOST}"


class Node:
    """An ``actors node`` process inside the node's namespace, running one `Ledger`."""

    def __init__(self, lab: Lab, pg: Postgres, workdir: Path) -> None:
        self.lab = lab
        self.journal = workdir / "ledger.journal"
        keys = workdir / "keys"
        transport.write_keypair(keys, "cluster")  # the bridge's
        transport.write_keypair(keys, "node")  # the node's own, as a client
        transport.write_keypair(keys / "clients", "client")  # the test client's, allowed
        self.keys = keys
        self.config = workdir / "node.toml"
        timeouts = (f"connect_timeout={DB_CONNECT_TIMEOUT:g}"
                    f"&tcp_user_timeout={DB_USER_TIMEOUT * 1000:.0f}"
                    "&keepalives_idle=1&keepalives_interval=1&keepalives_count=2")
        self.config.write_text(f"""
host = "{NODE_HOST}"
database_url = "{pg.url}?{timeouts}"
bind = "{ENDPOINT}"
report_interval = {REPORT_INTERVAL}
service_down_time = {SERVICE_DOWN_TIME}
periodic_fuzzy_delay = 0
stop_timeout = 5

[[services]]
manager = "tests.faults._managers:Ledger"
options = {{ journal = "{self.journal}" }}

[curve]
server_keys = "{keys / 'cluster.key_secret'}"
client_keys = "{keys / 'node.key_secret'}"
allowed_clients = "{keys / 'clients'}"
""")
        self.process: Process | None = None
        self.start()

    def start(self) -> None:
        self.process = Process(
            [*self.lab.prefix("node"), sys.executable, "-m", "actors", "node",
             "--config", str(self.config)]
        )
        line = self.process.line(timeout=60)
        if line is None or not line.startswith("ready "):
            self.process.kill()
            pytest.fail(f"the node did not get ready: {line!r}\n" + "".join(self.process.stderr))

    @property
    def log(self) -> Process:
        assert self.process is not None
        return self.process

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def journal_lines(self) -> list[tuple[str, int]]:
        if not self.journal.exists():
            return []
        entries = []
        for line in self.journal.read_text().splitlines():
            sender, seq = line.split()
            entries.append((sender, int(seq)))
        return entries
