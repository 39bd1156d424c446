"""The client's lean wait: a sequential caller receiving on the socket itself.

The peer is a ROUTER socket driven by the test (real ZeroMQ on loopback), so
each test chooses which replies come, in what order and when: the cases the
lean wait could get wrong (a reply for another call first, a call slower than
the lean slice, a second thread arriving while the first waits, callbacks
added meanwhile, closing under a waiter).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest
import zmq

import transport
from transport._codec import default_codec
from transport._protocol import Request, decode_request, encode_reply

if TYPE_CHECKING:
    from collections.abc import Iterator

    from transport._future import RemoteFuture

TIMEOUT = 10.0


class Peer:
    """A hand-driven bridge stand-in: read requests, answer them when told."""

    def __init__(self) -> None:
        self.sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        port: int = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"

    def request(self, timeout: float = TIMEOUT) -> tuple[bytes, Request]:
        """The next request (its sender's identity and body), within `timeout`."""
        assert self.sock.poll(int(timeout * 1000), zmq.POLLIN), "no request arrived"
        identity, body = self.sock.recv_multipart()
        return identity, decode_request(default_codec, body)

    def reply(self, identity: bytes, request: Request, result: Any) -> None:
        self.sock.send_multipart([identity, encode_reply(default_codec, request.msg_id, result)])

    def close(self) -> None:
        self.sock.close(linger=0)


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer()
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def conn(peer: Peer) -> Iterator[transport.Connection]:
    connection = transport.connect(peer.endpoint, timeout=TIMEOUT)
    try:
        yield connection
    finally:
        connection.close(linger=0)


def call(conn: transport.Connection, method: str, *args: Any, timeout: float | None = None) -> Any:
    proxy = conn.proxy("peer", check=False)  # no describe round trip: the peer is the test
    method_of = getattr(proxy, method)
    if timeout is None:
        return method_of(*args)
    return conn._call("peer", method, args, {}, None, timeout)


def in_thread(target: Any) -> tuple[threading.Thread, list[Any]]:
    """Run `target()` in a thread; the list gets its result or exception."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(target())
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def joined(thread: threading.Thread, out: list[Any]) -> Any:
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "the waiting thread did not finish"
    assert len(out) == 1
    return out[0]


def test_sequential_calls_get_their_own_replies(conn: transport.Connection, peer: Peer) -> None:
    for i in range(20):
        future = call(conn, "echo", i)
        identity, req = peer.request()
        assert (req.method, req.args) == ("echo", (i,))
        assert req.ttl is not None
        assert req.sent is not None
        peer.reply(identity, req, i * 10)
        assert future.get(timeout=TIMEOUT) == i * 10
    assert not conn._pending


def test_a_late_reply_to_an_expired_call_arriving_first_is_dropped(
    conn: transport.Connection, peer: Peer
) -> None:
    expired = call(conn, "slow", timeout=0.05)
    stale_identity, stale = peer.request()
    with pytest.raises(transport.MessagingTimeout):
        expired.get()  # its deadline passes unanswered: it is no longer pending
    assert not conn._pending
    future = call(conn, "echo", 1)
    identity, req = peer.request()
    peer.reply(stale_identity, stale, "too late")  # reaches the lean waiter first
    peer.reply(identity, req, "mine")
    assert future.get(timeout=TIMEOUT) == "mine"
    with pytest.raises(transport.MessagingTimeout):
        expired.get()  # failed for good, the late reply changed nothing


def test_a_call_slower_than_the_lean_slice_and_get_timeouts(
    conn: transport.Connection, peer: Peer
) -> None:
    future = call(conn, "slow")
    identity, req = peer.request()
    with pytest.raises(transport.MessagingTimeout, match="still pending"):
        future.get(timeout=0.05)  # lean slice and general wait both run out: still pending
    assert not future.done()
    thread, out = in_thread(future.get)
    thread.join(0.05)  # (a bounded wait) it waits past several lean slices...
    assert thread.is_alive()  # ...and then on
    peer.reply(identity, req, "slow result")
    assert joined(thread, out) == "slow result"
    with pytest.raises(transport.MessagingTimeout, match="before its deadline"):
        call(conn, "never", timeout=0.1).get()  # a deadline that passes on the lean path
    peer.request()  # (the unanswered request)


def test_a_second_thread_sends_while_the_first_waits(
    conn: transport.Connection, peer: Peer
) -> None:
    first = call(conn, "first")
    first_waiter, first_out = in_thread(first.get)
    identity, req_first = peer.request()
    # The first caller waits; a second thread's call must still go out (the
    # lean wait holds the socket for a slice at most), and be answered first.
    second_waiter, second_out = in_thread(lambda: call(conn, "second").get(timeout=TIMEOUT))
    identity2, req_second = peer.request()
    assert req_second.method == "second"
    peer.reply(identity2, req_second, 2)
    assert joined(second_waiter, second_out) == 2
    assert first_waiter.is_alive()  # still waiting for its own
    peer.reply(identity, req_first, 1)
    assert joined(first_waiter, first_out) == 1
    assert not conn._pending


def test_replies_in_reverse_order_reach_waiting_threads(
    conn: transport.Connection, peer: Peer
) -> None:
    futures = [call(conn, "n", i) for i in range(4)]
    waiters = [in_thread(f.get) for f in futures]
    requests = [peer.request() for _ in futures]
    for identity, req in reversed(requests):
        peer.reply(identity, req, req.args[0] * 100)
    assert [joined(*w) for w in waiters] == [0, 100, 200, 300]


def test_callbacks_added_while_a_sequential_call_is_in_flight(
    conn: transport.Connection, peer: Peer
) -> None:
    first = call(conn, "first")
    waiter, out = in_thread(first.get)
    identity, req_first = peer.request()
    seen: list[tuple[str, Any]] = []
    done = threading.Event()

    def record(name: str) -> Any:
        def callback(future: RemoteFuture[Any]) -> None:
            seen.append((name, future.get(timeout=0)))
            if len(seen) == 2:
                done.set()

        return callback

    first.add_done_callback(record("first"))  # on the call a thread waits for
    second = call(conn, "second")
    second.add_done_callback(record("second"))  # nobody calls get() on this one
    identity2, req_second = peer.request()
    peer.reply(identity2, req_second, "b")
    peer.reply(identity, req_first, "a")
    assert done.wait(TIMEOUT)
    assert sorted(seen) == [("first", "a"), ("second", "b")]
    assert joined(waiter, out) == "a"


def test_close_under_a_waiting_caller_fails_its_call(
    conn: transport.Connection, peer: Peer
) -> None:
    future = call(conn, "forever")
    waiter, out = in_thread(future.get)
    peer.request()
    conn.close(linger=0)
    assert isinstance(joined(waiter, out), transport.ConnectionClosed)
