"""What a node gives its managers: the declared dependencies, checked before anything starts.

A manager states what it needs from the node, as nameko's services declare their
dependency providers, instead of the node guessing from its constructor's signature:

* ``DEPENDENCIES``: names from `PROVIDERS` (``"directory"``, ``"publisher"``...); the
  node builds exactly those and passes each as a keyword argument of that name;
* ``OPTIONS``: the keyword arguments a ``[[services]]`` table's ``options`` may set.

Both are collected over the class's bases, so a subclass adds to what its parents
declared. Every manager also receives the `CONTEXT` (``host``, ``cluster``, ``db``,
``clock``, ``supervisor``), which `actors.Manager`'s constructor takes. Before any service
starts, `check_service` refuses an unknown dependency, an unknown option (listing the
valid ones) and a class that is not a manager, each in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actors._config import ConfigError, _show
from actors._drivers import DriverNotFound, _from_import_path
from actors._manager import Manager

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from actors._config import ServiceSpec

__all__ = ["CONTEXT", "PROVIDERS", "Provider", "check_manager", "check_service", "provide"]


@dataclass(frozen=True)
class Provider:
    """One thing a node can give a manager: its name, what it is, and the type it has."""

    name: str
    kind: str
    doc: str


PROVIDERS: tuple[Provider, ...] = (
    Provider("directory", "actors.Directory",
             "Discovery over the services table: proxies by topic and host, fan-out casts, "
             "version pins; CURVE client keys and ``rpc_timeout`` from the node's config."),
    Provider("publisher", "actors.RemotePublisher",
             "Sends capability reports to every up scheduler over the bridge "
             "(``SchedulerDependentManager`` declares it)."),
    Provider("service_down_time", "float",
             "The node's down time in force (``service_down_time``, raised to 2.5 times "
             "``report_interval`` when not above it)."),
    Provider("report_interval", "float", "Seconds between two heartbeats."),
    Provider("rpc_timeout", "float", "The deadline of calls, from the node's config."),
)
"""Everything a manager may list in ``DEPENDENCIES``."""

CONTEXT: tuple[Provider, ...] = (
    Provider("host", "str", "The host the service registers under."),
    Provider("cluster", "str | None", "Its cluster, if any."),
    Provider("db", "actors.db.Database", "The node's database."),
    Provider("clock", "actors.Clock", "The node's clock (a ``ManualClock`` in tests)."),
    Provider("supervisor", "callable", "Told when the manager dies, to restart it."),
)
"""What every manager receives from its service, declared or not."""

_PROVIDED = {p.name for p in PROVIDERS}
_CONTEXT = {p.name for p in CONTEXT}


def _load_manager(spec: ServiceSpec, where: str) -> type[Manager]:
    try:
        found = _from_import_path(spec.manager)
    except DriverNotFound as exc:
        msg = f'{where}manager = "{spec.manager}": cannot import it: {exc}'
        raise ConfigError(msg) from None
    except Exception as exc:  # the module itself failed: a syntax error, a failing import
        first = str(exc).splitlines()[0] if str(exc) else ""
        kind = type(exc).__name__
        msg = f'{where}manager = "{spec.manager}": importing it raised {kind}: {first}'
        raise ConfigError(msg) from exc
    if not (isinstance(found, type) and issubclass(found, Manager)):
        msg = f'{where}manager = "{spec.manager}": expected a subclass of actors.Manager'
        raise ConfigError(msg)
    return found


def check_service(spec: ServiceSpec, where: str = "services.") -> type[Manager]:
    """Load `spec`'s manager class and check its dependencies and options.

    Raises:
        ConfigError: one line: the class cannot be imported or is no manager, it declares
            a dependency no node provides, or an option it does not declare.
    """
    manager_class = _load_manager(spec, where)
    check_manager(manager_class, spec.options, where, spec.manager)
    return manager_class


def check_manager(
    manager_class: type[Manager],
    options: Mapping[str, Any],
    where: str = "services.",
    spec: str | None = None,
) -> None:
    """Check that `manager_class`'s dependencies exist and it declares every one of `options`.

    The node's rule (`check_service` applies it to a ``[[services]]`` table); the
    simulator applies it too, so a manager runs there exactly as a node runs it.

    Raises:
        ConfigError: one line: a dependency no node provides, or an undeclared option.
    """
    spec = spec or f"{manager_class.__module__}:{manager_class.__qualname__}"
    unknown = [name for name in manager_class.declared_dependencies() if name not in _PROVIDED]
    if unknown:
        msg = (
            f"{where}manager = \"{spec}\": DEPENDENCIES names {', '.join(unknown)}, "
            f"which no node provides; valid: {', '.join(sorted(_PROVIDED))}"
        )
        raise ConfigError(msg)
    valid = manager_class.declared_options()
    for name, value in options.items():
        if name in valid:
            continue
        if name in _PROVIDED or name in _CONTEXT:
            reason = "is given by the node, not set in options"
        else:
            reason = "is not an option of " + manager_class.__name__
        choices = ", ".join(sorted(valid)) or "none"
        msg = f"{where}options.{name} = {_show(value)}: {name!r} {reason}; valid: {choices}"
        raise ConfigError(msg)


def provide(
    manager_class: type[Manager], factories: Mapping[str, Callable[[], Any]]
) -> dict[str, Any]:
    """Build exactly the dependencies `manager_class` declares, each by its factory."""
    return {name: factories[name]() for name in manager_class.declared_dependencies()}
