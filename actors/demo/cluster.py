"""``actors demo``: a scheduler and three volume nodes, as real processes on loopback.

On the embedded default (a SQLite file in a temporary directory) it starts a
scheduler node and three volume nodes, waits for their capability reports,
creates volumes through the scheduler, prints where they landed and each
node's capacity, stops one volume node, shows it going down and the scheduler
avoiding it, then shuts everything down.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from actors._discovery import Directory
from actors.db import Database

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["DemoSettings", "run_demo"]

REPORT_INTERVAL = 0.5
SERVICE_DOWN_TIME = 2.0

VOLUME_NODES = (
    ("vol-1", "sparse", 100),
    ("vol-2", "memory", 200),
    ("vol-3", "sparse", 150),
)


@dataclass
class DemoSettings:
    """What the demo does; `short` makes a quick run for tests."""

    volumes: int = 12
    more_volumes: int = 6
    size_gb: int = 20
    timeout: float = 30.0
    workdir: Path | None = None
    database_url: str | None = None  # default: a SQLite file in the work directory
    console: Console = field(default_factory=Console)


@dataclass
class _Node:
    host: str
    proc: subprocess.Popen[str]
    log: Path
    endpoint: str = ""

    def stop(self, timeout: float) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _node_config(workdir: Path, host: str, db_url: str, service: str) -> Path:
    path = workdir / f"{host}.toml"
    path.write_text(
        f'host = "{host}"\n'
        f'database_url = "{db_url}"\n'
        'bind = "tcp://127.0.0.1:*"\n'
        f"report_interval = {REPORT_INTERVAL}\n"
        f"service_down_time = {SERVICE_DOWN_TIME}\n"
        "periodic_fuzzy_delay = 0\n"
        "rpc_timeout = 10\n"
        "stop_timeout = 10\n"
        'log_level = "WARNING"\n'
        'allowed_exception_modules = ["actors.demo.errors"]\n\n'
        f"{service}\n"
    )
    return path


def _scheduler_service() -> str:
    return '[[services]]\nmanager = "actors.demo:SchedulerManager"\n'


def _volume_service(workdir: Path, host: str, driver: str, capacity: int) -> str:
    options = f"capacity_gb = {capacity}"
    if driver == "sparse":
        options += f', directory = "{workdir / host}"'
    return (
        '[[services]]\nmanager = "actors.demo:VolumeManager"\n'
        f'options = {{ driver = "{driver}", capabilities_interval = {REPORT_INTERVAL}, '
        f"driver_options = {{ {options} }} }}\n"
    )


def _start_node(workdir: Path, host: str, config: Path) -> _Node:
    log = workdir / f"{host}.log"
    with log.open("w") as err:
        proc = subprocess.Popen(  # noqa: S603  (this interpreter, our own module)
            [sys.executable, "-m", "actors", "node", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the demo, not the nodes
        )
    return _Node(host, proc, log)


def _wait_ready(node: _Node, timeout: float) -> None:
    lines: queue.SimpleQueue[str] = queue.SimpleQueue()
    stdout = node.proc.stdout
    assert stdout is not None
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        line = ""
    if not line.startswith("ready "):
        msg = f"node {node.host} did not start:\n{node.log.read_text()}"
        raise RuntimeError(msg)
    node.endpoint = line.split()[2]


def _wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.1)
    msg = f"timed out after {timeout:.0f}s waiting for {what}"
    raise TimeoutError(msg)


@contextlib.contextmanager
def _cluster(settings: DemoSettings) -> Iterator[tuple[Path, list[_Node], str]]:
    with contextlib.ExitStack() as stack:
        if settings.workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="actors-demo-")))
        else:
            workdir = settings.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        db_url = settings.database_url or f"sqlite:///{workdir / 'cluster.sqlite3'}"
        Database(db_url).dispose()  # create the tables once, before the nodes race to
        nodes: list[_Node] = []
        try:
            nodes.append(_start_node(workdir, "scheduler-1",
                                     _node_config(workdir, "scheduler-1", db_url,
                                                  _scheduler_service())))
            for host, driver, capacity in VOLUME_NODES:
                service = _volume_service(workdir, host, driver, capacity)
                nodes.append(_start_node(workdir, host,
                                         _node_config(workdir, host, db_url, service)))
            for node in nodes:
                _wait_ready(node, settings.timeout)
            yield workdir, nodes, db_url
        finally:
            for node in nodes:
                node.stop(timeout=15)


def _services_table(directory: Directory) -> Table:
    table = Table(title="services")
    for column in ("host", "topic", "endpoint", "state", "heartbeats"):
        table.add_column(column)
    for row in directory.services():
        state = "[green]up[/]" if directory.is_up(row) else "[red]down[/]"
        table.add_row(row.host, row.topic, row.endpoint or "-", state, str(row.report_count))
    return table


def run_demo(settings: DemoSettings | None = None) -> dict[str, Any]:
    """Run the demo; return what happened (placements, capacities, the stopped node)."""
    settings = settings or DemoSettings()
    out = settings.console
    started = time.monotonic()
    result: dict[str, Any] = {}
    with _cluster(settings) as (workdir, nodes, db_url):
        result["pids"] = [node.proc.pid for node in nodes]
        out.print(f"[bold]Demo cluster[/] in {workdir}: 1 scheduler and "
                  f"{len(VOLUME_NODES)} volume nodes, each its own process")
        directory = Directory(
            Database(db_url),
            service_down_time=SERVICE_DOWN_TIME,
            timeout=10,
            allowed_exception_modules=["actors.demo.errors"],
        )
        stack = contextlib.ExitStack()
        stack.callback(directory.close)
        with stack:
            scheduler = directory.proxy  # looked up afresh each time: round robin over up ones
            _wait_for(
                "the capability reports",
                lambda: bool(scheduler("scheduler").capabilities_reported().get(timeout=5))
                and len(scheduler("scheduler").backends().get(timeout=5)) == len(VOLUME_NODES),
                settings.timeout,
            )
            out.print(_services_table(directory))
            placements = _create(settings, out, scheduler, "vol", settings.volumes)
            result["placements"] = placements
            out.print(_placement_table(placements))
            result["capacity"] = _capacities(directory, out)

            victim = nodes[1]
            out.print(f"\nStopping [bold]{victim.host}[/] (SIGTERM) ...")
            victim.stop(timeout=15)
            _wait_for(
                f"{victim.host} to go down",
                lambda: not any(
                    row.host == victim.host for row in directory.services("volume", up_only=True)
                ),
                settings.timeout,
            )
            out.print(_services_table(directory))
            more = _create(settings, out, scheduler, "more", settings.more_volumes)
            result["stopped"] = victim.host
            result["after_stop"] = more
            out.print(_placement_table(more))
            avoided = all(p["host"] != victim.host for p in more)
            out.print(f"The scheduler avoided {victim.host}: "
                      f"{'[green]yes[/]' if avoided else '[red]no[/]'}")
    result["seconds"] = time.monotonic() - started
    out.print(f"\nAll nodes stopped; the demo took {result['seconds']:.1f}s.")
    return result


def _create(
    settings: DemoSettings, out: Console, scheduler: Callable[..., Any], prefix: str, count: int
) -> list[dict[str, Any]]:
    placed = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=out, transient=False) as progress:
        task = progress.add_task(f"creating {count} volumes", total=count)
        for i in range(count):
            volume = scheduler("scheduler").create_volume(f"{prefix}-{i:03d}", settings.size_gb)
            placed.append(volume.get(timeout=settings.timeout))
            progress.advance(task)
    return placed


def _placement_table(placements: list[dict[str, Any]]) -> Table:
    table = Table(title="where the volumes landed")
    table.add_column("volume")
    table.add_column("size (GB)", justify="right")
    table.add_column("host")
    for p in placements:
        table.add_row(str(p["id"]), str(p["size_gb"]), str(p["host"]))
    return table


def _capacities(directory: Directory, out: Console) -> dict[str, dict[str, Any]]:
    table = Table(title="capacity per volume node")
    for column in ("host", "total (GB)", "free (GB)", "volumes"):
        table.add_column(column, justify="right" if column != "host" else "left")
    capacities = {}
    for host, _, _ in VOLUME_NODES:
        cap = directory.proxy("volume", host=host).capacity().get(timeout=10)
        capacities[host] = cap
        table.add_row(host, str(cap.get("total_capacity_gb")), str(cap.get("free_capacity_gb")),
                      str(cap.get("volume_count", "-")))
    out.print(table)
    return capacities
