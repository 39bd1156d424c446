"""The ``actors`` command: run a node, look at the cluster, call a manager, make keys.

Run ``actors --help`` for the commands; ``python -m actors`` is the same.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from importlib.metadata import entry_points, version
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import transport
from actors._discovery import Directory
from actors._drivers import DRIVER_GROUP
from actors.db import Database, default_url

app = typer.Typer(
    name="actors",
    help="OpenStack-style managers as pykka actors, with a ZeroMQ bridge between hosts.",
    no_args_is_help=True,
    add_completion=False,
)

DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database", "-d", help="Database URL (default: $ACTORS_DATABASE_URL)."),
]
DownTimeOpt = Annotated[
    float, typer.Option(help="Seconds without a heartbeat before a service is down.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


class LogFormat(enum.StrEnum):
    """How a node writes its log lines."""

    text = "text"
    json = "json"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"actors {version('actors')}")
        raise typer.Exit


@app.callback()
def _main(
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """OpenStack-style managers as pykka actors."""


@app.command()
def info(as_json: JsonOpt = False) -> None:
    """Show the version, the default database and the installed drivers."""
    drivers = {ep.name: ep.value for ep in entry_points(group=DRIVER_GROUP)}
    release, database = version("actors"), default_url()
    if as_json:
        facts = {"version": release, "database": database, "drivers": drivers}
        typer.echo(json.dumps(facts, indent=2))
        return
    table = Table(title="actors", show_header=False)
    table.add_row("version", release)
    table.add_row("database", database)
    table.add_row("drivers", ", ".join(f"{k} ({v})" for k, v in drivers.items()) or "none")
    Console().print(table)


@app.command()
def node(
    config: Annotated[
        Path,
        typer.Option("--config", "-c", exists=True, dir_okay=False, help="The node's TOML config."),
    ],
    log_format: Annotated[
        LogFormat | None,
        typer.Option(help="Log lines as text or JSON (default: the config's log_format)."),
    ] = None,
) -> None:
    """Run a node: its services, until SIGTERM (SIGHUP resets every manager)."""
    from actors._node import ConfigError, Node, NodeConfig, configure_logging  # noqa: PLC0415

    try:
        cfg = NodeConfig.load(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    fmt = log_format.value if log_format is not None else cfg.log_format
    configure_logging(cfg.log_level, cfg.host, fmt)

    def ready(endpoint: str) -> None:
        print(f"ready {cfg.host} {endpoint}", flush=True)

    raise typer.Exit(Node(cfg).serve(ready=ready))


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


@app.command()
def services(
    database: DatabaseOpt = None, down_time: DownTimeOpt = 60.0, as_json: JsonOpt = False
) -> None:
    """List the services table: host, topic, endpoint, version, up/down, last heartbeat."""
    directory = Directory(Database(database), service_down_time=down_time)
    rows = [
        {
            "host": row.host,
            "topic": row.topic,
            "endpoint": row.endpoint,
            "version": row.rpc_version,
            "up": directory.is_up(row) and not row.disabled,
            "disabled": row.disabled,
            "report_count": row.report_count,
            "last_heartbeat": row.updated_at,
        }
        for row in directory.services()
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=_json_default))
        return
    table = Table(title="services")
    for column in ("host", "topic", "endpoint", "version", "state", "last heartbeat"):
        table.add_column(column)
    for r in rows:
        state = "[green]up[/]" if r["up"] else "[red]down[/]"
        if r["disabled"]:
            state += " (disabled)"
        beat = r["last_heartbeat"]
        when = beat.isoformat(timespec="seconds") if isinstance(beat, dt.datetime) else "never"
        table.add_row(
            str(r["host"]), str(r["topic"]), str(r["endpoint"] or "-"), str(r["version"] or "-"),
            state, when,
        )
    Console().print(table)


@app.command()
def call(  # noqa: PLR0917  (typer maps parameters to arguments and options)
    target: Annotated[str, typer.Argument(help="TOPIC or TOPIC@HOST, e.g. volume@node-2.")],
    method: Annotated[str, typer.Argument(help="The manager's method.")],
    args: Annotated[
        str, typer.Argument(help="JSON: a list (positional) or an object (keywords).")
    ] = "[]",
    database: DatabaseOpt = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the reply.")] = 30.0,
    rpc_version: Annotated[
        str | None, typer.Option("--version", help="The RPC version to ask for.")
    ] = None,
    down_time: DownTimeOpt = 60.0,
) -> None:
    """Call a manager's method on whichever node serves it; print the result or the remote error."""
    topic, _, host = target.partition("@")
    try:
        parsed = json.loads(args)
    except json.JSONDecodeError as exc:
        typer.echo(f"error: ARGS is not JSON: {exc}", err=True)
        raise typer.Exit(2) from exc
    positional, keywords = (
        ([], parsed) if isinstance(parsed, dict) else (parsed, {}) if isinstance(parsed, list)
        else ([parsed], {})
    )
    directory = Directory(Database(database), service_down_time=down_time, timeout=timeout)
    try:
        proxy = directory.proxy(topic, host or None, version=rpc_version)
        result = getattr(proxy, method)(*positional, **keywords).get(timeout=timeout)
    except (transport.MessagingError, Exception) as exc:
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        directory.close()
    typer.echo(json.dumps(result, indent=2, default=_json_default))


@app.command()
def top(
    url: Annotated[
        str, typer.Argument(help="The node's metrics URL, e.g. http://127.0.0.1:9464/metrics.")
    ],
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
    once: Annotated[
        bool, typer.Option("--once", help="Print one table (rates over --interval) and exit.")
    ] = False,
) -> None:
    """Watch a node's managers live: mailbox, calls/s, errors, handler p99, last tick."""
    from actors._top import run_top  # noqa: PLC0415

    try:
        run_top(url, Console(), interval=interval, once=once)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: cannot read {url}: {exc}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        return


@app.command()
def keys(
    name: Annotated[str, typer.Argument(help="The key pair's name (e.g. the host).")],
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the files.")] = Path(
        "keys"
    ),
) -> None:
    """Generate a CURVE key pair: NAME.key (public) and NAME.key_secret (keep private)."""
    public, secret = transport.write_keypair(directory, name)
    typer.echo(f"public: {public}\nsecret: {secret}")


@app.command()
def demo(
    volumes: Annotated[int, typer.Option(help="Volumes to create before a node stops.")] = 12,
    more: Annotated[int, typer.Option(help="Volumes to create after it stopped.")] = 6,
    workdir: Annotated[
        Path | None, typer.Option(help="Keep the cluster's files here (default: a temp dir).")
    ] = None,
) -> None:
    """Start a scheduler and three volume nodes on loopback, place volumes, stop a node."""
    from actors.demo.cluster import DemoSettings, run_demo  # noqa: PLC0415

    result = run_demo(DemoSettings(volumes=volumes, more_volumes=more, workdir=workdir))
    if any(p["host"] == result["stopped"] for p in result["after_stop"]):
        raise typer.Exit(1)


def main() -> None:
    """Run the ``actors`` command."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
