"""The ``actors`` command: the entry point that the node, services and demo extend.

Run ``actors --help`` for the commands; ``python -m actors`` is the same.
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points, version

import typer
from rich.console import Console
from rich.table import Table

from actors._drivers import DRIVER_GROUP
from actors.db import default_url

app = typer.Typer(
    name="actors",
    help="OpenStack-style managers as pykka actors, with a ZeroMQ bridge between hosts.",
    no_args_is_help=True,
    add_completion=False,
)


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
def info(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
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


def main() -> None:
    """Run the ``actors`` command."""
    app()
