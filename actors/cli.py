"""The ``actors`` command: run a node, look at the cluster, call a manager, make keys.

Commands that read the cluster take the node's config (``--config FILE`` or
``$ACTORS_CONFIG``): its database, CURVE client keys and timeouts; ``--database URL``
overrides the database. Run ``actors --help`` for the commands; ``python -m actors`` is
the same.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import shutil
import sys
from importlib.metadata import entry_points, version
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

import transport
from actors._config import ConfigError, NodeConfig, config_path_from_env, render_reference
from actors._discovery import Directory
from actors._drivers import DRIVER_GROUP
from actors._node import Node, configure_logging
from actors.db import ENV_URL, Database, ServiceRecord, default_url

app = typer.Typer(
    name="actors",
    help="OpenStack-style managers as pykka actors, with a ZeroMQ bridge between hosts.",
    no_args_is_help=True,
    add_completion=False,
)

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database", "-d",
        help="Database URL (default: the config's, else $ACTORS_DATABASE_URL).",
    ),
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


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _load_config(config: Path | None, *, check: bool = False) -> NodeConfig | None:
    """The config `config` or ``$ACTORS_CONFIG`` names (`check`: its managers too), or None."""
    path = config or config_path_from_env()
    if path is None:
        return None
    try:
        cfg = NodeConfig.load(path)
    except ConfigError as exc:
        _fail(str(exc))
    if check:
        try:
            Node(cfg).check()
        except ConfigError as exc:
            _fail(f"{path}: {exc}")
    return cfg


@app.command()
def info(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", dir_okay=False,
                     help="A node's TOML config (default: $ACTORS_CONFIG)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the version, the database (the config's, else the default) and the drivers."""
    drivers = {ep.name: ep.value for ep in entry_points(group=DRIVER_GROUP)}
    cfg = _load_config(config)
    release = version("actors")
    database = (cfg.database_url if cfg is not None else None) or default_url()
    if as_json:
        facts = {"version": release, "database": database, "drivers": drivers}
        typer.echo(json.dumps(facts, indent=2))
        return
    table = Table(title="actors", show_header=False)
    table.add_row("version", release)
    table.add_row("database", database)
    table.add_row("drivers", ", ".join(f"{k} ({v})" for k, v in drivers.items()) or "none")
    _print_table(table)


@app.command()
def node(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", dir_okay=False,
                     help="The node's TOML config (default: $ACTORS_CONFIG)."),
    ] = None,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(help="Log lines as text or JSON (default: the config's log_format)."),
    ] = None,
) -> None:
    """Run a node: its services, until SIGTERM (SIGHUP resets every manager)."""
    cfg = _load_config(config, check=True)
    if cfg is None:
        _fail("no config: give --config FILE or set ACTORS_CONFIG")
    fmt = log_format.value if log_format is not None else cfg.log_format
    configure_logging(cfg.log_level, cfg.host, fmt)

    def ready(endpoint: str) -> None:
        print(f"ready {cfg.host} {endpoint}", flush=True)

    raise typer.Exit(Node(cfg).serve(ready=ready))


config_app = typer.Typer(help="Check a node config, or print the key reference.")
app.add_typer(config_app, name="config")


@config_app.command("check")
def config_check(
    config: Annotated[Path, typer.Argument(help="The node's TOML config.", dir_okay=False)],
) -> None:
    """Check a config without starting anything: every key, every manager and its options."""
    cfg = _load_config(config, check=True)
    assert cfg is not None
    typer.echo(f"{config}: ok ({len(cfg.services)} service(s) on {cfg.host})")


@config_app.command("reference")
def config_reference() -> None:
    """Print the key reference (docs/config.rst is this output)."""
    typer.echo(render_reference(), nl=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


# -- reading the cluster: the node's config is the single source --------------------------


def _open_directory(
    config: Path | None, database: str | None, *, timeout: float | None = None
) -> Directory:
    """The directory the CLI reads: from ``--config``/``$ACTORS_CONFIG``, else ``--database``.

    ``--database`` (or ``$ACTORS_DATABASE_URL``) overrides the config's database; with
    neither a config nor a URL the command stops instead of reading an empty default file.
    """
    cfg = _load_config(config)
    url = database or (cfg.database_url if cfg is not None else None) or os.environ.get(ENV_URL)
    if url is None:
        _fail(
            "no database to read: give --config FILE (or set ACTORS_CONFIG) to use a node's "
            "config, or --database URL"
        )
    parsed = make_url(url)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file not in (None, "", ":memory:") and not Path(str(file)).exists():
        _fail(f"no database file {file} (no node has used {url})")
    try:
        db = Database(url, create=False) if cfg is None else cfg.open_database(url, create=False)
        inspector = sa_inspect(db.engine)
        table = ServiceRecord.__tablename__
        if not inspector.has_table(table):
            db.dispose()
            _fail(f"{db!r} has no services table: no node has used this database")
        present = {column["name"] for column in inspector.get_columns(table)}
        missing = sorted(set(ServiceRecord.__table__.columns.keys()) - present)
        if missing:
            db.dispose()
            _fail(
                f"{db!r}: the services table lacks {', '.join(missing)} (an older release "
                "made it); start one node of this release, which adds them"
            )
    except SQLAlchemyError as exc:
        _fail(f"cannot open {url}: {str(exc).splitlines()[0]}")
    if cfg is None:
        return Directory(db, timeout=30.0 if timeout is None else timeout)
    return Directory.from_config(cfg, db=db, timeout=timeout)


def _state(directory: Directory, row: ServiceRecord) -> str:
    """The liveness of `row` by its node's rule: up, down, or stopped (it said so)."""
    if row.stopped_at is not None:
        return "stopped"
    return "up" if directory.is_up(row) else "down"


def _row_facts(directory: Directory, row: ServiceRecord) -> dict[str, Any]:
    return {
        "host": row.host,
        "topic": row.topic,
        "endpoint": row.endpoint,
        "version": row.rpc_version,
        "state": _state(directory, row),
        "up": directory.is_up(row) and not row.disabled,
        "disabled": row.disabled,
        "disabled_reason": row.disabled_reason,
        "down_time": row.down_time,
        "report_count": row.report_count,
        "last_heartbeat": row.updated_at,
        "stopped_at": row.stopped_at,
    }


_STYLE = {"up": "green", "down": "red", "stopped": "yellow"}


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, dt.datetime) else "never"


def _print_table(table: Table) -> None:
    """Print `table` whole: wider than the terminal (or 80 columns) rather than cut."""
    console = Console()
    needed = Measurement.get(console, console.options.update_width(10_000), table).maximum
    if needed > console.width:
        console = Console(width=needed)
    console.print(table)


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", dir_okay=False,
        help="The node's TOML config (default: $ACTORS_CONFIG): database, keys, timeouts.",
    ),
]


@app.command()
def services(
    config: ConfigOpt = None, database: DatabaseOpt = None, as_json: JsonOpt = False
) -> None:
    """List the services: host, topic, endpoint, version, state, last heartbeat.

    Each row is judged by the liveness rule its own node recorded.
    """
    directory = _open_directory(config, database)
    try:
        rows = [_row_facts(directory, row) for row in directory.services()]
    finally:
        directory.close()
        directory.db.dispose()
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=_json_default))
        return
    table = Table(title="services")
    for column in ("host", "topic", "endpoint", "version", "state", "last heartbeat", "down after"):
        table.add_column(column, no_wrap=True)
    for r in rows:
        state = f"[{_STYLE[r['state']]}]{r['state']}[/]"
        if r["disabled"]:
            reason = f" ({r['disabled_reason']})" if r["disabled_reason"] else ""
            state += f", [magenta]disabled[/]{reason}"
        down_after = f"{r['down_time']:g} s" if r["down_time"] is not None else "-"
        table.add_row(
            str(r["host"]), str(r["topic"]), str(r["endpoint"] or "-"), str(r["version"] or "-"),
            state, _when(r["last_heartbeat"]), down_after,
        )
    _print_table(table)


def _read_args(args: str, args_file: Path | None) -> Any:
    if args_file is not None:
        if args != "[]":
            _fail("give ARGS or --args-file, not both")
        try:
            args = args_file.read_text(encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot read --args-file {args_file}: {exc.strerror or exc}")
    elif args == "-":
        args = sys.stdin.read()
    try:
        return json.loads(args)
    except json.JSONDecodeError as exc:
        _fail(f"ARGS is not JSON: {exc}")


@app.command()
def call(  # noqa: PLR0917  (typer maps parameters to arguments and options)
    target: Annotated[str, typer.Argument(help="TOPIC or TOPIC@HOST, e.g. volume@node-2.")],
    method: Annotated[str, typer.Argument(help="The manager's method.")],
    args: Annotated[
        str,
        typer.Argument(help="JSON: a list (positional) or an object (keywords); - reads stdin."),
    ] = "[]",
    args_file: Annotated[
        Path | None,
        typer.Option("--args-file", dir_okay=False, help="Read the JSON arguments from a file."),
    ] = None,
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for the reply (default: 30).")
    ] = None,
    rpc_version: Annotated[
        str | None, typer.Option("--version", help="The RPC version to ask for.")
    ] = None,
) -> None:
    """Call a manager's method on whichever node serves it; print the result or the remote error."""
    topic, _, host = target.partition("@")
    parsed = _read_args(args, args_file)
    positional, keywords = (
        ([], parsed) if isinstance(parsed, dict) else (parsed, {}) if isinstance(parsed, list)
        else ([parsed], {})
    )
    wait = 30.0 if timeout is None else timeout
    directory = _open_directory(config, database, timeout=wait)
    try:
        proxy = directory.proxy(topic, host or None, version=rpc_version)
        result = getattr(proxy, method)(*positional, **keywords).get(timeout=wait)
    except (transport.MessagingError, Exception) as exc:
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        directory.close()
        directory.db.dispose()
    typer.echo(json.dumps(result, indent=2, default=_json_default))


service_app = typer.Typer(help="Disable, enable or remove a service (as Cinder's operators do).")
app.add_typer(service_app, name="service")

HostArg = Annotated[str, typer.Argument(help="The service's host.")]
TopicArg = Annotated[str, typer.Argument(help="The service's topic, e.g. volume.")]


def _change_row(
    config: Path | None, database: str | None, host: str, topic: str, change: Any
) -> None:
    directory = _open_directory(config, database)
    try:
        with directory.db.begin() as session:
            row = session.scalars(
                select(ServiceRecord).where(
                    ServiceRecord.host == host, ServiceRecord.topic == topic
                )
            ).one_or_none()
            if row is None:
                _fail(f"no {topic!r} service on {host!r}", 1)
            typer.echo(change(directory, session, row))
    finally:
        directory.close()
        directory.db.dispose()


@service_app.command("disable")
def service_disable(
    host: HostArg,
    topic: TopicArg,
    reason: Annotated[str | None, typer.Option(help="Why (shown by actors services).")] = None,
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Disable a service: discovery stops choosing it; it keeps running and heartbeating."""

    def change(_directory: Directory, _session: Any, row: ServiceRecord) -> str:
        row.disabled, row.disabled_reason = True, reason
        return f"disabled {topic} on {host}" + (f" ({reason})" if reason else "")

    _change_row(config, database, host, topic, change)


@service_app.command("enable")
def service_enable(
    host: HostArg, topic: TopicArg, config: ConfigOpt = None, database: DatabaseOpt = None
) -> None:
    """Enable a disabled service again."""

    def change(_directory: Directory, _session: Any, row: ServiceRecord) -> str:
        row.disabled, row.disabled_reason = False, None
        return f"enabled {topic} on {host}"

    _change_row(config, database, host, topic, change)


@service_app.command("remove")
def service_remove(
    host: HostArg,
    topic: TopicArg,
    force: Annotated[bool, typer.Option(help="Remove it even while it is up.")] = False,
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Remove a service's row (a host taken out of the cluster); refused while it is up."""

    def change(directory: Directory, session: Any, row: ServiceRecord) -> str:
        if directory.is_up(row) and not force:
            _fail(
                f"{topic} on {host} is up (last heartbeat {_when(row.updated_at)}); stop its "
                "node first (its next heartbeat would add the row again) or use --force",
                1,
            )
        session.delete(row)
        return f"removed {topic} on {host}"

    _change_row(config, database, host, topic, change)


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


@app.command("systemd-unit")
def systemd_unit(
    executable: Annotated[
        str | None,
        typer.Option(help="The actors executable the unit runs (default: this one)."),
    ] = None,
) -> None:
    """Print the systemd unit actors-node@.service, running this installation's actors."""
    from actors._systemd import unit_text  # noqa: PLC0415

    found = executable or shutil.which("actors") or sys.argv[0]
    typer.echo(unit_text(os.path.abspath(found)), nl=False)


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
