"""Start managers with test dependencies in place of production ones.

`ActorFactory` starts actors the way a test wants them: every keyword argument
is passed to the actor's constructor as given, and the dependencies a test
usually replaces get test defaults when not given:

* ``db``: a `actors.db.Database` on a real SQLite file in the factory's directory;
* ``clock``: one `actors.ManualClock` shared by everything the factory starts;
* ``publisher``: a `RecordingPublisher` that records capability reports and
  passes them on to the schedulers running in this process.

A default is passed only to a constructor that takes it (`accepted_kwargs`),
so plain pykka actors start too. `stop` stops everything the
factory started, newest first, then closes the database.

Example:
    >>> import tempfile
    >>> from actors import Manager
    >>> class Greeter(Manager):
    ...     def greet(self, name):
    ...         return f"hello {name} from {self.host}"
    >>> with tempfile.TemporaryDirectory() as tmp, ActorFactory(tmp) as factory:
    ...     ref = factory(Greeter, host="h1")
    ...     print(ref.proxy().greet("ann").get(timeout=5))
    ...     print(factory.injected(ref)["clock"] is factory.clock)
    hello ann from h1
    True
"""

from __future__ import annotations

import inspect
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pykka

from actors._capabilities import LocalPublisher
from actors._clock import ManualClock
from actors._manager import Manager
from actors._timer import TimerActor
from actors.db import Database
from actors.testing._publisher import RecordingPublisher

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping

__all__ = ["ActorFactory", "accepted_kwargs"]

logger = logging.getLogger(__name__)

A = TypeVar("A", bound=pykka.Actor)


_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def accepted_kwargs(actor_class: type[Any], offered: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `offered` that `actor_class`'s constructor takes.

    A name is taken when the class's own ``__init__`` accepts it (by name or
    through ``**kwargs``) and some ``__init__`` along the class's MRO names it:
    a default is never pushed into a ``**kwargs`` that nothing consumes.
    """
    own = inspect.signature(actor_class.__init__).parameters.values()
    passes_on = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in own)
    direct = {p.name for p in own if p.kind in _NAMED}
    named: set[str] = set()
    for klass in inspect.getmro(actor_class):
        init = vars(klass).get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):  # a builtin's __init__
            continue
        named.update(p.name for p in params if p.kind in _NAMED)
    return {k: v for k, v in offered.items() if k in direct or (passes_on and k in named)}


class ActorFactory:
    """Starts actors with replaced dependencies; stops them all at the end.

    Args:
        path: the directory where the default SQLite file goes (``actors.sqlite3``).
        clock: the clock every actor gets by default (default: a new `ManualClock`).
        publisher: the publisher every actor gets by default (default: a
            `RecordingPublisher` that forwards to local schedulers).
        stop_timeout: seconds to wait for each actor to stop.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: ManualClock | None = None,
        publisher: RecordingPublisher | None = None,
        stop_timeout: float = 10.0,
    ) -> None:
        self.path = Path(path)
        self.clock = clock if clock is not None else ManualClock()
        self.publisher = (
            publisher if publisher is not None else RecordingPublisher(LocalPublisher())
        )
        self.stop_timeout = stop_timeout
        self._lock = threading.Lock()
        self._db: Database | None = None
        self._started: list[tuple[pykka.ActorRef[Any], dict[str, Any]]] = []
        self._timer: pykka.ActorRef[TimerActor] | None = None
        self._ticked: set[str] = set()

    @property
    def db(self) -> Database:
        """The default database: a SQLite file in `path` (opened on first use)."""
        with self._lock:
            if self._db is None:
                self._db = Database(f"sqlite:///{self.path / 'actors.sqlite3'}")
            return self._db

    @property
    def refs(self) -> list[pykka.ActorRef[Any]]:
        """The refs of every actor started so far, oldest first."""
        with self._lock:
            return [ref for ref, _ in self._started]

    def defaults(self) -> dict[str, Any]:
        """The dependencies an actor gets when the call does not name them."""
        return {"db": self.db, "clock": self.clock, "publisher": self.publisher}

    def __call__(self, actor_class: type[A], /, **kwargs: Any) -> pykka.ActorRef[A]:
        """Start `actor_class` with `kwargs` plus the defaults it takes; return its ref."""
        offered = {k: v for k, v in self.defaults().items() if k not in kwargs}
        injected = {**accepted_kwargs(actor_class, offered), **kwargs}
        ref = actor_class.start(**injected)
        with self._lock:
            self._started.append((ref, injected))
        return ref

    def injected(self, ref: pykka.ActorRef[Any]) -> dict[str, Any]:
        """The keyword arguments `ref`'s actor was started with (defaults included).

        Raises:
            KeyError: `ref` was not started by this factory.
        """
        with self._lock:
            for started, injected in self._started:
                if started is ref or started.actor_urn == ref.actor_urn:
                    return dict(injected)
        msg = f"{ref} was not started by this factory"
        raise KeyError(msg)

    def advance(self, seconds: float, *, timeout: float = 10.0) -> int:
        """Move the clock, running the periodic tasks of every manager started so far.

        A timer actor on the factory's clock is started on first use; each
        running manager is registered with it once, its first tick due now.

        Returns:
            The number of ticks sent.
        """
        with self._lock:
            if self._timer is None:
                self._timer = TimerActor.start(clock=self.clock)
            timer = self._timer.proxy()
            fresh = [
                ref
                for ref, _ in self._started
                if ref.actor_urn not in self._ticked
                and issubclass(ref.actor_class, Manager)
                and ref.is_alive()
            ]
            self._ticked.update(ref.actor_urn for ref in fresh)
        for ref in fresh:
            timer.register(ref, initial_delay=0).get(timeout=timeout)
        sent: int = timer.advance(seconds, timeout=timeout).get(timeout=timeout * 10)
        return sent

    def stop(self) -> None:
        """Stop every actor started (newest first), the timer, then close the database."""
        with self._lock:
            started, self._started = self._started, []
            timer, self._timer = self._timer, None
            db, self._db = self._db, None
        for ref, _ in reversed(started):
            try:
                ref.stop(block=True, timeout=self.stop_timeout)
            except pykka.Timeout:
                logger.error("%s did not stop within %ss", ref, self.stop_timeout)
        if timer is not None:
            timer.stop(block=True, timeout=self.stop_timeout)
        if db is not None:
            db.dispose()

    def __enter__(self) -> ActorFactory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
