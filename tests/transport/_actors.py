"""Actors served in the transport tests: managers, as the bridge serves them in a node."""

from __future__ import annotations

import builtins
import threading
from collections import defaultdict
from typing import Any

import pykka

import transport
from actors import Manager

# Released by Gate.release(); Slow.wait_gate() blocks on it (bounded).
GATE = threading.Event()


class CustomError(Exception):
    """An exception from a module that is not allow-listed by default."""


class ContextActor(Manager):
    """A served test actor: an `actors.Manager`, which runs remote calls in the caller's context."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(host=kwargs.pop("host", "transport-test"), **kwargs)


class Echo(ContextActor):
    MAILBOX_LIMIT = 20_000  # the client tests keep thousands of calls in flight to it
    RPC_API_VERSION = "1.3"
    RPC_PRIVATE = frozenset({"lifecycle_only"})  # added to the Manager's own hidden names
    not_a_method = 42

    def lifecycle_only(self) -> str:
        return "hidden from remote callers"

    def echo(self, value: Any) -> Any:
        return value

    def add(self, a: int, b: int) -> int:
        return a + b

    def describe(self, *args: Any, **kwargs: Any) -> list[Any]:
        return [args, kwargs]

    def fail(self, name: str, *args: Any) -> None:
        raise getattr(builtins, name)(*args)

    def fail_custom(self, message: str) -> None:
        raise CustomError(message)

    def request_context(self) -> dict[str, Any] | None:
        ctx = transport.current_context()
        return None if ctx is None else ctx.to_dict()

    def unencodable(self) -> Any:
        return {"ok": [1, {2, 3}]}

    def big(self, size: int) -> bytes:
        return b"x" * size

    @property
    def a_property(self) -> int:
        return 1


class PlainEcho(pykka.ThreadingActor):
    """A plain pykka actor: it does not enter the message's context."""

    def request_context(self) -> dict[str, Any] | None:
        ctx = transport.current_context()
        return None if ctx is None else ctx.to_dict()

    def fail(self) -> None:
        raise RuntimeError("cast failure")

    def ping(self) -> str:
        return "pong"


class Slow(ContextActor):
    def wait_gate(self, timeout: float) -> bool:
        return GATE.wait(timeout)

    def pause(self, seconds: float) -> float:
        threading.Event().wait(seconds)
        return seconds


class Gate(ContextActor):
    def release(self) -> None:
        GATE.set()

    def close(self) -> None:
        GATE.clear()


class Recorder(ContextActor):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log: defaultdict[str, list[int]] = defaultdict(list)

    def record(self, sender: str, seq: int) -> None:
        self.log[sender].append(seq)

    def call_record(self, sender: str, seq: int) -> list[int]:
        self.log[sender].append(seq)
        return list(self.log[sender])

    def entries(self, sender: str) -> list[int]:
        return list(self.log[sender])


@pykka.traversable
class Nested:
    def ping(self) -> str:
        return "nested pong"


class Fields(ContextActor):
    """Fields, properties and methods, for pykka's proxy behaviour side by side."""

    label = "fields"  # a class attribute
    nested = Nested()  # traversable for pykka; a plain attribute remotely

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.count = 0
        self._level = 1
        self._secret = "hidden"
        self.handler = len  # an instance attribute that is callable

    @property
    def doubled(self) -> int:
        return self.count * 2

    @property
    def level(self) -> int:
        return self._level

    @level.setter
    def level(self, value: int) -> None:
        if value < 0:
            raise ValueError("level must be >= 0")
        self._level = value

    def bump(self, by: int = 1) -> int:
        self.count += by
        return self.count

    def items(self, n: int) -> list[int]:
        return list(range(n))

    def add_field(self, name: str, value: Any) -> None:
        setattr(self, name, value)

    def wait_event(self, timeout: float) -> bool:
        return EVENT.wait(timeout)

    @staticmethod
    def twice(value: int) -> int:
        return 2 * value

    @classmethod
    def class_label(cls) -> str:
        return cls.label


# Set by tests (or the "event" actor) to release Fields.wait_event().
EVENT = threading.Event()


class EventSetter(ContextActor):
    def set(self) -> None:
        EVENT.set()

    def clear(self) -> None:
        EVENT.clear()


RECORDERS = ("rec0", "rec1", "rec2")


def start_actors() -> dict[str, pykka.ActorRef[Any]]:
    """Start every served actor; the caller stops them."""
    refs: dict[str, pykka.ActorRef[Any]] = {
        "echo": Echo.start(),
        "plain": PlainEcho.start(),
        "slow": Slow.start(),
        "gate": Gate.start(),
        "fields": Fields.start(),
        "event": EventSetter.start(),
    }
    for name in RECORDERS:
        refs[name] = Recorder.start()
    return refs
