"""Flow control in the bridge: bounded mailboxes, bounded replies, time-to-live."""

from __future__ import annotations

import contextvars
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

import msgpack  # type: ignore[import-untyped]
import pykka
import pytest
import zmq

import transport
from actors import Manager
from actors._node import Node, NodeConfig
from tests.transport._actors import Echo
from transport._bridge import ContextProxyCall
from transport._codec import default_codec
from transport._protocol import Kind, decode_request, encode_request
from transport._transit import TransitClock

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

TIMEOUT = 10.0


class Held(Manager):
    """Holds every `hold` until its gate opens; records what ran, in order."""

    def __init__(
        self, gate: threading.Event, started: threading.Event | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("host", "flow-test")
        super().__init__(**kwargs)
        self.gate = gate
        self.started = started  # set when a hold begins, if given
        self.ran: list[int] = []

    def hold(self, seq: int) -> int:
        if self.started is not None:
            self.started.set()
        if not self.gate.wait(TIMEOUT):
            raise TimeoutError("the test never opened the gate")
        self.ran.append(seq)
        return seq

    def ran_so_far(self) -> list[int]:
        return list(self.ran)


class Small(Held):
    MAILBOX_LIMIT: ClassVar[int | None] = 2


NODE_GATE = threading.Event()


class NodeHeld(Held):
    """`Held` as a node runs it: the gate is this module's."""

    TOPIC = "held"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(gate=NODE_GATE, **kwargs)


class Served:
    def __init__(self, bridge: transport.Bridge, gate: threading.Event, held: Any) -> None:
        self.bridge = bridge
        self.gate = gate
        self.held = held  # the local proxy: reaches the inbox without the bridge


def raw_dealer(endpoint: str) -> zmq.Socket[bytes]:
    """A bare DEALER socket: a missing reply fails the test in 10 s instead of hanging."""
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(TIMEOUT * 1000))
    sock.connect(endpoint)
    return sock


def drained(bridge: transport.Bridge, name: str) -> None:
    """Wait (bounded) until the bridge's requests to `name` have all been handled.

    A refusal can reach the client before the requests accepted just ahead of it
    are in the mailbox (the bridge hands a batch over after reading it), so a
    local message sent on seeing the refusal could overtake them.
    """
    waiter = threading.Event()
    for _ in range(int(TIMEOUT * 100)):
        if bridge.stats()[f"mailbox.{name}"] == 0:
            return
        waiter.wait(0.01)
    pytest.fail(f"{name}'s mailbox did not drain: {bridge.stats()}")


@pytest.fixture
def served() -> Iterator[Served]:
    gate = threading.Event()
    held = Held.start(gate=gate)
    bridge = transport.Bridge("tcp://127.0.0.1:*", mailbox_limit=3)
    bridge.expose("held", held)
    bridge.expose("echo", Echo.start())
    bridge.start()
    try:
        yield Served(bridge, gate, held.proxy())
    finally:
        gate.set()
        bridge.stop()


@pytest.fixture
def conn(served: Served) -> Iterator[transport.Connection]:
    with transport.connect(served.bridge.endpoint, timeout=TIMEOUT) as connection:
        yield connection


def test_a_call_past_the_bound_is_refused_at_once(
    served: Served, conn: transport.Connection
) -> None:
    held = conn.proxy("held")
    accepted = [held.hold(i) for i in range(3)]  # one running, two queued: the bound
    with pytest.raises(transport.Overloaded, match="mailbox is full"):
        held.hold(99).get(timeout=TIMEOUT)  # answered while the gate is still shut
    assert not served.gate.is_set()
    assert served.bridge.stats()["overloaded"] == 1
    # Another manager on the same bridge is not affected.
    assert conn.proxy("echo").add(1, 2).get(timeout=TIMEOUT) == 3
    served.gate.set()
    assert [f.get(timeout=TIMEOUT) for f in accepted] == [0, 1, 2]
    assert held.hold(3).get(timeout=TIMEOUT) == 3  # room again
    assert served.held.ran_so_far().get(timeout=TIMEOUT) == [0, 1, 2, 3]
    assert served.bridge.stats()["mailbox.held"] == 0


def test_casts_past_the_bound_are_dropped_and_counted(
    served: Served, conn: transport.Connection
) -> None:
    held = conn.proxy("held")
    for i in range(10):
        held.hold.defer(i)
    # A call on the same connection is read after the casts: by its refusal, all
    # ten casts were seen by the bridge.
    with pytest.raises(transport.Overloaded):
        held.hold(99).get(timeout=TIMEOUT)
    assert served.bridge.stats()["overloaded_cast"] == 7
    served.gate.set()
    drained(served.bridge, "held")
    assert served.held.ran_so_far().get(timeout=TIMEOUT) == [0, 1, 2]  # the accepted ones


def test_the_bound_comes_from_the_class_or_expose_and_is_shared_by_names() -> None:
    gate = threading.Event()
    small = Small.start(gate=gate)
    other = Held.start(gate=gate)
    with transport.Bridge("tcp://127.0.0.1:*") as bridge:
        bridge.expose("small.a", small)
        bridge.expose("small.b", small)  # the same mailbox under a second name
        bridge.expose("other", other, mailbox_limit=1)
        with transport.connect(bridge.endpoint, timeout=TIMEOUT) as conn:
            first = conn.proxy("small.a").hold(1)
            second = conn.proxy("small.b").hold(2)
            with pytest.raises(transport.Overloaded):
                conn.proxy("small.a").hold(3).get(timeout=TIMEOUT)
            third = conn.proxy("other").hold(1)
            with pytest.raises(transport.Overloaded):
                conn.proxy("other").hold(2).get(timeout=TIMEOUT)
            gate.set()
            assert [f.get(timeout=TIMEOUT) for f in (first, second, third)] == [1, 2, 1]
    with pytest.raises(ValueError, match="at least 1"):
        transport.Bridge("tcp://127.0.0.1:*", mailbox_limit=0)
    with pytest.raises(ValueError, match="at least 1"):
        transport.Bridge("tcp://127.0.0.1:*", reply_hwm=0)
    with pytest.raises(ValueError, match="at least 1"):
        transport.Bridge("tcp://127.0.0.1:*", backlog_bytes=0)
    with pytest.raises(ValueError, match="at least 1"):
        transport.Bridge("tcp://127.0.0.1:*").expose("x", small, mailbox_limit=0)


def test_a_request_whose_ttl_passed_in_the_mailbox_never_runs(served: Served) -> None:
    sock = raw_dealer(served.bridge.endpoint)
    try:

        def request(msg_id: int, seq: int, ttl: int | None) -> bytes:
            return encode_request(
                default_codec, kind=Kind.CALL, msg_id=msg_id, actor="held", method="hold",
                args=(seq,), kwargs={}, version=None, context={}, ttl=ttl,
            )  # fmt: skip

        sock.send(request(1, 1, None))  # blocks the actor until the gate opens
        sock.send(request(2, 2, 0))  # its caller gives up at once: expired in the mailbox
        sock.send(request(3, 3, 60_000))  # plenty of time left: runs
        served.gate.set()
        replies = [msgpack.unpackb(sock.recv(), raw=False) for _ in range(2)]
        assert replies == [[1, 3, 1, 1], [1, 3, 3, 3]]  # no reply to the expired call
        assert served.held.ran_so_far().get(timeout=TIMEOUT) == [1, 3]
        assert served.bridge.stats()["expired"] == 1
        assert served.bridge.stats()["mailbox.held"] == 0
    finally:
        sock.close(linger=0)


def test_an_expired_cast_never_runs(served: Served) -> None:
    sock = raw_dealer(served.bridge.endpoint)
    try:
        sock.send(msgpack.packb([1, 1, 1, "held", "hold", [1], {}, None, {}]))
        sock.send(msgpack.packb([1, 2, 0, "held", "hold", [2], {}, None, {}, 0]))
        served.gate.set()
        assert msgpack.unpackb(sock.recv(), raw=False) == [1, 3, 1, 1]
        # A later call from the same sender is handled after the cast (per-sender
        # FIFO), so its reply proves the cast was dealt with: a local check right
        # after the first reply could run before the bridge has even read the cast.
        sock.send(msgpack.packb([1, 1, 3, "held", "hold", [3], {}, None, {}]))
        assert msgpack.unpackb(sock.recv(), raw=False) == [1, 3, 3, 3]
        assert served.held.ran_so_far().get(timeout=TIMEOUT) == [1, 3]
        assert served.bridge.stats()["expired"] == 1
    finally:
        sock.close(linger=0)


def test_the_client_sends_its_remaining_timeout_as_ttl() -> None:
    server: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
    server.setsockopt(zmq.LINGER, 0)
    port = server.bind_to_random_port("tcp://127.0.0.1")
    try:
        before = int(time.monotonic() * 1000)
        with transport.connect(f"tcp://127.0.0.1:{port}", timeout=7.5) as conn:
            # check=False: this raw server never answers a describe request
            conn.proxy("x", check=False).method(1)
            conn.proxy("x", timeout=0.25, check=False).method(2)
            conn.proxy("x", check=False).method.defer(3)
            assert server.poll(int(TIMEOUT * 1000))
            bodies = [server.recv_multipart()[-1] for _ in range(3)]
        after = int(time.monotonic() * 1000)
        requests = [decode_request(default_codec, body) for body in bodies]
        assert [r.ttl for r in requests] == [7501, 251, None]
        assert all(before <= (r.sent or 0) <= after for r in requests[:2])
        assert requests[2].sent is None
    finally:
        server.close(linger=0)


def test_a_slow_reader_gets_every_accepted_reply_and_the_bridge_holds_a_bounded_backlog() -> None:
    # A client that stops reading while thousands of calls are in flight. ZeroMQ keeps
    # at most `reply_hwm` replies toward it, the bridge holds the rest up to
    # `backlog_bytes` (plus the replies to calls already in the mailbox), then
    # refuses its calls (Overloaded) and past a cap drops them. Every call that was
    # accepted gets its reply once the client reads again.
    calls = 3000
    payload = "x" * 65_536  # 196 MB of replies if nothing were refused
    backlog_bytes = 4 * 1024 * 1024
    mailbox = 64
    ref = Echo.start()
    client: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    client.setsockopt(zmq.RCVHWM, 10)
    client.setsockopt(zmq.LINGER, 0)
    with transport.Bridge(
        "tcp://127.0.0.1:*", reply_hwm=16, backlog_bytes=backlog_bytes, mailbox_limit=mailbox
    ) as bridge:
        bridge.expose("echo", ref, mailbox_limit=mailbox)
        client.connect(bridge.endpoint)
        try:
            for msg_id in range(1, calls + 1):
                client.send(msgpack.packb([1, 1, msg_id, "echo", "echo", [payload], {}, None, {}]))
            last = msgpack.packb([1, 1, calls + 1, "echo", "echo", [None], {}, None, {}])
            client.send(last)
            # Wait until the bridge has answered or dropped everything it read.
            answered = threading.Event()
            for _ in range(int(TIMEOUT * 20)):
                stats = bridge.stats()
                seen = sum(
                    stats.get(key, 0)
                    for key in ("accepted", "overloaded", "slow_reader", "slow_reader_dropped")
                )
                if seen == calls + 1 and stats["mailbox.echo"] == 0:
                    answered.set()
                    break
                answered.wait(0.05)
            assert answered.is_set(), bridge.stats()
            held = bridge.stats()["backlog_bytes"]
            assert held <= backlog_bytes + (mailbox + 1) * (len(payload) + 100) + 200_000, held
            replies: dict[int, Any] = {}
            refused: set[int] = set()
            while client.poll(2000):
                reply = msgpack.unpackb(client.recv(), raw=False)
                assert reply[2] not in replies, "answered twice"
                assert reply[2] not in refused, "answered twice"
                if reply[1] == 3:
                    replies[reply[2]] = reply[3]
                else:
                    assert reply[3] == "overloaded", reply
                    refused.add(reply[2])
            stats = bridge.stats()
        finally:
            client.close(linger=0)
    dropped = stats.get("slow_reader_dropped", 0)
    assert len(replies) + len(refused) + dropped == calls + 1
    assert stats["slow_reader"] + stats["overloaded"] == len(refused)
    assert stats["slow_reader"] > 0
    assert all(value == payload for msg_id, value in replies.items() if msg_id <= calls)
    assert len(replies) > 16  # the backlog was used, not only ZeroMQ's queue
    assert stats["backlog"] == 0


def test_the_node_config_sets_the_mailbox_bound(tmp_path: Path) -> None:
    config = NodeConfig.from_dict(
        {
            "host": "flow-node",
            "database_url": f"sqlite:///{tmp_path}/state.sqlite3",
            "mailbox_limit": 2,
            "report_interval": 60,
            "services": [{"manager": f"{__name__}:NodeHeld"}],
        }
    )
    NODE_GATE.clear()
    node = Node(config)
    try:
        node.start()
        assert node.bridge is not None
        with transport.connect(node.bridge.endpoint, timeout=TIMEOUT) as conn:
            held = conn.proxy("held.flow-node")
            accepted = [held.hold(1), held.hold(2)]
            with pytest.raises(transport.Overloaded):
                held.hold(3).get(timeout=TIMEOUT)
            NODE_GATE.set()
            assert [f.get(timeout=TIMEOUT) for f in accepted] == [1, 2]
    finally:
        NODE_GATE.set()
        node.stop()


def test_a_manager_skips_a_message_whose_deadline_passed() -> None:
    # The check is the mailbox's (actors.ResilientActor): any message with a
    # `deadline` attribute; without the bridge's `expired()` hook on the reply
    # future, the caller's future fails with pykka.Timeout.
    gate = threading.Event()
    gate.set()
    ref = Held.start(gate=gate)
    now = time.monotonic()
    late = ContextProxyCall(("hold",), (1,), {}, contextvars.copy_context(), now - 1.0)
    timely = ContextProxyCall(("hold",), (2,), {}, contextvars.copy_context(), now + 3600)
    untimed = ContextProxyCall(("hold",), (3,), {}, contextvars.copy_context())
    with pytest.raises(pykka.Timeout, match="deadline passed before hold"):
        ref.ask(late, timeout=TIMEOUT)
    assert ref.ask(timely, timeout=TIMEOUT) == 2
    assert ref.ask(untimed, timeout=TIMEOUT) == 3
    assert ref.proxy().ran_so_far().get(timeout=TIMEOUT) == [2, 3]


def test_refusals_to_a_client_that_does_not_read_are_bounded(tmp_path: Path) -> None:
    # Calls at a full mailbox from a client that never reads: the refusals back up
    # too; past `backlog_bytes` plus 1,000 refusals the bridge drops the calls.
    gate = threading.Event()
    ref = Held.start(gate=gate)
    calls = 30_000
    client: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    client.setsockopt(zmq.RCVHWM, 1)
    client.setsockopt(zmq.LINGER, 0)
    endpoint = f"ipc://{tmp_path}/flow.sock"  # small socket buffers: the backlog fills
    try:
        with transport.Bridge(endpoint, reply_hwm=4, backlog_bytes=65_536) as bridge:
            bridge.expose("held", ref, mailbox_limit=1)
            client.connect(endpoint)
            for msg_id in range(1, calls + 1):
                client.send(msgpack.packb([1, 1, msg_id, "held", "hold", [msg_id], {}, None, {}]))
            waiter = threading.Event()
            for _ in range(int(TIMEOUT * 20)):
                stats = bridge.stats()
                seen = sum(
                    stats.get(key, 0)
                    for key in ("accepted", "overloaded", "slow_reader", "slow_reader_dropped")
                )
                if seen == calls:
                    break
                waiter.wait(0.05)
            assert seen == calls, stats
            assert stats["slow_reader_dropped"] > 0
            assert stats["backlog_bytes"] <= 65_536 + 1000 * 200, stats
            gate.set()
    finally:
        gate.set()
        client.close(linger=0)


def test_a_request_that_spent_its_ttl_in_transit_never_runs(served: Served) -> None:
    # The bridge compares each request's `sent` (the client's clock) with its
    # receipt: B claims to have been sent 20 s before A yet arrives after it, so it
    # spent 20 s on the way, more than its 5 s ttl: its caller has given up.
    sock = raw_dealer(served.bridge.endpoint)
    served.gate.set()
    t0 = 50_000_000  # the client's clock: unrelated to the bridge's

    def request(msg_id: int, sent: int, ttl: int) -> bytes:
        fields = [1, 1, msg_id, "held", "hold", [msg_id], {}, None, {}, ttl, sent]
        body: bytes = msgpack.packb(fields)
        return body

    try:
        sock.send(request(1, t0, 5_000))  # on time: sets the peer's fastest transit
        assert msgpack.unpackb(sock.recv(), raw=False) == [1, 3, 1, 1]
        sock.send(request(2, t0 - 20_000, 5_000))  # 20 s late: dropped on arrival
        sock.send(request(3, t0 + 1, 5_000))  # on time again
        assert msgpack.unpackb(sock.recv(), raw=False) == [1, 3, 3, 3]
        assert served.held.ran_so_far().get(timeout=TIMEOUT) == [1, 3]
        assert served.bridge.stats()["expired"] == 1
    finally:
        sock.close(linger=0)


def test_transit_lateness_is_relative_to_the_recent_fastest_and_drift_tolerant() -> None:
    clock = TransitClock(window=60.0, max_peers=2)
    # Peer a's clock is 1,000 s ahead of ours; transit is 1 ms at best.
    assert clock.lateness((b"a",), 1_000_000_000 - 1, 0.0) == 0.0  # first request: no basis
    assert clock.lateness((b"a",), 1_000_010_000 - 1, 10.0) == 0.0
    assert clock.lateness((b"a",), 1_000_020_000 - 1, 22.5) == pytest.approx(2.5)  # 2.5 s queued
    assert clock.lateness((b"a",), 1_000_025_000, 25.0) == 0.0  # faster than ever: new basis
    # A slow drift (the peer's clock 0.01 % slow) is forgotten after a window, not
    # accumulated as lateness: after 10 minutes it costs well under a second.
    lateness = [
        clock.lateness((b"a",), int(1_000_025_000 + (t - 25.0) * 1000 * 0.9999), t)
        for t in range(30, 630, 5)
    ]
    assert max(lateness) < 0.01
    # The table of peers is bounded.
    clock.lateness((b"b",), 5, 1.0)
    clock.lateness((b"c",), 5, 1.0)
    assert len(clock) <= 2


def test_transit_lateness_forgets_a_basis_older_than_the_window() -> None:
    # After an hour without requests, the clocks may have drifted apart by a
    # second or more: the old minimum is not used (a late request then runs).
    clock = TransitClock(window=60.0)
    assert clock.lateness((b"a",), 0, 0.0) == 0.0
    assert clock.lateness((b"a",), 3_600_000 - 2_000, 3600.0) == 0.0  # 2 s "late": unknown
    assert clock.lateness((b"a",), 3_610_000 - 3_000, 3610.0) == pytest.approx(1.0)


def test_transit_is_estimated_per_client_behind_a_proxy(served: Served) -> None:
    # A proxy in between: one peer socket, clients told apart by the routing frames
    # that follow. Client b's clock reads 10,000 s behind client a's: that is not
    # lateness, and b's call runs.
    sock = raw_dealer(served.bridge.endpoint)
    served.gate.set()

    def request(msg_id: int, sent: int) -> bytes:
        fields = [1, 1, msg_id, "held", "hold", [msg_id], {}, None, {}, 5_000, sent]
        body: bytes = msgpack.packb(fields)
        return body

    try:
        sock.send_multipart([b"client-a", request(1, 10_000_000_000)])
        assert sock.recv_multipart()[0] == b"client-a"
        sock.send_multipart([b"client-b", request(2, 1_000)])
        assert sock.poll(int(TIMEOUT * 1000)), served.bridge.stats()
        client, body = sock.recv_multipart()
        assert (client, msgpack.unpackb(body, raw=False)) == (b"client-b", [1, 3, 2, 2])
        assert served.bridge.stats()["expired"] == 0
    finally:
        sock.close(linger=0)
