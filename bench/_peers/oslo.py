"""oslo.messaging over RabbitMQ (what Cinder runs on): an RPC server and an RPC client.

The server is ``get_rpc_server(..., executor="threading")`` with one endpoint
on topic ``bench_peers``; the client is ``get_rpc_client`` on the same topic.
Both use the global ``oslo_config.cfg.CONF`` (oslo.messaging 18.3 fails with a
private ``ConfigOpts``). Messages are JSON, so the 64 KiB payload is an ASCII str
(non-ASCII would be escaped to six bytes a character).
Pipelined: `THREADS` threads sharing one client (thread-safe; one reply
queue), each making its share of the N calls. Casts: N ``client.cast`` from
one thread, then poll ``counted()`` (the server runs casts on a thread pool).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import oslo_messaging  # type: ignore[import-untyped,import-not-found,unused-ignore]
from oslo_config import cfg  # type: ignore[import-not-found,unused-ignore]

from bench._peers.common import (
    LARGE,
    Client,
    shared_out,
    spawn_server,
    timed_casts,
    until_stdin_closes,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

THREADS = 16
"""Client threads for the pipelined rows (4 to 64 all give about the same rate here)."""
TOPIC = "bench_peers"
CTXT: dict[str, Any] = {}


def _transport(url: str) -> Any:
    logging.basicConfig(level=logging.WARNING)
    cfg.CONF([], project="bench_peers", default_config_files=[], default_config_dirs=[])
    return oslo_messaging.get_rpc_transport(cfg.CONF, url=url)


class Endpoint:
    """The service as an oslo endpoint (each method takes the request context first)."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def add(self, ctxt: Any, a: int, b: int) -> int:
        return a + b

    def echo(self, ctxt: Any, payload: Any) -> Any:
        return payload

    def tally(self, ctxt: Any, payload: Any) -> None:
        with self.lock:
            self.count += 1

    def counted(self, ctxt: Any) -> int:
        return self.count


def serve(argv: Sequence[str]) -> None:
    """Serve the endpoint through the broker at ``argv[0]``; print "ready" once consuming."""
    transport = _transport(argv[0])
    target = oslo_messaging.Target(topic=TOPIC, server="bench")
    server = oslo_messaging.get_rpc_server(transport, target, [Endpoint()], executor="threading")
    server.start()
    print("ready", flush=True)

    def shutdown() -> None:
        server.stop()
        server.wait()
        transport.cleanup()

    until_stdin_closes(shutdown)


class OsloClient(Client):
    """An oslo.messaging RPC client."""

    large = "x" * len(LARGE)

    def __init__(self, url: str) -> None:
        self.transport = _transport(url)
        self.client = oslo_messaging.get_rpc_client(
            self.transport, oslo_messaging.Target(topic=TOPIC), timeout=60
        )
        self.pool = ThreadPoolExecutor(THREADS)
        self.notes = {"pipelined threads": THREADS}

    def check(self) -> None:
        # the server's queue may not be bound yet: retry short calls (bounded)
        deadline = time.monotonic() + 30
        quick = self.client.prepare(timeout=2)
        while True:
            try:
                assert quick.call(CTXT, "add", a=1, b=2) == 3
                break
            except oslo_messaging.MessagingTimeout:
                if time.monotonic() > deadline:
                    raise
        super().check()

    def add(self, a: int, b: int) -> Any:
        return self.client.call(CTXT, "add", a=a, b=b)

    def echo(self, payload: Any) -> Any:
        return self.client.call(CTXT, "echo", payload=payload)

    def counted(self) -> int:
        count: int = self.client.call(CTXT, "counted")
        return count

    def _calls(self, large: bool, n: int) -> None:
        for _ in range(n):
            self.call(large)

    def pipelined(self, large: bool, n: int) -> float:
        return shared_out(self.pool, THREADS, lambda share: self._calls(large, share), n)

    def casts(self, large: bool, n: int) -> float:
        cast = self.client.cast
        return timed_casts(self, lambda payload: cast(CTXT, "tally", payload=payload), large, n)

    def close(self) -> None:
        self.pool.shutdown()
        self.transport.cleanup()


@contextlib.contextmanager
def open_client(kind: str, options: dict[str, Any]) -> Iterator[Client]:
    """Start the RPC server in a child process on the broker at ``options["url"]``."""
    server = spawn_server("oslo", options["url"])
    client = None
    try:
        client = OsloClient(options["url"])
        yield client
    finally:
        if client is not None:
            client.close()
        server.stop()
