"""A manager's own socket (`Bridge(own_sockets=True)`): its thread reads and replies itself."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import msgpack  # type: ignore[import-untyped]
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

import transport
from actors import Manager
from tests.transport._actors import Echo
from tests.transport.test_flow import Held
from transport._codec import default_codec
from transport._direct import ActorSocket
from transport._protocol import Kind, encode_request
from transport._transit import TransitClock

if TYPE_CHECKING:
    from collections.abc import Iterator

TIMEOUT = 10.0


class Log(Manager):
    """Records (sender, seq) in the order handled, from local and remote senders alike."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(host="own-test", **kwargs)
        self.seen: list[tuple[str, int]] = []
        self.threads: set[int] = set()

    def record(self, sender: str, seq: int) -> None:
        self.threads.add(threading.get_ident())
        self.seen.append((sender, seq))

    def log(self) -> list[tuple[str, int]]:
        return list(self.seen)

    def thread_count(self) -> int:
        return len(self.threads)


@pytest.fixture
def served() -> Iterator[tuple[transport.Bridge, Any]]:
    ref = Log.start()
    bridge = transport.Bridge("tcp://127.0.0.1:*", own_sockets=True)
    bridge.expose("log", ref)
    bridge.expose("echo", Echo.start())
    with bridge:
        yield bridge, ref
    ref.stop()


def dealer(endpoint: str) -> zmq.Socket[bytes]:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def test_each_manager_has_its_own_endpoint_and_the_shared_one_still_serves(
    served: tuple[transport.Bridge, Any],
) -> None:
    bridge, _ = served
    own_log, own_echo = bridge.endpoint_of("log"), bridge.endpoint_of("echo")
    assert len({own_log, own_echo, bridge.endpoint}) == 3
    assert bridge.endpoint_of("nobody") == bridge.endpoint
    with transport.connect(own_echo, timeout=TIMEOUT) as conn:
        echo = conn.proxy("echo")
        assert echo.add(1, 2).get() == 3
        with pytest.raises(ZeroDivisionError):
            echo.fail("ZeroDivisionError", "x").get()
        with pytest.raises(transport.NoSuchMethod):
            echo.lifecycle_only().get()
        with pytest.raises(transport.UnsupportedVersion):
            conn.proxy("echo", version="2.0").echo(1).get()
        with pytest.raises(transport.UnknownActor):  # its socket serves only its names
            conn.proxy("log").log().get()
        assert echo.add(2, 2).get() == 4  # still serving after the errors
    with transport.connect(bridge.endpoint, timeout=TIMEOUT) as conn:
        assert conn.proxy("echo").add(3, 4).get() == 7
    assert bridge.stats()["accepted.echo"] == 4  # three there, one here; refusals are not
    totals = bridge.traffic_totals()  # what the metrics export: own sockets included
    assert totals.messages_in >= 7
    assert totals.messages_out >= 7
    assert 1 <= bridge.traffic.messages_in < totals.messages_in  # the shared socket: its own


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from(["local", "remote", "shared"]), min_size=1, max_size=40))
def test_per_sender_fifo_with_local_and_remote_messages_interleaved(order: list[str]) -> None:
    ref = Log.start()
    bridge = transport.Bridge("tcp://127.0.0.1:*", own_sockets=True)
    bridge.expose("log", ref)
    try:
        with (
            bridge,
            transport.connect(bridge.endpoint_of("log"), timeout=TIMEOUT) as own,
            transport.connect(bridge.endpoint, timeout=TIMEOUT) as shared,
        ):
            senders: dict[str, Any] = {
                "local": ref.proxy(),
                "remote": own.proxy("log"),
                "shared": shared.proxy("log"),
            }
            counts = dict.fromkeys(senders, 0)
            for sender in order:
                senders[sender].record.defer(sender, counts[sender])
                counts[sender] += 1
            for proxy in senders.values():  # each sender's call comes after its casts
                proxy.log().get(timeout=TIMEOUT)
            seen = ref.proxy().log().get(timeout=TIMEOUT)
            for sender, count in counts.items():
                assert [seq for who, seq in seen if who == sender] == list(range(count))
            assert ref.proxy().thread_count().get(timeout=TIMEOUT) == 1  # one at a time
    finally:
        ref.stop()


def test_a_request_whose_ttl_passed_while_it_waited_never_runs() -> None:
    gate, started = threading.Event(), threading.Event()
    ref = Held.start(gate=gate, started=started)
    bridge = transport.Bridge("tcp://127.0.0.1:*", own_sockets=True, mailbox_limit=3)
    bridge.expose("held", ref)
    bridge.expose("echo", Echo.start())
    try:
        with bridge, transport.connect(bridge.endpoint_of("echo"), timeout=TIMEOUT) as conn:
            sock = dealer(bridge.endpoint_of("held"))

            def request(msg_id: int, seq: int, ttl: int | None) -> bytes:
                return encode_request(
                    default_codec, kind=Kind.CALL, msg_id=msg_id, actor="held", method="hold",
                    args=(seq,), kwargs={}, version=None, context={}, ttl=ttl,
                )  # fmt: skip

            try:
                sock.send(request(1, 1, None))  # runs, blocked on the gate
                sock.send(request(2, 2, 0))  # expired by the time it could start
                sock.send(request(3, 3, 60_000))
                assert conn.proxy("echo").add(1, 2).get(timeout=TIMEOUT) == 3  # not held up
                gate.set()
                replies = [msgpack.unpackb(sock.recv(), raw=False) for _ in range(2)]
                assert replies == [[1, 3, 1, 1], [1, 3, 3, 3]]  # no reply to the expired one
                assert ref.proxy().ran_so_far().get(timeout=TIMEOUT) == [1, 3]
                assert bridge.stats()["expired"] == 1
            finally:
                sock.close(linger=0)
    finally:
        gate.set()
        ref.stop()


def test_a_flood_past_the_bound_is_refused_and_does_not_slow_another_manager() -> None:
    gate, started = threading.Event(), threading.Event()
    ref = Held.start(gate=gate, started=started)
    bridge = transport.Bridge("tcp://127.0.0.1:*", own_sockets=True, mailbox_limit=3)
    bridge.expose("held", ref)
    bridge.expose("echo", Echo.start())
    try:
        with (
            bridge,
            transport.connect(bridge.endpoint_of("held"), timeout=TIMEOUT) as conn,
            transport.connect(bridge.endpoint_of("echo"), timeout=TIMEOUT) as other,
        ):
            held = conn.proxy("held")
            first = held.hold(0)  # running: blocked on the gate; nothing else is read
            # Running, read alone (a thread starved of the GIL would read in bulk).
            assert started.wait(TIMEOUT), f"held never took its request: {bridge.stats()}"
            assert other.proxy("echo").add(1, 2).get(timeout=TIMEOUT) == 3
            queued = [held.hold(i) for i in range(1, 10)]
            for _ in range(200):  # bounded: the other manager keeps answering
                assert other.proxy("echo").add(1, 1).get(timeout=TIMEOUT) == 2
            gate.set()
            assert first.get(timeout=TIMEOUT) == 0
            results = []
            for future in queued:
                try:
                    results.append(future.get(timeout=TIMEOUT))
                except transport.Overloaded:
                    results.append("overloaded")
            # Read together once the actor was free: three fit the bound, the rest refused.
            assert results[:3] == [1, 2, 3]
            assert results[3:] == ["overloaded"] * 6
            assert bridge.stats()["overloaded"] == 6
    finally:
        gate.set()
        ref.stop()


def test_bad_frames_on_its_socket_never_stop_it(served: tuple[transport.Bridge, Any]) -> None:
    bridge, _ = served
    sock = dealer(bridge.endpoint_of("echo"))
    try:
        for junk in (b"", b"\xc1", msgpack.packb([1, 1]), msgpack.packb({"a": 1}), b"x" * 100):
            sock.send(junk)
        sock.send_multipart([b"a", b"b", b"c"])
        sock.send(msgpack.packb([1, 1, 7, "echo", "add", [1, 2], {}, None, {}]))
        assert sock.poll(int(TIMEOUT * 1000)), "no answer after the junk"
        assert msgpack.unpackb(sock.recv(), raw=False) == [1, 3, 7, 3]  # read after the junk
        assert bridge.stats()["malformed"] >= 5
        with transport.connect(bridge.endpoint_of("echo"), timeout=TIMEOUT) as conn:
            assert conn.proxy("echo").add(1, 2).get() == 3
    finally:
        sock.close(linger=0)


def test_curve_on_its_own_socket() -> None:
    server, good, bad = (transport.generate_keypair() for _ in range(3))
    ref = Echo.start()
    bridge = transport.Bridge(
        "tcp://127.0.0.1:*", keypair=server, allowed_clients=[good.public], own_sockets=True
    )
    bridge.expose("echo", ref)
    with bridge:
        own = bridge.endpoint_of("echo")
        assert own != bridge.endpoint
        with transport.connect(own, timeout=TIMEOUT, keypair=good, server_key=server.public) as c:
            assert c.proxy("echo").add(1, 2).get() == 3
        with (
            transport.connect(own, timeout=1.0, keypair=bad, server_key=server.public) as c,
            pytest.raises(transport.MessagingTimeout),
        ):
            c.proxy("echo").add(1, 2).get()
    ref.stop()


def test_unexpose_stop_and_restart_close_the_socket() -> None:
    ref = Log.start()
    bridge = transport.Bridge("tcp://127.0.0.1:*", own_sockets=True)
    bridge.expose("log", ref)
    bridge.start()
    try:
        own = bridge._own[ref.actor_urn]
        bridge.unexpose("log")
        assert own.closed.wait(TIMEOUT)
        assert ref.proxy().log().get(timeout=TIMEOUT) == []  # back to its inbox alone
        bridge.expose("log", ref)
        again = bridge._own[ref.actor_urn]
        assert again is not own
        with transport.connect(bridge.endpoint_of("log"), timeout=TIMEOUT) as conn:
            conn.proxy("log").record.defer("r", 1)
            assert conn.proxy("log").log().get() == [("r", 1)]
        ref.stop()
        assert again.closed.wait(TIMEOUT)  # the stopping actor closed it
    finally:
        bridge.stop()  # terminates the context: it would hang on an open socket
        ref.stop()


# -- the inline path: what it must do exactly as the mailbox's general path does ----------

_MARK: contextvars.ContextVar[str] = contextvars.ContextVar("own_socket_test_mark", default="")


class Inline(Manager):
    """Reports what a handler sees; fails and dies on request."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(host="inline-test", **kwargs)
        self.threads: set[int] = set()
        self.log: list[str] = []

    def seen(self, tag: str) -> tuple[str | None, str, Any]:
        """The request context's id and tag, and the mark a previous handler may have left."""
        self.threads.add(threading.get_ident())
        ctx = transport.current_context()
        before = _MARK.get()
        _MARK.set(tag)  # must not leak into the next message
        return (
            None if ctx is None else ctx.request_id,
            before,
            None if ctx is None else ctx.get("tag"),
        )

    def note(self, text: str) -> None:
        self.log.append(text)

    def notes(self) -> list[str]:
        return list(self.log)

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def die(self) -> None:
        raise SystemExit(3)


class Recording:
    """A mailbox probe that records what it ran, then runs it as the loop would."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, str]] = []

    def run(self, handle: Any, message: Any, reply_to: Any, context: Any) -> Any:
        self.ran.append((type(message).__name__, getattr(reply_to, "message_kind", "local")))
        return handle(message) if context is None else context.run(handle, message)

    def failed(self) -> None:
        self.ran.append(("failed", ""))

    def task_ran(self, name: str, *, failed: bool) -> None:  # pragma: no cover - no tasks
        pass


@pytest.fixture
def inline() -> Iterator[tuple[transport.Bridge, Any, Any]]:
    heard: list[BaseException | None] = []
    told = threading.Event()

    def supervisor(actor: Any, failure: BaseException | None) -> None:
        heard.append(failure)
        told.set()

    ref = Inline.start(supervisor=supervisor)
    bridge = transport.Bridge("tcp://127.0.0.1:*", own_sockets=True)
    bridge.expose("inline", ref)
    with bridge, transport.connect(bridge.endpoint_of("inline"), timeout=TIMEOUT) as conn:
        yield bridge, ref, (conn.proxy("inline"), heard, told)
    if ref.is_alive():
        ref.stop()


def test_each_remote_call_runs_in_its_own_context_with_its_request_context(
    inline: tuple[transport.Bridge, Any, Any],
) -> None:
    bridge, ref, (proxy, _, _) = inline
    for i in range(5):
        with transport.use_context(transport.RequestContext(f"req-{i}", tag=i)):
            assert proxy.seen(f"t{i}").get() == (f"req-{i}", "", i)  # nothing leaked
    proxy.seen.defer("cast")  # a cast too: its mark stays in its own context
    assert proxy.seen("last").get()[1] == ""
    assert ref.proxy().seen("local").get(timeout=TIMEOUT)[1] == ""
    assert bridge.stats()["accepted.inline"] == 7


def test_errors_are_replies_and_failing_casts_are_logged_once_then_counted(
    inline: tuple[transport.Bridge, Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    bridge, _, (proxy, _, _) = inline
    with pytest.raises(ValueError, match="boom"):
        proxy.fail("boom").get()
    with caplog.at_level(logging.ERROR, logger="transport.bridge"):
        for i in range(20):
            proxy.fail.defer(f"cast {i}")
        assert proxy.seen("after").get()[1] == ""  # still serving, in order after the casts
    assert bridge.stats()["cast_failed"] == 20
    logged = [r for r in caplog.records if "raised" in r.getMessage()]
    assert len(logged) == 1  # the first at once, with its traceback; the rest in a summary
    assert logged[0].exc_info is not None
    assert bridge.stats()["mailbox.inline"] == 0  # every request finished, failures too


def test_a_base_exception_answers_the_call_stops_the_actor_and_tells_its_supervisor(
    inline: tuple[transport.Bridge, Any, Any],
) -> None:
    bridge, ref, (proxy, heard, told) = inline
    with pytest.raises(transport.RemoteError, match="SystemExit"):  # not an Exception: no rebuild
        proxy.die().get()
    assert told.wait(TIMEOUT)
    assert isinstance(heard[0], SystemExit)
    assert ref.actor_stopped.wait(TIMEOUT)
    own = bridge._own[ref.actor_urn]
    assert own.closed.wait(TIMEOUT)  # its thread closed the socket on the way out


def test_a_probe_set_mid_run_sees_every_remote_request_then_the_inline_path_resumes(
    inline: tuple[transport.Bridge, Any, Any],
) -> None:
    _, ref, (proxy, _, _) = inline
    assert proxy.seen("before").get()[1] == ""
    probe = Recording()
    ref.proxy().mailbox_probe = probe  # a local message, in order with the rest
    with transport.use_context(transport.RequestContext("req-probed", tag="p")):
        assert proxy.seen("probed").get() == ("req-probed", "", "p")
    proxy.note.defer("cast")
    with pytest.raises(ValueError, match="x"):
        proxy.fail("x").get()
    ran = list(probe.ran)
    assert ("ContextProxyCall", "call") in ran
    assert ("ContextProxyCall", "cast") in ran
    assert ("failed", "") in ran
    ref.proxy().mailbox_probe = None
    count = len(probe.ran)
    assert proxy.notes().get() == ["cast"]
    assert len(probe.ran) == count  # unset: nothing more went through it


def test_local_and_remote_messages_to_a_busy_actor_interleave_and_keep_each_order(
    inline: tuple[transport.Bridge, Any, Any],
) -> None:
    _, ref, (proxy, _, _) = inline
    local = ref.proxy()
    for i in range(50):
        proxy.note.defer(f"r{i}")
        local.note.defer(f"l{i}")
    notes = proxy.notes().get()
    assert local.notes().get(timeout=TIMEOUT) == notes
    assert [n for n in notes if n[0] == "r"] == [f"r{i}" for i in range(50)]
    assert [n for n in notes if n[0] == "l"] == [f"l{i}" for i in range(50)]
    assert ref.proxy().seen("x").get(timeout=TIMEOUT) is not None
    assert len(ref.proxy().threads.get(timeout=TIMEOUT)) == 1


def test_a_wait_with_requests_already_read_does_not_block_on_the_socket() -> None:
    """Requests a drain has read wait in the socket's own queue: `wait` must not block.

    The mailbox loop ends a turn with requests still queued when a local
    message came in between (local and remote alternate); ZeroMQ then has
    nothing left to signal, so a wait that looked only at the socket blocked
    until another request came, and a call hung (the FIFO property above
    found it about once in a hundred runs).
    """
    ref = Log.start()
    bridge = transport.Bridge("tcp://127.0.0.1:*")
    bridge.start()
    own = ActorSocket(bridge, ref, 10, "tcp://127.0.0.1:*")
    try:
        assert own.wait(None, 0.2) == (False, False)  # nothing anywhere: the time runs out
        cast: Any = (None, 0, "log", "record", ["remote", 0], {}, None, None)
        own._queue.append(cast)  # as a drain leaves it
        assert own.wait(None, 10.0) == (True, False)  # at once, not after 10 s
    finally:
        own.close()
        bridge.stop()
        ref.stop()


_POLL_SYSCALLS = {"7", "271"}  # poll, ppoll (x86_64): what the actor's wait blocks in


def _until_waiting(tid: int) -> None:
    """Return once thread `tid` of this process is blocked in ``poll`` (bounded)."""
    deadline = time.monotonic() + TIMEOUT
    for _ in range(1_000_000):
        with open(f"/proc/self/task/{tid}/syscall") as current:
            if current.read().split(" ", 1)[0] in _POLL_SYSCALLS:
                return
        if time.monotonic() > deadline:
            break
    pytest.fail(f"thread {tid} never blocked in poll")


def _answers(
    sock: zmq.Socket[bytes], bodies: list[bytes], waiting: int | None = None
) -> list[list[Any]]:
    """Send each body alone, then a call, and collect what came back before that call's reply.

    With `waiting` (the serving actor's thread), each body is sent only once
    that thread blocks in its wait, so the body wakes it (the inline path);
    on either path the answers must agree.
    """
    out = []
    for body in bodies:
        if waiting is not None:
            _until_waiting(waiting)
        sock.send(body)
        sock.send(msgpack.packb([1, 1, 999, "echo", "add", [0, 0], {}, None, None]))
        got = []
        for _ in range(5):  # bounded: the body's answer (if any), then the call's
            if not sock.poll(int(TIMEOUT * 1000)):
                pytest.fail(f"no answer to {body!r}")
            reply = msgpack.unpackb(sock.recv(), raw=False, strict_map_key=False)
            if reply[2] == 999:
                break
            got.append(reply[:6])  # kind, msg_id, error module, class, message
        out.append(got)
    return out


def test_each_request_gets_the_answer_the_shared_socket_gives(
    served: tuple[transport.Bridge, Any],
) -> None:
    """Sequential requests (served inline as they wake the wait) and the bridge's checks agree."""
    long = "x" * 256

    def body(*fields: Any) -> bytes:
        packed: bytes = msgpack.packb(list(fields), use_bin_type=True)
        return packed

    bodies = [
        body(1, 1, 1, "echo", "add", [1, 2], {}, None, {"request_id": "r"}, 60_000, 5),
        body(1, 1, 2, "echo", "add", [1], {"b": 2}, "1.0", None),
        body(1, 1, 3, "echo", "add", [1, 2], {}, None, {}, 60_000),
        body(2, 1, 4, "echo", "add", [1, 2], {}, None, None),  # protocol version
        body(1, True, 5, "echo", "add", [1, 2], {}, None, None),
        body(1, 1, -6, "echo", "add", [1, 2], {}, None, None),
        body(1, 1, 7, "", "add", [1, 2], {}, None, None),
        body(1, 1, 8, long, "add", [1, 2], {}, None, None),
        body(1, 1, 9, "nobody", "add", [1, 2], {}, None, None),
        body(1, 1, 10, "echo", "_private", [], {}, None, None),
        body(1, 1, 11, "echo", "nosuch", [], {}, None, None),
        body(1, 1, 12, "echo", long, [], {}, None, None),
        body(1, 1, 13, "echo", 5, [], {}, None, None),
        body(1, 1, 14, "echo", "lifecycle_only", [], {}, None, None),
        body(1, 1, 15, "echo", "not_a_method", [], {}, None, None),
        body(1, 1, 16, "echo", "add", {"a": 1}, {}, None, None),
        body(1, 1, 17, "echo", "add", [1], {2: 2}, None, None),
        body(1, 1, 18, "echo", "add", [1, 2], {}, 1, None),
        body(1, 1, 19, "echo", "add", [1, 2], {}, "9.0", None),
        body(1, 1, 20, "echo", "add", [1, 2], {}, None, [1]),
        body(1, 1, 21, "echo", "add", [1, 2], {}, None, {1: 2}),
        body(1, 1, 22, "echo", "add", [1, 2], {}, None, {"request_id": 5}),
        body(1, 1, 23, "echo", "add", [1, 2], {}, None, None, -1),
        body(1, 1, 24, "echo", "add", [1, 2], {}, None, None, 2**33),
        body(1, 1, 25, "echo", "add", [1, 2], {}, None, None, 60_000, "x"),
        body(1, 1, 26, "echo", "add", [1, 2], {}, None, None, 60_000, 5, 0),
        body(1, 1, 27, "echo", "add", [1, 2], {}, None),
        body(1, 1, 28, "echo", "add", [1, "x"], {}, None, None),  # the handler raises
        body(1, 1, 29, "echo", "echo", [{1, 2}.__class__.__name__], {}, None, None),
        body(1, 2, 0, "echo", "nosuch", [], {}, None, None),  # casts: no answer
        body(1, 2, 0, "echo", "add", [1, "x"], {}, None, None),
        body(1, 1, 30, "echo", "add", [1, 2], {}, None, None, 0, 5),  # expired on arrival
    ]
    bridge, _ = served
    own, shared = dealer(bridge.endpoint_of("echo")), dealer(bridge.endpoint)
    try:
        (echo,) = [t for t in threading.enumerate() if t.name.startswith("Echo-")]
        assert echo.native_id is not None
        mine = _answers(own, bodies, waiting=echo.native_id)
        theirs = _answers(shared, bodies)
    finally:
        own.close(linger=0)
        shared.close(linger=0)
    assert mine == theirs
    answered = [a[0][2] for a in mine if a]  # no answer: no usable msg_id, casts, expired
    assert answered == [n for n in range(1, 30) if n not in {4, 5, 6, 27}]
    assert mine[27] == [[1, 4, 28, "remote", "builtins", "TypeError"]]  # the handler raised


def test_a_request_late_in_transit_is_refused_by_the_sequential_path(
    served: tuple[transport.Bridge, Any],
) -> None:
    """Its `sent` shows it spent its ttl on the way: not run; a little late but in time runs."""
    bridge, _ = served
    sock = dealer(bridge.endpoint_of("echo"))

    def call(msg_id: int, ttl: int, sent: int) -> None:
        body = [1, 1, msg_id, "echo", "add", [msg_id, 0], {}, None, None, ttl, sent]
        sock.send(msgpack.packb(body))

    try:
        replies = []
        for msg_id, ttl, sent in ((1, 60_000, 100_000), (2, 50, 90_000), (3, 60_000, 95_000),
                                  (4, 60_000, 100_010)):  # fmt: skip
            call(msg_id, ttl, sent)  # 2 was sent 10 s before 1 (by its clock): late
            if msg_id != 2:
                assert sock.poll(int(TIMEOUT * 1000))
                replies.append(msgpack.unpackb(sock.recv(), raw=False))
        assert replies == [[1, 3, 1, 1], [1, 3, 3, 3], [1, 3, 4, 4]]
        assert bridge.stats()["expired"] == 1
    finally:
        sock.close(linger=0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([b"a", b"b"]), st.integers(0, 10**7), st.floats(0.0, 100.0)),
        min_size=1,
        max_size=60,
    )
)
def test_a_transit_floor_bounds_the_lateness_it_precedes(
    requests: list[tuple[bytes, int, float]],
) -> None:
    """What the inline path relies on to defer `lateness`: it never exceeds offset - floor."""
    clock = TransitClock(window=60.0)
    now = 0.0
    for peer, sent, step in requests:
        now += step
        floor = clock.floors.get((peer,))
        late_ms = clock.lateness((peer,), sent, now) * 1000
        if floor is not None:
            assert late_ms <= max(0.0, now * 1000 - sent - floor) + 1e-6
        else:
            assert late_ms == 0.0  # nothing to compare with yet
