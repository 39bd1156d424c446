"""A throwaway PostgreSQL server for tests, from the machine's own binaries.

The server runs as an unprivileged user when the tests run as root (PostgreSQL
refuses root), listens on 127.0.0.1 only, on a free port, with its data in a
temporary directory, and is stopped by PID at the end.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

UNPRIVILEGED_USER = "nobody"


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, newest version first."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    if found and Path(os.path.realpath(found)).with_name("initdb").exists():
        return Path(os.path.realpath(found)).parent
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """A running server; `url` is a SQLAlchemy URL for its ``postgres`` database."""

    root: Path
    port: int
    pid: int
    bin_dir: Path
    user: str | None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str) -> str:
        """Create a fresh database; return its URL."""
        self._run([str(self.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                   "-U", "postgres", name])
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGQUIT)  # immediate shutdown
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"),
                       "-m", "immediate", "-w", "-t", "20", "stop"], check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, argv: list[str], *, check: bool = True) -> None:
        subprocess.run(argv, user=self.user, check=check, capture_output=True, timeout=60)


def start_postgres() -> PostgresServer:
    """Initialise and start a server; raise RuntimeError with the server's log on failure."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        msg = "no PostgreSQL binaries (initdb, pg_ctl) on this machine"
        raise FileNotFoundError(msg)
    user = UNPRIVILEGED_USER if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="actors-pg-"))
    root.chmod(0o755)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data, log = root / "data", root / "server.log"
    port = _free_port()
    server = PostgresServer(root=root, port=port, pid=0, bin_dir=bin_dir, user=user)
    try:
        server._run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                     "--auth=trust", "-E", "UTF8", "--no-sync"])
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        server._run([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log),
                     "-w", "-t", "60", "start"])
    except subprocess.CalledProcessError as exc:
        detail = log.read_text() if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        msg = f"PostgreSQL did not start: {exc.stderr!r}\n{detail}"
        raise RuntimeError(msg) from exc
    server.pid = int((data / "postmaster.pid").read_text().split()[0])
    return server


def start_postgres_or_skip() -> PostgresServer:
    """`start_postgres`, or a skip that says why (a failure under CI, which installs it)."""
    import pytest  # noqa: PLC0415 - only the fixtures need it

    try:
        return start_postgres()
    except FileNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}: .ci/run must install PostgreSQL")
        pytest.skip(f"{exc}; install Debian's postgresql package to run this test")
