"""Child processes of the benchmarks: start one, talk to it by lines, stop it by its PID.

A server is a module run as ``python -m``: it prints one line when ready (its
endpoint) and serves until its stdin closes (`serve_until_stdin_closes`). A
measuring child (`run_module`) runs to its end in its own session and is killed
with its group if it overstays.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

ROOT = Path(__file__).resolve().parents[2]
"""The source tree the benchmarks run from (its ``bench``, ``actors`` and ``transport``)."""


def stop_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """Stop a child by its PID: close its stdin, then SIGTERM, then SIGKILL; always bounded."""
    if proc.stdin is not None and not proc.stdin.closed:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None and proc.poll() is None:
            proc.send_signal(sig)
        try:
            proc.wait(grace)
            break
        except subprocess.TimeoutExpired:
            continue
    if proc.stdout is not None and not proc.stdout.closed:
        proc.stdout.close()


@dataclass
class Server:
    """A child process that answers by lines: its first line, the ones after, how to stop it."""

    proc: subprocess.Popen[bytes]
    name: str
    line: str = ""
    """Its first line (a server's endpoint)."""
    _buffer: bytes = b""

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def readline(self, timeout: float) -> str:
        """The next line the child prints; `RuntimeError` if none comes within `timeout`."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise RuntimeError(f"no answer from {self.name} within {timeout:g} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"{self.name} exited (status {self.proc.wait(5)})")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode().strip()

    def command(self, text: str, timeout: float) -> str:
        """Write `text` as a line to the child's stdin; return the line it answers."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()
        return self.readline(timeout)

    def rss_bytes(self) -> int:
        """The child's resident set size."""
        return rss_bytes(self.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU time the child has used so far (all its threads)."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, grace: float = 15.0) -> None:
        """Close its stdin (the cue to stop), wait; SIGTERM, SIGKILL if it does not stop."""
        stop_process(self.proc, grace)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _environ(tree: str | os.PathLike[str] | None, env: dict[str, str] | None) -> dict[str, str]:
    """The child's environment: `tree`'s packages first, then this tree's."""
    path = [str(Path(tree).resolve())] if tree is not None else []
    return {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join([*path, str(ROOT)])}


def spawn(
    module: str,
    *args: str,
    tree: str | os.PathLike[str] | None = None,
    wrapper: Sequence[str] = (),
    start_timeout: float = 120.0,
    env: dict[str, str] | None = None,
) -> Server:
    """Run ``python -m module *args``; return it once it printed its first line.

    Args:
        module: the module to run (``bench.remote``).
        args: its arguments.
        tree: a directory whose packages come first on the child's path (another
            revision's ``actors`` and ``transport``, from `revision_tree`); this
            tree's come next.
        wrapper: a command to run it under (``valgrind --tool=callgrind ...``).
        start_timeout: seconds to wait for its first line.
        env: extra environment variables.

    Raises:
        RuntimeError: it exited or printed nothing in time (it is stopped).
    """
    # ``-m`` puts the working directory first on the path, ahead of PYTHONPATH.
    cwd = ROOT if tree is None else Path(tree).resolve()
    proc = subprocess.Popen(
        [*wrapper, sys.executable, "-m", module, *args],
        cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_environ(tree, env),
    )  # fmt: skip
    server = Server(proc, " ".join([module, *args]))
    try:
        server.line = server.readline(start_timeout)
    except BaseException:
        server.stop(grace=1)
        raise
    if not server.line:
        server.stop(grace=1)
        raise RuntimeError(f"{server.name} printed an empty first line")
    return server


@contextlib.contextmanager
def servers(*specs: Sequence[str], env: dict[str, str] | None = None) -> Iterator[list[Server]]:
    """Start several servers at once (``[module, *args]`` each); stop them all after the block."""
    started: list[Server] = []
    with contextlib.ExitStack() as stack:
        environ = _environ(None, env)
        for spec in specs:
            proc = subprocess.Popen(
                [sys.executable, "-m", *spec],
                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environ,
            )  # fmt: skip
            started.append(stack.enter_context(Server(proc, " ".join(spec))))
        for server in started:
            server.line = server.readline(120)
        yield started


@dataclass(frozen=True)
class Finished:
    """What a child run to its end left: its status and output (or why it was killed)."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool


def run_module(module: str, *args: str, timeout: float) -> Finished:
    """Run ``python -m module *args`` to its end in its own session.

    If it overstays `timeout` its whole group is killed (by the child's PID, the
    group's id); so is anything of that group left when it ends.
    """
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
            cwd=ROOT, env=_environ(None, None), start_new_session=True,
        )  # fmt: skip
        timed_out = False
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        if timed_out:
            out, _ = proc.communicate(timeout=10)  # what it printed before it was killed
        err.seek(0)
        return Finished(None if timed_out else proc.returncode, out, err.read(), timed_out)


@contextlib.contextmanager
def revision_tree(rev: str) -> Iterator[Path]:
    """A temporary directory holding git revision `rev`'s ``actors`` and ``transport``.

    Pass it as `spawn`'s ``tree``: the child runs this tree's ``bench`` on that
    revision's runtime.
    """
    with tempfile.TemporaryDirectory(prefix="bench-rev-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, "actors", "transport"],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        yield Path(tmp)


def freeze_startup() -> None:
    """Keep the objects built so far out of future collections, as ``actors node`` does."""
    gc.collect()
    gc.freeze()


def serve_until_stdin_closes(line: str) -> None:
    """In a server: print `line` (its endpoint), then block until the parent closes stdin."""
    freeze_startup()
    print(line, flush=True)
    sys.stdin.read()


def serve_exposed(
    refs: dict[str, Any],
    *,
    own_sockets: bool = False,
    line_of: str | None = None,
    expose: dict[str, Any] | None = None,
    **bridge_options: Any,
) -> None:
    """In a server: expose `refs` on a `transport.Bridge` on loopback; serve until stdin closes.

    Args:
        refs: name -> actor ref to expose.
        own_sockets: each manager on its own socket (``Bridge(own_sockets=True)``).
        line_of: print this name's endpoint (default: the bridge's).
        expose: keyword arguments for every ``expose`` (``mailbox_limit=...``).
        bridge_options: more keyword arguments for the bridge.
    """
    import transport  # noqa: PLC0415 - servers only

    if own_sockets:
        bridge_options["own_sockets"] = True
    bridge = transport.Bridge("tcp://127.0.0.1:*", **bridge_options)
    try:
        for name, ref in refs.items():
            bridge.expose(name, ref, **(expose or {}))
        bridge.start()
        line = bridge.endpoint if line_of is None else bridge.endpoint_of(line_of)
        serve_until_stdin_closes(line)
    finally:
        bridge.stop()
        for ref in refs.values():
            ref.stop(block=False)
        for ref in refs.values():
            ref.actor_stopped.wait(10)


def rss_bytes(pid: int | None = None) -> int:
    """A process's resident set size, from /proc (Linux); default this process."""
    with open(f"/proc/{pid or 'self'}/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")
