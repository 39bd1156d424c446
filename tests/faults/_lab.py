"""A small network of namespaces for fault tests: hosts, a switch, iptables faults.

Each host (``db``, ``node``, ``client``) is a network namespace with one
interface, ``eth0``, addressed in 198.18.13.0/24 (RFC 2544's benchmarking range,
which no real network routes), cabled by a veth pair to a Linux bridge in a
``lan`` namespace. Nothing is configured in the machine's own namespace. Faults
are iptables rules inside the namespaces (each has its own tables, gone with the
namespace): a partition drops a host's packets on both sides, so nothing gets a
reset or an error, only silence; loss drops a random share. ``tc netem`` delay
is used only where the kernel has it (`Lab.has_netem`).

Every namespace and process is removed by `Lab.close`, which the fixture calls
even when a test fails; namespaces left by a run that was killed are removed by
the next run (their names carry the dead run's PID).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SUBNET = "198.18.13"
ADDRESSES = {"db": f"{SUBNET}.1", "node": f"{SUBNET}.2", "client": f"{SUBNET}.3"}
PREFIX = "actf"


class LabUnavailable(RuntimeError):
    """Namespaces, veths or iptables cannot be used here; the message says why."""


def run(argv: list[str], *, check: bool = True, timeout: float = 30) -> str:
    """Run a command; return its stdout (raise with its stderr on failure)."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        msg = f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}"
        raise RuntimeError(msg)
    return done.stdout


def unavailable_reason() -> str | None:
    """Why this machine cannot run the lab, or ``None`` when it can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (run the fault suite as root, as CI does)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            if os.environ.get("CI"):
                msg = f"no `{tool}` command: .ci/run must install iproute2 and iptables"
                raise RuntimeError(msg)
            return f"no `{tool}` command (Debian: apt-get install iproute2 iptables)"
    return None


def _delete_namespace(name: str) -> None:
    """Kill what still runs inside the namespace (only this suite starts anything there)."""
    for pid in run(["ip", "netns", "pids", name], check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    run(["ip", "netns", "delete", name], check=False)


def _remove_stale() -> None:
    """Delete the namespaces (and their processes) of earlier runs that were killed."""
    for line in run(["ip", "netns", "list"], check=False).splitlines():
        name = line.split()[0] if line.strip() else ""
        found = re.fullmatch(rf"{PREFIX}(\d+)-\w+", name)
        if found and not Path(f"/proc/{found.group(1)}").exists():
            _delete_namespace(name)


@dataclass
class Lab:
    """The namespaces of one run; use `Lab.create` and `close`."""

    tag: str
    namespaces: list[str] = field(default_factory=list)
    rules: list[tuple[str, list[str]]] = field(default_factory=list)
    has_netem: bool = False

    @classmethod
    def create(cls) -> Lab:
        """Build the network; raise `LabUnavailable` with the reason when it cannot be made."""
        reason = unavailable_reason()
        if reason:
            raise LabUnavailable(reason)
        _remove_stale()
        lab = cls(tag=f"{PREFIX}{os.getpid()}")
        try:
            lab._build()
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            lab.close()
            raise LabUnavailable(f"cannot build the test network: {exc}") from exc
        return lab

    def ns(self, host: str) -> str:
        """The namespace name of `host`."""
        return f"{self.tag}-{host}"

    def _build(self) -> None:
        lan = self.ns("lan")
        for host in ("lan", *ADDRESSES):
            run(["ip", "netns", "add", self.ns(host)])
            self.namespaces.append(self.ns(host))
            run(["ip", "-n", self.ns(host), "link", "set", "lo", "up"])
        run(["ip", "-n", lan, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", lan, "link", "set", "br0", "up"])
        for index, (host, address) in enumerate(ADDRESSES.items()):
            port = f"p{index}"
            run(["ip", "-n", lan, "link", "add", port, "type", "veth",
                 "peer", "name", "eth0", "netns", self.ns(host)])
            run(["ip", "-n", lan, "link", "set", port, "master", "br0", "up"])
            run(["ip", "-n", self.ns(host), "addr", "add", f"{address}/24", "dev", "eth0"])
            run(["ip", "-n", self.ns(host), "link", "set", "eth0", "up"])
        probe = subprocess.run(
            ["ip", "netns", "exec", self.ns("node"), "tc", "qdisc", "add", "dev", "eth0",
             "root", "netem", "delay", "1ms"],
            capture_output=True, text=True, timeout=10, check=False,
        )
        self.has_netem = probe.returncode == 0
        if self.has_netem:
            self.exec("node", ["tc", "qdisc", "del", "dev", "eth0", "root"])
        # the switch is up when the client reaches the node
        self.exec("client", ["ping", "-c", "1", "-W", "5", ADDRESSES["node"]], check=False)

    def exec(self, host: str, argv: list[str], *, check: bool = True) -> str:
        """Run a command inside `host`'s namespace."""
        return run(["ip", "netns", "exec", self.ns(host), *argv], check=check)

    def prefix(self, host: str) -> list[str]:
        """The argv prefix that runs a command inside `host`'s namespace."""
        return ["ip", "netns", "exec", self.ns(host)]

    # -- faults --------------------------------------------------------------------

    def _add_rule(self, host: str, rule: list[str]) -> None:
        self.exec(host, ["iptables", "-I", *rule])
        self.rules.append((host, rule))

    def isolate(self, host: str, *, loss: float | None = None) -> None:
        """Drop `host`'s traffic (all of it, or a random `loss` share) on both sides."""
        sample = ["-m", "statistic", "--mode", "random", "--probability", f"{loss}"] if loss else []
        self._add_rule(host, ["INPUT", "-i", "eth0", *sample, "-j", "DROP"])
        for peer in ADDRESSES:
            if peer != host:
                self._add_rule(peer, ["INPUT", "-s", ADDRESSES[host], *sample, "-j", "DROP"])

    def cut(self, host: str, peer: str) -> None:
        """Drop everything between `host` and `peer` (both ways), nothing else."""
        self._add_rule(host, ["INPUT", "-s", ADDRESSES[peer], "-j", "DROP"])
        self._add_rule(peer, ["INPUT", "-s", ADDRESSES[host], "-j", "DROP"])

    def delay(self, host: str, ms: int) -> None:
        """Delay `host`'s outgoing packets by `ms` (needs `has_netem`)."""
        self.exec(host, ["tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", f"{ms}ms"])

    def heal(self) -> None:
        """Remove every fault."""
        while self.rules:
            host, rule = self.rules.pop()
            self.exec(host, ["iptables", "-D", *rule], check=False)
        if self.has_netem:
            for host in ADDRESSES:
                self.exec(host, ["tc", "qdisc", "del", "dev", "eth0", "root"], check=False)

    def close(self) -> None:
        """Delete every namespace (their interfaces and rules go with them)."""
        for name in reversed(self.namespaces):
            _delete_namespace(name)
        self.namespaces.clear()


class Process:
    """A process in a namespace, stopped by PID; its output is collected line by line."""

    def __init__(self, argv: list[str], *, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )
        self.out: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.stderr: list[str] = []
        self._logged = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(pipe: Any, into: queue.SimpleQueue[str | None]) -> None:
        for line in pipe:
            into.put(line)
        into.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._logged:
                self.stderr.append(line)
                self._logged.notify_all()
        with self._logged:
            self._logged.notify_all()

    def send(self, line: str) -> None:
        """Write a line to the process's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def line(self, timeout: float) -> str | None:
        """The next stdout line (``None`` at its end); raise TimeoutError after `timeout`."""
        try:
            return self.out.get(timeout=timeout)
        except queue.Empty:
            msg = f"no output within {timeout}s; stderr:\n{''.join(self.stderr[-30:])}"
            raise TimeoutError(msg) from None

    def log_count(self, text: str) -> int:
        return sum(text in line for line in self.stderr)

    def wait_for_log(self, text: str, timeout: float) -> None:
        """Wait until a stderr line contains `text`; raise TimeoutError after `timeout`."""
        self.wait_for_log_count(text, 1, timeout=timeout)

    def wait_for_log_count(self, text: str, count: int, *, timeout: float) -> None:
        """Wait until `count` stderr lines contain `text`; raise TimeoutError after `timeout`."""
        with self._logged:
            self._logged.wait_for(
                lambda: self.log_count(text) >= count or not self._readers[1].is_alive(), timeout
            )
        if self.log_count(text) < count:
            msg = f"fewer than {count} log lines with {text!r}:\n{''.join(self.stderr[-30:])}"
            raise TimeoutError(msg)

    def kill(self) -> None:
        """SIGKILL by PID, if it still runs; reap it and close its pipes."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        for reader in self._readers:
            reader.join(timeout=10)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):  # a stdin the dead process left unread
                    pipe.close()


class Postgres:
    """A PostgreSQL server inside the ``db`` namespace, run as an unprivileged user."""

    def __init__(self, lab: Lab, workdir: Path) -> None:
        from tests._postgres import UNPRIVILEGED_USER, find_pg_bin  # noqa: PLC0415

        bin_dir = find_pg_bin()
        if bin_dir is None:
            msg = "no PostgreSQL binaries (initdb, pg_ctl) on this machine"
            raise FileNotFoundError(msg)
        self.lab = lab
        self.bin_dir = bin_dir
        self.user = UNPRIVILEGED_USER
        del workdir  # pytest's is private to root; the server's user needs its own
        self.root = Path(tempfile.mkdtemp(prefix="actors-faults-pg-"))
        self.root.chmod(0o755)
        shutil.chown(self.root, self.user)
        self.data = self.root / "data"
        self.address = ADDRESSES["db"]
        self.url = f"postgresql+psycopg2://postgres@{self.address}:5432/postgres"
        self._pg(["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync"])
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {SUBNET}.0/24 trust\n")
        self.start()

    def _pg(self, argv: list[str]) -> str:
        tool = str(self.bin_dir / argv[0])
        return self.lab.exec("db", ["runuser", "-u", self.user, "--", tool, *argv[1:]])

    def start(self) -> None:
        """Start (or start again) the server, keeping its data."""
        options = (f"-p 5432 -k {self.root} -c listen_addresses={self.address} -c fsync=off "
                   "-c max_connections=50")
        self._pg(["pg_ctl", "-D", str(self.data), "-o", options, "-l",
                  str(self.root / "server.log"), "-w", "-t", "60", "start"])

    def stop(self) -> None:
        """Stop at once (as a crash would), keeping the data."""
        self._pg(["pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop"])

    def close(self) -> None:
        """Stop if running, by the postmaster's PID if pg_ctl fails; then remove the data."""
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
                self.stop()
        if pid_file.exists():
            with contextlib.suppress(ValueError, ProcessLookupError, IndexError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
