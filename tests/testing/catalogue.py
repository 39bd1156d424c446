"""A catalogue of planted concurrency bugs in small manager systems.

Each entry is a scenario that drives a `Simulation` and fails (AssertionError)
exactly when its bug shows, plus the faults it needs. tests/testing/test_catalogue.py
checks that the simulator finds each one; bench/sim_catalogue.py measures how fast.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka

import transport
from actors import Manager, periodic_task
from actors.testing import Faults

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.testing import Simulation


# -- 1. read-then-cast lost update between two managers ------------------------------------


class Counter(Manager):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = 0

    def get(self) -> int:
        return self.value

    def set(self, value: int) -> None:
        self.value = value


class Incrementer(Manager):
    def __init__(self, counter: pykka.ActorRef[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._counter = counter

    def bump(self) -> None:
        counter = self._counter.proxy()
        value = counter.get().get()
        counter.set.defer(value + 1)  # BUG: read-then-write across two messages


def lost_update(sim: Simulation) -> None:
    counter = sim.start(Counter, host="h1")
    for _ in range(2):
        sim.start(Incrementer, host="h1", counter=counter).proxy().bump.defer()
    sim.run()
    assert counter.proxy().get().get() == 2, "an increment was lost"


# -- 2. a stale capability report overrides a newer local reservation -----------------------


class Backend(Manager):
    CAPACITY = 100

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.used = 0
        self._scheduler: pykka.ActorRef[Any] | None = None

    def attach(self, scheduler: pykka.ActorRef[Any]) -> None:
        self._scheduler = scheduler

    def create(self, size: int) -> None:
        self.used += size

    def report(self) -> None:
        if self._scheduler is not None:
            self._scheduler.proxy().update.defer(self.CAPACITY - self.used)


class Placer(Manager):
    def __init__(self, backend: pykka.ActorRef[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._backend = backend
        self.free = 0

    def update(self, free: int) -> None:
        self.free = free  # BUG: a report older than a local reservation overrides it

    def place(self, size: int) -> bool:
        if self.free < size:
            return False
        self.free -= size
        self._backend.proxy().create.defer(size)
        return True


def stale_report(sim: Simulation) -> None:
    backend = sim.start(Backend, host="h1")
    placer = sim.start(Placer, host="h1", backend=backend)
    backend.proxy().attach(placer).get()
    backend.proxy().report.defer()
    sim.run()
    backend.proxy().report.defer()  # a second report crosses the placements
    for _ in range(2):
        placer.proxy().place.defer(60)
    sim.run()
    used = backend.proxy().used.get()
    assert used <= Backend.CAPACITY, f"backend over-committed: {used} GB"


# -- 3. a periodic task racing a call ----------------------------------------------------------


class Hits(Manager):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.count = 0

    def hit(self) -> None:
        self.count += 1

    def get(self) -> int:
        return self.count

    def reset(self) -> None:
        self.count = 0


class Auditor(Manager):
    def __init__(self, hits: pykka.ActorRef[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hits = hits
        self.total = 0

    @periodic_task(spacing=10)
    def collect(self, context: Any) -> None:
        hits = self._hits.proxy()
        self.total += hits.get().get()
        hits.reset.defer()  # BUG: hits that arrived since the read are lost


class Clicker(Manager):
    def __init__(self, hits: pykka.ActorRef[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hits = hits
        self.sent = 0

    @periodic_task(spacing=10)
    def click(self, context: Any) -> None:
        self._hits.proxy().hit.defer()
        self.sent += 1


def periodic_race(sim: Simulation) -> None:
    hits = sim.start(Hits, host="h1")
    auditor = sim.start(Auditor, host="h1", hits=hits)
    clicker = sim.start(Clicker, host="h1", hits=hits)
    sim.advance(35)
    sent = clicker.proxy().sent.get()
    counted = auditor.proxy().total.get() + hits.proxy().get().get()
    assert counted == sent, f"{sent} hits sent, {counted} counted"


# -- 4. a reply lost after the handler ran ------------------------------------------------------


class Bank(Manager):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.balance = 100

    def withdraw(self, amount: int) -> int:
        self.balance -= amount
        return self.balance


class Payer(Manager):
    def __init__(self, bank: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._bank = bank
        self.paid = 0

    def pay(self, amount: int) -> None:
        for _ in range(3):
            try:
                self._bank.withdraw(amount).get()
            except transport.MessagingTimeout:
                continue  # BUG: retrying a non-idempotent call
            self.paid += amount
            return


def lost_reply(sim: Simulation) -> None:
    bank = sim.start(Bank, host="bank")
    sim.expose("bank", bank)
    # unchecked (no describe round trip that a fault could lose before the scenario starts)
    remote = sim.connect("bank", origin="shop", timeout=5).proxy("bank", check=False)
    payer = sim.start(Payer, host="shop", bank=remote)
    for _ in range(3):
        payer.proxy().pay.defer(10)
    sim.run()
    spent = 100 - bank.proxy().balance.get()
    paid = payer.proxy().paid.get()
    assert spent == paid, f"the bank lost {spent} but the payer paid {paid}"


# -- 5. shows only after a partition heals ---------------------------------------------------------


class Node(Manager):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.owned: set[str] = set()

    def acquire(self, volume: str) -> None:
        self.owned.add(volume)

    def release(self, volume: str) -> None:
        self.owned.discard(volume)

    def owns(self) -> list[str]:
        return sorted(self.owned)


class Mover(Manager):
    def __init__(self, nodes: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._nodes = nodes

    def move(self, volume: str, source: str, target: str) -> None:
        # BUG: on a timeout, "it must be dead": but a partitioned node comes back
        with contextlib.suppress(transport.MessagingTimeout):
            self._nodes[source].release(volume).get()
        self._nodes[target].acquire(volume).get()


def healed_partition(sim: Simulation) -> None:
    nodes = {}
    refs = {}
    for host in ("n1", "n2"):
        refs[host] = sim.start(Node, host=host)
        sim.expose("node", refs[host])
        nodes[host] = sim.connect(host, origin="mover", timeout=5).proxy("node", check=False)
    mover = sim.start(Mover, host="mover", nodes=nodes).proxy()
    refs["n1"].proxy().acquire("vol").get()
    mover.move.defer("vol", "n1", "n2")
    mover.move.defer("vol", "n2", "n1")
    sim.run()
    sim.heal()
    sim.run()
    owners = [host for host, ref in refs.items() if ref.is_alive() and ref.proxy().owns().get()]
    assert len(owners) <= 1, f"vol is owned by {owners} after the partition healed"


@dataclass(frozen=True)
class Bug:
    """One planted bug: its scenario and the faults it needs."""

    name: str
    scenario: Callable[[Simulation], None]
    faults: Faults | bool


NETWORK = Faults(drop_request=3, drop_reply=3, delay=3, stall=0, node=0)
PARTITIONS = Faults(
    drop_request=0, drop_reply=0, delay=0, stall=0, node=5, max_node_faults=2, crashes=False
)

BUGS = [
    Bug("lost update (read-then-cast)", lost_update, False),
    Bug("stale report over a reservation", stale_report, False),
    Bug("periodic task racing a call", periodic_race, False),
    Bug("reply lost after the handler ran", lost_reply, NETWORK),
    Bug("volume in two places after a heal", healed_partition, PARTITIONS),
]
