"""The least Python that speaks the transport's wire format: a ROUTER server, a DEALER client.

What `bench.critical` measures our client and our server against: each side's
cost over these is the Python that side adds on a call's critical path.

- `serve`: a ROUTER answering a call with ``[1, 3, msg_id, args[0]]`` (an
  echo) and a describe with `DESCRIPTION` (so a `transport` proxy can talk to
  it); casts and anything else get no answer. Its thread blocks in a receive
  (the least a Python server costs), or with ``poll=True`` waits the way the
  own-socket server does (``select.poll`` on the socket's descriptor, then
  receives without blocking until ``Again``: about 2 µs more per call here),
  so that both critical paths start at the same point, the ``poll``'s return.
- `MinimalClient`: a DEALER sending calls (a fresh message id and send time
  each, as any client must), reading each reply with one blocking receive.

Requests and replies are plain msgpack, as on the wire (docs/protocol.rst).
"""

from __future__ import annotations

import itertools
import os
import select
import threading
import time
from typing import Any

import msgpack  # type: ignore[import-untyped]
import zmq

from bench import _harness as h

CALL, DESCRIBE, REPLY = 1, 5, 3
"""The wire's kinds (docs/protocol.rst)."""
DESCRIPTION = {
    "class": "Sink", "module": __name__, "rpc_version": "1.0", "methods": ["echo"],
    "attributes": [],
}  # fmt: skip
"""The describe reply: an actor with one method, ``echo``."""
TTL_MS = 60_000
"""The time-to-live each call carries."""


def answer(
    router: zmq.Socket[bytes], stop: threading.Event | None = None, *, poll: bool = False
) -> None:
    """Answer `router`'s requests until `stop` is set (checked at least every 100 ms).

    With `poll`, wait in ``select.poll`` on the socket's descriptor, else in a
    blocking receive.
    """
    poller = select.poll()
    poller.register(router.fileno(), select.POLLIN)
    recv, send, unpackb, packb = router.recv, router.send, msgpack.unpackb, msgpack.packb
    wait = -1 if stop is None else 100
    if stop is not None:
        router.setsockopt(zmq.RCVTIMEO, wait)
    flags = zmq.NOBLOCK if poll else 0
    while stop is None or not stop.is_set():
        try:
            peer = recv(flags)
        except zmq.Again:  # (also what makes sleeping on the edge-triggered descriptor safe)
            if poll:
                poller.poll(wait)
            continue
        msg = unpackb(recv())  # a DEALER's request: the peer's identity, then one body
        if msg[1] == CALL:
            result = msg[5][0]
        elif msg[1] == DESCRIBE:
            result = DESCRIPTION
        else:
            continue
        send(peer, zmq.SNDMORE)
        send(packb([1, REPLY, msg[2], result]))


def bind(ctx: zmq.Context[zmq.Socket[bytes]]) -> tuple[zmq.Socket[bytes], str]:
    """A ROUTER bound on loopback, and its endpoint."""
    router: zmq.Socket[bytes] = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    return router, f"tcp://127.0.0.1:{port}"


def serve(*, poll: bool = False) -> None:
    """In a server process: answer on a thread, print the endpoint, stop when stdin closes."""
    router, endpoint = bind(zmq.Context.instance())
    threading.Thread(target=answer, args=(router,), kwargs={"poll": poll}, daemon=True).start()
    h.serve_until_stdin_closes(endpoint)
    os._exit(0)  # the thread blocks in a wait; nothing to clean up


class MinimalClient:
    """A DEALER calling ``sink.echo(payload)``, one call at a time."""

    def __init__(self, endpoint: str, *, timeout: float | None = None) -> None:
        """Connect to `endpoint`; with `timeout`, a reply that many seconds late raises
        `zmq.Again` (without, libzmq does the least work per receive, as the raw floor's)."""
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self.sock: zmq.Socket[bytes] = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if timeout is not None:
            self.sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
        self.sock.connect(endpoint)
        self._ids = itertools.count(1)

    def call(self, payload: Any) -> Any:
        """``echo(payload)``'s result (the reply's fourth field)."""
        sent = int(time.monotonic() * 1000)
        body = [1, CALL, next(self._ids), "sink", "echo", [payload], {}, None, {}, TTL_MS, sent]
        self.sock.send(msgpack.packb(body))
        return msgpack.unpackb(self.sock.recv())[3]

    def close(self) -> None:
        """Close the socket at once."""
        self.sock.close(linger=0)
