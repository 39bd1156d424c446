"""A bridge survives any bytes on its socket and answers the next good request."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgpack  # type: ignore[import-untyped]
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

import transport

if TYPE_CHECKING:
    from collections.abc import Iterator

GOOD = msgpack.packb([1, 1, 1, "echo", "add", [1, 2], {}, None, {"request_id": "req-x"}])


@pytest.fixture
def raw(server_endpoint: str) -> Iterator[zmq.Socket[bytes]]:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDTIMEO, 5000)
    sock.connect(server_endpoint)
    yield sock
    sock.close(linger=0)


def still_serving(conn: transport.Connection) -> None:
    assert conn.proxy("echo").add(20, 22).get(timeout=10) == 42


@settings(max_examples=60, deadline=None)
@given(frames=st.lists(st.binary(max_size=64), min_size=1, max_size=12))
def test_random_frames(
    raw: zmq.Socket[bytes], conn: transport.Connection, frames: list[bytes]
) -> None:
    raw.send_multipart(frames)
    still_serving(conn)


@settings(max_examples=30, deadline=None)
@given(cut=st.integers(0, len(GOOD) - 1))
def test_truncated_request(raw: zmq.Socket[bytes], conn: transport.Connection, cut: int) -> None:
    raw.send(GOOD[:cut])
    still_serving(conn)


@pytest.mark.parametrize(
    "body",
    [
        msgpack.packb({"version": 1}),  # a map, not an array
        msgpack.packb([1, 1, 1]),  # too short
        msgpack.packb([2, 1, 1, "echo", "add", [1, 2], {}, None, None]),  # protocol version
        msgpack.packb([1, "call", 1, "echo", "add", [1, 2], {}, None, None]),  # kind type
        msgpack.packb([1, 3, 1, "echo", "add", [1, 2], {}, None, None]),  # a reply kind
        msgpack.packb([1, 1, -1, "echo", "add", [1, 2], {}, None, None]),  # negative id
        msgpack.packb([1, 1, "id", "echo", "add", [1, 2], {}, None, None]),  # id type
        msgpack.packb([1, 1, 1, 5, "add", [1, 2], {}, None, None]),  # actor type
        msgpack.packb([1, 1, 1, "echo", b"add", [1, 2], {}, None, None]),  # method type
        msgpack.packb([1, 1, 1, "echo", "add", {"a": 1}, {}, None, None]),  # args type
        msgpack.packb([1, 1, 1, "echo", "add", [1, 2], {1: 2}, None, None]),  # kwargs keys
        msgpack.packb([1, 1, 1, "echo", "add", [1, 2], {}, 1.0, None]),  # version type
        msgpack.packb([1, 1, 1, "echo", "add", [1, 2], {}, None, [1]]),  # context type
        msgpack.packb([1, 2, None, "echo", "add", ["x"], {}, None, None]),  # cast that raises
        msgpack.packb([1, 1, 1, "echo", "add", [1], {}, None, None]),  # wrong arity
        msgpack.packb([1, 1, 1, "echo", "x" * 10_000, [], {}, None, None]),  # long name
        msgpack.packb([1, 1, 1, "echo", "add", [msgpack.ExtType(1, b"short")], {}, None, None]),
        msgpack.packb([1, 1, 1, "echo", "add", [msgpack.ExtType(3, b"nan?x")], {}, None, None]),
        msgpack.packb([1, 1, 1, "echo", "add", [msgpack.ExtType(99, b"")], {}, None, None]),
        b"\xdb\xff\xff\xff\xff",  # str32 claiming 4 GiB
        b"\xdd\xff\xff\xff\xff",  # array32 claiming 4G elements
        b"\xdf\xff\xff\xff\xff",  # map32 claiming 4G pairs
        b"\xc6\xff\xff\xff\xffabc",  # bin32 claiming 4 GiB
        b"\xc9\xff\xff\xff\xff\x04",  # ext32 claiming 4 GiB
        b"\x91" * 100_000,  # deeply nested arrays
        b"\xc7\x00\x04" * 10,  # empty tuple extensions
        b"\xc1",  # never-used byte
        b"",
    ],
)
def test_malformed_envelopes(
    raw: zmq.Socket[bytes], conn: transport.Connection, body: bytes
) -> None:
    raw.send(body)
    still_serving(conn)


def test_deeply_nested_tuple_extensions(raw: zmq.Socket[bytes], conn: transport.Connection) -> None:
    inner = msgpack.packb([])
    for _ in range(3000):
        inner = msgpack.packb(msgpack.ExtType(4, inner))
    raw.send(msgpack.packb([1, 1, 1, "echo", "echo", [], {}, None, None])[:-4] + inner)
    raw.send(msgpack.packb([1, 1, 1, "echo", "echo", [msgpack.ExtType(4, inner)], {}, None, None]))
    still_serving(conn)


def test_too_many_frames_and_empty_frames(
    raw: zmq.Socket[bytes], conn: transport.Connection
) -> None:
    raw.send_multipart([b""] * 50 + [GOOD])
    raw.send_multipart([b"", b"", b""])
    still_serving(conn)


def test_oversized_frame_is_dropped_without_reading(
    raw: zmq.Socket[bytes], conn: transport.Connection
) -> None:
    # The shared server accepts at most 1,000,000 bytes per message.
    raw.send(b"\x92" + b"\x00" * 2_000_000)
    still_serving(conn)
    raw.setsockopt(zmq.RCVTIMEO, 10_000)
    raw.send(GOOD)  # the raw socket reconnects by itself and is served again
    assert msgpack.unpackb(raw.recv()) == [1, 3, 1, 3]
