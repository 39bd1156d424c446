"""Small manager systems the simulator's tests run."""

from __future__ import annotations

from typing import Any

import pykka

from actors import Manager, periodic_task


class Store(Manager):
    """A value behind get/set."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = 0
        self.log: list[Any] = []
        self.counts: dict[Any, int] = {}

    def get(self) -> int:
        return self.value

    def set(self, value: int) -> None:
        self.value = value

    def record(self, sender: Any, seq: int) -> int:
        self.log.append((sender, seq))
        self.counts[sender] = self.counts.get(sender, 0) + 1
        return self.counts[sender]


class Caller(Manager):
    """Calls a peer (blocking get inside the handler) and notes when it resumed."""

    def __init__(self, peer: pykka.ActorRef[Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._peer = peer
        self.done: list[str] = []

    def connect(self, peer: pykka.ActorRef[Any]) -> None:
        self._peer = peer

    def fetch(self, tag: str) -> int:
        assert self._peer is not None
        value: int = self._peer.proxy().get().get()
        self.done.append(tag)
        return value

    def ask_peer(self, timeout: float | None = None) -> Any:
        assert self._peer is not None
        return self._peer.proxy().ask_peer(timeout).get(timeout=timeout)


class Sender(Manager):
    """Sends `count` numbered casts to a store when told."""

    def __init__(self, store: pykka.ActorRef[Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store = store

    def send(self, me: int, count: int) -> None:
        assert self._store is not None
        proxy = self._store.proxy()
        for seq in range(count):
            proxy.record.defer(me, seq)


class Ticker(Manager):
    """Counts its periodic runs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runs: list[float] = []

    @periodic_task(spacing=10, run_immediately=True)
    def count(self, context: Any) -> None:
        self.runs.append(self.clock.monotonic())


class Plain(pykka.ThreadingActor):
    """A plain pykka actor (not a Manager)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        self.seen.append(message)
        return len(self.seen)

    def count(self) -> int:
        return len(self.seen)
