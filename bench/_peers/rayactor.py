"""Ray: a local Ray instance (``ray.init``) and one actor, in Ray's own worker process.

The client is the driver. Calls: ``ray.get(actor.add.remote(1, 2))``.
Pipelined: N ``actor.add.remote(...)`` object refs, then one ``ray.get`` of
them all. Casts: N ``actor.tally.remote(payload)`` whose refs are dropped
(Ray's fire-and-forget), then ``counted()``; a synchronous actor runs one
caller's tasks in order, so the first read already sees them all.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

import ray  # type: ignore[import-not-found,unused-ignore]

from bench import _harness as h
from bench._peers.common import Client, Service, timed_casts

if TYPE_CHECKING:
    from collections.abc import Iterator


class RayClient(Client):
    """The driver's handle to the actor."""

    def __init__(self) -> None:
        self.actor: Any = ray.remote(Service).remote()

    def add(self, a: int, b: int) -> Any:
        return ray.get(self.actor.add.remote(a, b))

    def echo(self, payload: Any) -> Any:
        return ray.get(self.actor.echo.remote(payload))

    def counted(self) -> int:
        count: int = ray.get(self.actor.counted.remote())
        return count

    def pipelined(self, large: bool, n: int) -> float:
        if large:
            return h.rate_of(n, lambda: ray.get([self.actor.echo.remote(self.large)
                                                 for _ in range(n)]))  # fmt: skip
        return h.rate_of(n, lambda: ray.get([self.actor.add.remote(1, 2) for _ in range(n)]))

    def casts(self, large: bool, n: int) -> float:
        return timed_casts(self, self.actor.tally.remote, large, n)


@contextlib.contextmanager
def open_client(kind: str, options: dict[str, Any]) -> Iterator[Client]:
    """Start a private local Ray instance (127.0.0.1, no dashboard) and the actor."""
    ray.init(
        address="local",
        _node_ip_address="127.0.0.1",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    try:
        yield RayClient()
    finally:
        ray.shutdown()
