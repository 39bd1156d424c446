"""The simulator gives a manager what a node gives it: its declared dependencies and options."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from actors import ConfigError, Directory, Manager, RemotePublisher
from actors.testing import Simulation


class Needy(Manager):
    """Declares every provider; records what its constructor received."""

    DEPENDENCIES: ClassVar[tuple[str, ...]] = (
        "directory", "publisher", "service_down_time", "report_interval", "rpc_timeout",
    )  # fmt: skip
    OPTIONS: ClassVar[tuple[str, ...]] = ("colour",)
    TOPIC = "needy"

    def __init__(self, colour: str = "none", **kwargs: Any) -> None:
        self.received = sorted(k for k in kwargs if k in self.DEPENDENCIES)
        self.deps = {k: kwargs.pop(k) for k in self.received}
        super().__init__(**kwargs)
        self.colour = colour

    def seen(self) -> list[Any]:
        deps = self.deps
        return [
            self.received,
            type(deps["directory"]).__mro__[1] is Directory,
            isinstance(deps["publisher"], RemotePublisher),
            deps["service_down_time"],
            deps["report_interval"],
            deps["rpc_timeout"],
            self.colour,
        ]


class Plain(Manager):
    """Declares nothing: gets nothing more than the context."""

    def __init__(self, **kwargs: Any) -> None:
        context = ("host", "clock", "db", "periodic_jitter")
        self.extra = sorted(k for k in kwargs if k not in context)
        super().__init__(**kwargs)


class Greedy(Manager):
    DEPENDENCIES: ClassVar[tuple[str, ...]] = ("oracle",)


def test_a_service_gets_its_declared_dependencies_and_options() -> None:
    with Simulation(seed=1) as sim:
        svc = sim.service(Needy, host="h1", service_down_time=90.0, report_interval=5.0,
                          rpc_timeout=7.0, options={"colour": "blue"})  # fmt: skip
        ref: Any = svc.manager_ref  # a Needy
        seen = ref.proxy().seen().get()
        assert seen == [
            ["directory", "publisher", "report_interval", "rpc_timeout", "service_down_time"],
            True, True, 90.0, 5.0, 7.0, "blue",
        ]  # fmt: skip
        assert sim.start(Plain, host="h2").proxy().extra.get() == []


def test_start_provides_what_is_missing_and_keeps_what_is_given() -> None:
    with Simulation(seed=1) as sim:
        seen = sim.start(Needy, host="h1", rpc_timeout=3.0).proxy().seen().get()
        assert seen[3:] == [60.0, 10.0, 3.0, "none"]


def test_undeclared_options_and_unknown_dependencies_are_refused_as_by_the_node() -> None:
    with Simulation(seed=1) as sim:
        with pytest.raises(ConfigError, match=r"h1: options.size = 3: 'size' is not an option "
                           r"of Needy; valid: colour"):  # fmt: skip
            sim.service(Needy, host="h1", options={"size": 3})
        with pytest.raises(ConfigError, match="'directory' is given by the node"):
            sim.service(Needy, host="h1", options={"directory": None})
        with pytest.raises(ConfigError, match="DEPENDENCIES names oracle, which no node provides"):
            sim.start(Greedy, host="h1")
        assert sim.actors() == []  # nothing started
