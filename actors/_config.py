"""The node's configuration: one schema for the TOML file, its checks and its reference.

Every key is declared once, in `NODE_KEYS`, `SERVICE_KEYS` and the `OPTIONAL_TABLES`
(``[curve]``: `CURVE_KEYS`): its name, its default, what it must be and what it does.
A new top-level key is a `Key` in `NODE_KEYS` plus a `NodeConfig` field; a new table is
a `Table` in `OPTIONAL_TABLES` plus a field of the same name; then regenerate
``docs/config.rst`` (``actors config reference``). `NodeConfig` checks every key against
it (whether it comes from a file or from Python), so a wrong value gives one line
naming the key, the value and what was expected::

    node.toml: report_interval = "ten": expected a number of seconds, 0 or more

and `render_reference` writes ``docs/config.rst`` from the same declarations, so the
reference cannot drift from what the node accepts (a test compares them).

The CLI reads the same file (``--config FILE`` or ``$ACTORS_CONFIG``), so ``actors
services`` and ``actors call`` use the node's database, keys and timeouts.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

from transport import DEFAULT_MAILBOX_LIMIT

if TYPE_CHECKING:
    from actors.db import Database

__all__ = [
    "CONFIG_ENV",
    "CURVE_KEYS",
    "METRICS_KEYS",
    "NODE_KEYS",
    "OPTIONAL_TABLES",
    "SERVICE_KEYS",
    "ConfigError",
    "CurveSpec",
    "Key",
    "MetricsSpec",
    "NodeConfig",
    "ServiceSpec",
    "Table",
    "config_path_from_env",
    "render_reference",
]

CONFIG_ENV = "ACTORS_CONFIG"
"""The environment variable naming the node config the CLI reads by default."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
ON_STOP = ("down", "remove")
BIND_SCHEMES = ("tcp://", "ipc://", "inproc://")


class ConfigError(ValueError):
    """A node config that cannot be used; the one-line message names the key and why."""


class _Invalid(Exception):
    """A value a checker refuses (the `Key` adds the name, the value and the expectation)."""


def _fail() -> NoReturn:
    raise _Invalid


# -- checkers: each takes the raw value and returns the value to keep -----------------------


def _seconds(*, allow_zero: bool) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            _fail()
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            _fail()
        return float(value)

    return check


def _optional_seconds(value: Any) -> float | None:
    return None if value is None else _seconds(allow_zero=False)(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _fail()
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        _fail()
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail()
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _choice(options: tuple[str, ...], *, upper: bool = False) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            _fail()
        normal = value.upper() if upper else value
        if normal not in options:
            _fail()
        return normal

    return check


def _bind(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(BIND_SCHEMES):
        _fail()
    return value


def _database_url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        _fail()
    from sqlalchemy.engine import make_url  # noqa: PLC0415  (only when a URL is given)
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

    try:
        make_url(value)
    except ArgumentError:
        _fail()
    return value


def _module_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(
        isinstance(item, str) and item.strip() for item in value
    ):
        _fail()
    return tuple(value)


def _manager_spec(value: Any) -> str:
    if not isinstance(value, str):
        _fail()
    module, _, name = value.partition(":")
    if not module.strip() or not name.strip():
        _fail()
    return value


def _options(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _fail()
    return dict(value)


def _host_port(value: Any) -> str:
    from actors._metrics import parse_bind  # noqa: PLC0415  (only when [metrics] is given)

    if not isinstance(value, str):
        _fail()
    try:
        parse_bind(value)
    except ValueError:
        _fail()
    return value


def _path(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    if not isinstance(value, str) or not value.strip():
        _fail()
    return Path(value)


# -- the schema --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One config key: its name, default, what it must be, what it does, and its check."""

    name: str
    expected: str
    default: str
    doc: str
    check: Callable[[Any], Any] = field(repr=False)

    def parse(self, value: Any, where: str = "") -> Any:
        """The checked value of this key, or a `ConfigError` naming key, value and expectation."""
        try:
            return self.check(value)
        except _Invalid:
            msg = f"{where}{self.name} = {_show(value)}: expected {self.expected}"
            raise ConfigError(msg) from None


def _show(value: Any) -> str:
    """A value as TOML would spell it, cut to one short line."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, Path):
        text = json.dumps(str(value))
    else:
        try:
            text = json.dumps(value, default=str, ensure_ascii=False)
        except ValueError:
            text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


NODE_KEYS: tuple[Key, ...] = (
    Key("host", "a non-empty string", "``$ACTORS_HOST`` or the system's host name",
        "The host this node serves; services register under it.", _text),
    Key("database_url", "a SQLAlchemy database URL", "``$ACTORS_DATABASE_URL``, else "
        "``actors.sqlite3`` in the working directory",
        "Where the services table and the managers' data live. Hosts that call each "
        "other share it (PostgreSQL: ``postgresql://user@host/db``, with the ``postgres`` "
        "extra).", _database_url),
    Key("database_connect_timeout", "a number of seconds greater than 0", "``5``",
        "The longest a new database connection is waited for (PostgreSQL: libpq's "
        "``connect_timeout``, which waits 2 s at least, plus ``tcp_user_timeout`` and "
        "keepalives; MySQL: ``connect_timeout``). A driver option in ``database_url``'s "
        "query wins.",
        _seconds(allow_zero=False)),
    Key("database_statement_timeout", "a number of seconds greater than 0", "``30``",
        "The longest one statement may take (PostgreSQL: a server-side "
        "``statement_timeout``; MySQL: read and write timeouts), or a SQLite lock be "
        "waited for (``busy_timeout``).", _seconds(allow_zero=False)),
    Key("database_pool_timeout", "a number of seconds greater than 0",
        "``database_connect_timeout`` (SQLite files: SQLAlchemy's ``30``)",
        "The longest a session waits for a pooled database connection when all are in use.",
        _optional_seconds),
    Key("bind", "an endpoint starting with tcp://, ipc:// or inproc://", '``"tcp://127.0.0.1:*"``',
        "The bridge's endpoint; ``*`` as the port picks a free one. Without ``[curve]`` "
        "keys only loopback and ``ipc://`` are allowed.", _bind),
    Key("report_interval", "a number of seconds, 0 or more", "``10``",
        "Seconds between two heartbeats of each service; 0: none (a service then reads as "
        "down once its ready mark is older than ``service_down_time``).",
        _seconds(allow_zero=True)),
    Key("service_down_time", "a number of seconds greater than 0", "``60``",
        "A service whose last heartbeat is older is down. Raised to 2.5 times "
        "``report_interval`` when not above it. Recorded with each service row, so every "
        "reader judges this node by this rule.", _seconds(allow_zero=False)),
    Key("heartbeat_wait", "a number of seconds, 0 or more", "``1``",
        "The longest a heartbeat holds its manager's mailbox waiting for the database "
        "write, which goes on in the background (0: never wait). A slow database delays a "
        "manager's calls by at most this per heartbeat (not at all once it is known to "
        "be away).",
        _seconds(allow_zero=True)),
    Key("periodic_fuzzy_delay", "a number of seconds, 0 or more", "``60``",
        "The first periodic tick of each manager comes after a random delay up to this "
        "(never later than the first heartbeat).", _seconds(allow_zero=True)),
    Key("rpc_timeout", "a number of seconds greater than 0", "``60``",
        "The deadline of calls the node's managers make, and of each start hook.",
        _seconds(allow_zero=False)),
    Key("stop_timeout", "a number of seconds greater than 0", "``30``",
        "How long a graceful stop (SIGTERM) may take; each mailbox is drained within it.",
        _seconds(allow_zero=False)),
    Key("mailbox_limit", "a whole number, 1 or more", f"``{DEFAULT_MAILBOX_LIMIT}``",
        "Requests from the bridge that a manager's mailbox holds at most; past it callers "
        "get ``transport.Overloaded`` at once (a manager class's ``MAILBOX_LIMIT`` wins).",
        _count),
    Key("own_sockets", "true or false", "``false``",
        "Give each manager a socket of its own, read and answered by its own thread "
        "(one server thread woken per call, not two; its service row records that "
        "endpoint). Sequential calls get faster, pipelined calls and casts to one "
        "manager slower: see docs/protocol.rst.", _flag),
    Key("on_stop", 'one of "down", "remove"', '``"down"``',
        'What a graceful stop does with the node\'s service rows: ``"down"`` marks them '
        'stopped (callers get ``ServiceUnavailable`` at once), ``"remove"`` deletes them.',
        _choice(ON_STOP)),
    Key("log_level", f"one of {', '.join(LOG_LEVELS)}", '``"INFO"``',
        "The level of the node's log on stderr.", _choice(LOG_LEVELS, upper=True)),
    Key("log_format", 'one of "text", "json"', '``"text"``',
        'How log lines look: ``"json"`` writes one JSON object per line with the request, '
        "trace and span ids (see :doc:`observability`); ``actors node --log-format`` "
        "overrides it.", _choice(LOG_FORMATS)),
    Key("allowed_exception_modules", "a list of module names", "``[]``",
        "Exceptions from these modules are re-raised as their own class by callers on "
        "this node (others arrive as ``RemoteError``).", _module_list),
)
"""The top-level keys of a node config."""

SERVICE_KEYS: tuple[Key, ...] = (
    Key("manager", 'an import path "package.module:Class"', "required",
        "The ``Manager`` subclass this service runs.", _manager_spec),
    Key("topic", "a non-empty string", "the manager's ``TOPIC``",
        "The topic it serves under.", _optional_text),
    Key("host", "a non-empty string", "the node's ``host``",
        "The host it registers under (e.g. ``node-1@sparse`` for a second backend).",
        _optional_text),
    Key("cluster", "a non-empty string", "none",
        "The cluster it belongs to; it is then also reachable as ``<topic>.<cluster>``.",
        _optional_text),
    Key("options", "a table of the manager's options", "``{}``",
        "Keyword arguments for the manager: only names in its ``OPTIONS`` (see "
        ":doc:`dependencies`); an unknown one stops the node at start, listing the valid "
        "ones.", _options),
)
"""The keys of each ``[[services]]`` table."""

CURVE_KEYS: tuple[Key, ...] = (
    Key("server_keys", "a path to a secret key file", "required",
        "The bridges' key pair, shared by the cluster (``actors keys cluster``). Relative "
        "paths are taken from the config file's directory.", _path),
    Key("client_keys", "a path to a secret key file", "required",
        "This node's key pair as a client.", _path),
    Key("allowed_clients", "a path to a directory of public keys", "required",
        "The public keys allowed to call this node's bridge.", _path),
)
"""The keys of the optional ``[curve]`` table."""

METRICS_KEYS: tuple[Key, ...] = (
    Key("bind", 'a "HOST:PORT" address, e.g. "127.0.0.1:9464"', "required",
        "Where to serve ``/metrics`` over HTTP (port 0 takes a free one; the node logs "
        "the URL). Prometheus scrapes it; ``actors top URL`` shows it live.", _host_port),
)
"""The keys of the optional ``[metrics]`` table."""



def _check_table(
    data: Mapping[str, Any],
    keys: tuple[Key, ...],
    where: str,
    required: tuple[str, ...] = (),
    tables: tuple[str, ...] = (),
) -> dict[str, Any]:
    valid = {key.name: key for key in keys}
    for name, value in data.items():
        if name not in valid:
            msg = (
                f"{where}{name} = {_show(value)}: unknown key; valid keys: "
                f"{', '.join([*valid, *tables])}"
            )
            raise ConfigError(msg)
    for name in required:
        if name not in data:
            msg = f"{where}{name}: missing; expected {valid[name].expected}"
            raise ConfigError(msg)
    return {name: valid[name].parse(value, where) for name, value in data.items()}


@dataclass(frozen=True)
class ServiceSpec:
    """One ``[[services]]`` entry: which manager to run, and how (checked on creation)."""

    manager: str
    topic: str | None = None
    host: str | None = None
    cluster: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _freeze_checked(self, SERVICE_KEYS, "services.")


@dataclass(frozen=True)
class CurveSpec:
    """The ``[curve]`` table: key files for an encrypted, authenticated cluster."""

    server_keys: Path
    client_keys: Path
    allowed_clients: Path

    def __post_init__(self) -> None:
        _freeze_checked(self, CURVE_KEYS, "curve.")


@dataclass(frozen=True)
class MetricsSpec:
    """The ``[metrics]`` table: where to serve Prometheus metrics."""

    bind: str

    def __post_init__(self) -> None:
        _freeze_checked(self, METRICS_KEYS, "metrics.")


@dataclass(frozen=True)
class Table:
    """An optional ``[name]`` table of the config: its keys and how it becomes a value."""

    name: str
    keys: tuple[Key, ...]
    build: Callable[[dict[str, Any], Path], Any] = field(repr=False)
    """Make the `NodeConfig` field's value from the checked keys and the file's directory."""
    required: tuple[str, ...] = ()
    title: str = ""
    intro: str = ""


OPTIONAL_TABLES: tuple[Table, ...] = (
    Table("curve", CURVE_KEYS,
          lambda checked, base: CurveSpec(**{k: base / v for k, v in checked.items()}),
          required=tuple(k.name for k in CURVE_KEYS),
          title="``[curve]``: encryption and authentication (optional)",
          intro="With it, the bridge encrypts with CURVE and answers only allow-listed "
                "client keys; see :doc:`deploy`."),
    Table("metrics", METRICS_KEYS, lambda checked, base: MetricsSpec(**checked),
          required=("bind",),
          title="``[metrics]``: Prometheus metrics (optional)",
          intro="With it, the node serves its managers' and its bridge's metrics over "
                "HTTP; see :doc:`observability`."),
)
"""The optional tables; each is a `NodeConfig` field of the same name (``None`` when absent)."""


def _freeze_checked(obj: Any, keys: tuple[Key, ...], where: str) -> None:
    for key in keys:
        object.__setattr__(obj, key.name, key.parse(getattr(obj, key.name), where))


def _default_host() -> str:
    from actors._manager import default_host  # noqa: PLC0415  (the manager imports the db)

    return default_host()


@dataclass(frozen=True)
class NodeConfig:
    """A node's configuration; every value is checked on creation (see ``docs/config.rst``).

    Example:
        >>> cfg = NodeConfig(host="node-1", services=(ServiceSpec("actors.demo:VolumeManager"),))
        >>> cfg.service_down_time
        60.0
        >>> NodeConfig(report_interval="ten")
        Traceback (most recent call last):
        ...
        actors._config.ConfigError: report_interval = "ten": expected a number of seconds, \
0 or more
    """

    host: str = field(default_factory=_default_host)
    database_url: str | None = None
    database_connect_timeout: float = 5.0
    database_statement_timeout: float = 30.0
    database_pool_timeout: float | None = None
    bind: str = "tcp://127.0.0.1:*"
    report_interval: float = 10.0
    service_down_time: float = 60.0
    heartbeat_wait: float = 1.0
    periodic_fuzzy_delay: float = 60.0
    rpc_timeout: float = 60.0
    stop_timeout: float = 30.0
    mailbox_limit: int = DEFAULT_MAILBOX_LIMIT
    own_sockets: bool = False
    on_stop: str = "down"
    log_level: str = "INFO"
    log_format: str = "text"
    allowed_exception_modules: tuple[str, ...] = ()
    services: tuple[ServiceSpec, ...] = ()
    curve: CurveSpec | None = None
    metrics: MetricsSpec | None = None

    def __post_init__(self) -> None:
        _freeze_checked(self, NODE_KEYS, "")
        for i, spec in enumerate(cast("tuple[object, ...]", self.services)):
            if not isinstance(spec, ServiceSpec):
                msg = f"services[{i}] = {_show(spec)}: expected a ServiceSpec"
                raise ConfigError(msg)
        object.__setattr__(self, "services", tuple(self.services))

    @property
    def effective_down_time(self) -> float:
        """The down time in force: raised to 2.5 times `report_interval` when not above it."""
        if self.report_interval and self.service_down_time <= self.report_interval:
            return float(int(self.report_interval * 2.5))
        return self.service_down_time

    def open_database(self, url: str | None = None, *, create: bool = True) -> Database:
        """A `Database` for `url` (default: ``database_url``) with this config's timeouts."""
        from actors.db import Database  # noqa: PLC0415  (the config is read before any database)

        return Database(
            url or self.database_url,
            create=create,
            connect_timeout=self.database_connect_timeout,
            statement_timeout=self.database_statement_timeout,
            pool_timeout=self.database_pool_timeout,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NodeConfig:
        """Read and check a TOML file; relative key paths are taken from its directory.

        Raises:
            ConfigError: one line: the file, the key, the value and what was expected.
        """
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            msg = f"{path}: cannot read: {exc.strerror or exc}"
            raise ConfigError(msg) from None
        except tomllib.TOMLDecodeError as exc:
            msg = f"{path}: not valid TOML: {exc}"
            raise ConfigError(msg) from None
        try:
            return cls.from_dict(data, base=path.parent)
        except ConfigError as exc:
            msg = f"{path}: {exc}"
            raise ConfigError(msg) from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base: Path = Path()) -> NodeConfig:
        """Check parsed TOML and build the config.

        Raises:
            ConfigError: one line naming the key, the value and what was expected.
        """
        data = dict(data)
        services = data.pop("services", None)
        raw_tables = {table.name: data.pop(table.name, None) for table in OPTIONAL_TABLES}
        names = ("[[services]]", *(f"[{table.name}]" for table in OPTIONAL_TABLES))
        top = _check_table(data, NODE_KEYS, "", tables=names)
        if services is None:
            msg = "services: missing; expected at least one [[services]] table"
            raise ConfigError(msg)
        if not isinstance(services, list) or not services:
            msg = (
                f"services = {_show(services)}: expected at least one [[services]] table "
                "(an array of tables, each with a manager)"
            )
            raise ConfigError(msg)
        specs = []
        for i, entry in enumerate(services):
            where = f"services[{i}]."
            if not isinstance(entry, Mapping):
                msg = f"services[{i}] = {_show(entry)}: expected a table with a manager"
                raise ConfigError(msg)
            specs.append(ServiceSpec(**_check_table(entry, SERVICE_KEYS, where, ("manager",))))
        tables: dict[str, Any] = {}
        for table in OPTIONAL_TABLES:
            raw = raw_tables[table.name]
            if raw is None:
                continue
            if not isinstance(raw, Mapping):
                msg = f"{table.name} = {_show(raw)}: expected a table ([{table.name}])"
                raise ConfigError(msg)
            checked = _check_table(raw, table.keys, f"{table.name}.", table.required)
            tables[table.name] = table.build(checked, base)
        return cls(**top, services=tuple(specs), **tables)


def config_path_from_env() -> Path | None:
    """The config file ``$ACTORS_CONFIG`` names, if set."""
    value = os.environ.get(CONFIG_ENV)
    return Path(value) if value else None


# -- the reference -----------------------------------------------------------------------------

_REFERENCE_HEAD = """\
..
   Generated from actors/_config.py by ``actors config reference > docs/config.rst``;
   do not edit by hand (tests/test_config.py checks it is up to date).

Node configuration
==================

A node reads one TOML file (``actors node --config node.toml``). The ``actors`` command
reads the same file (``--config FILE``, or the file ``$ACTORS_CONFIG`` names), so
``actors services``, ``actors call`` and ``actors service`` use the node's database, CURVE
keys and timeouts. Every key is checked when the file is read; a wrong value stops with
one line naming the file, the key, the value and what was expected:

.. code-block:: text

    node.toml: report_interval = "ten": expected a number of seconds, 0 or more

``actors config check FILE`` checks a file without starting anything, including that
each service's manager can be imported and accepts its options.

.. code-block:: toml

    host = "node-1"
    database_url = "postgresql://actors@db.example/actors"
    bind = "tcp://10.0.0.5:*"
    report_interval = 10
    service_down_time = 60

    [[services]]
    manager = "actors.demo:VolumeManager"
    options = { driver = "sparse", driver_options = { directory = "/srv/volumes" } }

    [curve]
    server_keys = "keys/cluster.key_secret"
    client_keys = "keys/node-1.key_secret"
    allowed_clients = "keys/clients"
"""

_SECTIONS = (
    ("Top-level keys", NODE_KEYS, ""),
    ("``[[services]]``: one table per manager", SERVICE_KEYS,
     "At least one. Each runs one manager, registered as ``<topic>`` on ``<host>``."),
    *((table.title, table.keys, table.intro) for table in OPTIONAL_TABLES),
)


def render_reference() -> str:
    """The key reference, in reStructuredText, as ``docs/config.rst`` holds it."""
    out = [_REFERENCE_HEAD]
    for title, keys, intro in _SECTIONS:
        out.append(f"\n{title}\n{'-' * len(title)}\n")
        if intro:
            out.append(f"\n{intro}\n")
        for key in keys:
            out.append(
                f"\n``{key.name}``\n    {key.doc}\n\n"
                f"    *Expected:* {key.expected}. *Default:* {key.default}.\n"
            )
    return "".join(out)
