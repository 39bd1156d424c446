"""Pyro5: a `Daemon` (its default thread-pool server) serving one shared object.

Rows ``pyro-msgpack`` and ``pyro-serpent`` differ only in the client's
``SERIALIZER`` (the daemon accepts both); everything else is Pyro5's default
config. ``tally`` is ``@oneway`` (Pyro runs each oneway call in its own server
thread, so the counter has a lock and the client polls ``counted()``).

Pipelined: a Pyro5 proxy carries one call at a time and Pyro5 dropped Pyro4's
batch and async proxies, so what a user does is several proxies in several
threads: T threads, each with its own proxy (connection), sharing the N calls.
T is Pyro's best of `THREADS` in a trial before calibration (2 or 4 on 2 cores;
8 and more lose to the GIL). Casts: N oneway calls from one proxy.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import Pyro5.api  # type: ignore[import-untyped,import-not-found,unused-ignore]
import serpent  # type: ignore[import-untyped,import-not-found,unused-ignore]

from bench._peers.common import (
    Client,
    shared_out,
    spawn_server,
    timed_casts,
    until_stdin_closes,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

THREADS = (2, 4, 8)
"""Client thread counts (one proxy per thread) tried for the pipelined rows."""


def serve(argv: Sequence[str]) -> None:
    """Serve the object on a random loopback port; print its URI."""

    @Pyro5.api.expose
    @Pyro5.api.behavior(instance_mode="single")
    class Service:
        def __init__(self) -> None:
            self.count = 0
            self.lock = threading.Lock()

        def add(self, a: int, b: int) -> int:
            return a + b

        def echo(self, payload: Any) -> Any:
            return payload

        @Pyro5.api.oneway  # type: ignore[untyped-decorator]
        def tally(self, payload: Any) -> None:
            with self.lock:
                self.count += 1

        def counted(self) -> int:
            return self.count

    daemon = Pyro5.api.Daemon(host="127.0.0.1", port=0)
    uri = daemon.register(Service, "bench.service")
    thread = threading.Thread(target=daemon.requestLoop, daemon=True)
    thread.start()
    print(uri, flush=True)

    def shutdown() -> None:
        daemon.shutdown()
        thread.join(10)

    until_stdin_closes(shutdown)


class PyroClient(Client):
    """Pyro5 proxies: one for calls and casts, one per thread for the pipelined rows."""

    def __init__(self, uri: str, serializer: str) -> None:
        self.uri = uri
        self.serializer = serializer
        self.proxy = self._proxy()
        self.local = threading.local()
        self.threads = THREADS[0]
        self.pool = ThreadPoolExecutor(self.threads)
        self.proxies: list[Any] = [self.proxy]
        self.lock = threading.Lock()

    def _proxy(self) -> Any:
        proxy = Pyro5.api.Proxy(self.uri)
        proxy._pyroSerializer = self.serializer
        proxy._pyroBind()
        return proxy

    def check(self) -> None:
        assert self.add(1, 2) == 3
        echoed = self.echo(self.large)
        if self.serializer == "serpent":
            echoed = serpent.tobytes(echoed)  # serpent carries bytes as base64 dicts
        assert echoed == self.large

    def add(self, a: int, b: int) -> Any:
        return self.proxy.add(a, b)

    def echo(self, payload: Any) -> Any:
        return self.proxy.echo(payload)

    def counted(self) -> int:
        count: int = self.proxy.counted()
        return count

    def _thread_proxy(self) -> Any:
        proxy = getattr(self.local, "proxy", None)
        if proxy is None:
            proxy = self.local.proxy = self._proxy()
            with self.lock:
                self.proxies.append(proxy)
        return proxy

    def _calls(self, large: bool, n: int) -> None:
        proxy = self._thread_proxy()
        if large:
            for _ in range(n):
                proxy.echo(self.large)
        else:
            for _ in range(n):
                proxy.add(1, 2)

    def prepare(self) -> None:
        """Pick the thread count with the best median rate over three small trials."""
        best, chosen = 0.0, THREADS[0]
        for threads in THREADS:
            self.pool.shutdown()
            self.pool = ThreadPoolExecutor(threads)
            self.threads = threads
            self.pipelined(False, 200)
            rate = statistics.median(self.pipelined(False, 1000) for _ in range(3))
            if rate > best:
                best, chosen = rate, threads
        self.pool.shutdown()
        self.pool = ThreadPoolExecutor(chosen)
        self.threads = chosen
        self.notes = {"pipelined threads": chosen}

    def pipelined(self, large: bool, n: int) -> float:
        return shared_out(self.pool, self.threads, lambda share: self._calls(large, share), n)

    def casts(self, large: bool, n: int) -> float:
        return timed_casts(self, self.proxy.tally, large, n)

    def close(self) -> None:
        self.pool.shutdown()
        for proxy in self.proxies:
            proxy._pyroClaimOwnership()
            proxy._pyroRelease()


@contextlib.contextmanager
def open_client(kind: str, options: dict[str, Any]) -> Iterator[Client]:
    """Start the daemon in a child process; connect with the kind's serializer."""
    server = spawn_server("pyro")
    uri = server.line
    client = None
    try:
        client = PyroClient(uri, kind.removeprefix("pyro-"))
        yield client
    finally:
        if client is not None:
            client.close()
        server.stop()
