"""docs/protocol.rst spoken with raw pyzmq + msgpack (no transport client code)."""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from typing import TYPE_CHECKING, Any

import msgpack  # type: ignore[import-untyped]
import pytest
import zmq

if TYPE_CHECKING:
    from collections.abc import Iterator

TIMEOUT_MS = 10_000


def request(kind: int, msg_id: int, actor: str, method: str, *args: Any, **kw: Any) -> bytes:
    context = {"request_id": f"req-{uuid.uuid4()}", "user": "raw"}
    data: bytes = msgpack.packb(
        [1, kind, msg_id, actor, method, list(args), kw, None, context], use_bin_type=True
    )
    return data


def decode(body: bytes) -> Any:
    def ext_hook(code: int, data: bytes) -> Any:
        if code == 4:  # tuple
            return tuple(msgpack.unpackb(data, raw=False, ext_hook=ext_hook))
        return msgpack.ExtType(code, data)

    return msgpack.unpackb(body, raw=False, ext_hook=ext_hook, strict_map_key=False)


@pytest.fixture
def req_socket(server_endpoint: str) -> Iterator[zmq.Socket[bytes]]:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    sock.connect(server_endpoint)
    yield sock
    sock.close(linger=0)


@pytest.fixture
def dealer(server_endpoint: str) -> Iterator[zmq.Socket[bytes]]:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    sock.connect(server_endpoint)
    yield sock
    sock.close(linger=0)


def test_req_socket_call(req_socket: zmq.Socket[bytes]) -> None:
    req_socket.send(request(1, 7, "echo", "add", 2, 40))
    assert decode(req_socket.recv()) == [1, 3, 7, 42]


def test_dealer_pipelined_calls_matched_by_id(dealer: zmq.Socket[bytes]) -> None:
    for msg_id in range(100, 110):
        dealer.send(request(1, msg_id, "echo", "add", msg_id, 1))
    replies = {}
    for _ in range(10):
        version, kind, msg_id, result = decode(dealer.recv())
        assert (version, kind) == (1, 3)
        replies[msg_id] = result
    assert replies == {i: i + 1 for i in range(100, 110)}


def test_cast_has_no_reply_and_is_ordered_before_a_call(dealer: zmq.Socket[bytes]) -> None:
    sender = f"raw-{uuid.uuid4()}"
    dealer.send(request(2, 0, "rec1", "record", sender, 1))
    dealer.send(request(2, 0, "rec1", "record", sender, 2))
    dealer.send(request(1, 5, "rec1", "entries", sender))
    assert decode(dealer.recv()) == [1, 3, 5, [1, 2]]


def test_extension_types_on_the_wire(dealer: zmq.Socket[bytes]) -> None:
    tup = msgpack.ExtType(4, msgpack.packb([1, "two"]))
    # 2024-01-02T03:04:05.000006+01:00: UTC seconds, microseconds, offset seconds.
    utc = int(dt.datetime(2024, 1, 2, 2, 4, 5, tzinfo=dt.UTC).timestamp())
    when = msgpack.ExtType(1, struct.pack(">qIi", utc, 6, 3600))
    ident = msgpack.ExtType(2, uuid.UUID(int=1).bytes)
    dec = msgpack.ExtType(3, b"1.50")
    big = msgpack.ExtType(6, (2**70).to_bytes(9, "big", signed=True))
    body = msgpack.packb([1, 1, 9, "echo", "echo", [[tup, when, ident, dec, big]], {}, None, None])
    dealer.send(body)
    version, kind, msg_id, result = decode(dealer.recv())
    assert (version, kind, msg_id) == (1, 3, 9)
    assert result == [(1, "two"), when, ident, dec, big]


def test_error_envelopes(dealer: zmq.Socket[bytes]) -> None:
    dealer.send(request(1, 1, "nobody", "add"))
    assert decode(dealer.recv())[:6] == [1, 4, 1, "unknown_actor", "transport", "UnknownActor"]
    dealer.send(request(1, 2, "echo", "_private"))
    assert decode(dealer.recv())[:4] == [1, 4, 2, "no_such_method"]
    dealer.send(
        msgpack.packb([1, 1, 3, "echo", "add", [1, 2], {}, "9.0", None], use_bin_type=True)
    )
    assert decode(dealer.recv())[:4] == [1, 4, 3, "unsupported_version"]
    dealer.send(request(1, 4, "echo", "fail", "ValueError", "bad", 1))
    version, kind, msg_id, error_kind, module, name, message, args, traceback = decode(
        dealer.recv()
    )
    assert (version, kind, msg_id, error_kind) == (1, 4, 4, "remote")
    assert (module, name, message, args) == ("builtins", "ValueError", "('bad', 1)", ["bad", 1])
    assert "Traceback" in traceback
    dealer.send(msgpack.packb([1, 1, 5, "echo", "add", "not-a-list", {}, None, None]))
    assert decode(dealer.recv())[:4] == [1, 4, 5, "invalid_request"]


def test_describe_get_and_set(req_socket: zmq.Socket[bytes]) -> None:
    req_socket.send(request(5, 1, "fields", "*"))
    kind, msg_id, description = decode(req_socket.recv())[1:]
    assert (kind, msg_id) == (3, 1)
    assert description["class"] == "Fields"
    assert {"bump", "items"} <= set(description["methods"])
    assert {"count", "doubled", "label"} <= set(description["attributes"])
    req_socket.send(request(7, 2, "fields", "count", 20))
    assert decode(req_socket.recv()) == [1, 3, 2, None]
    req_socket.send(request(6, 3, "fields", "doubled"))
    assert decode(req_socket.recv()) == [1, 3, 3, 40]
    req_socket.send(request(7, 4, "fields", "doubled", 1))  # a property without a setter
    error = decode(req_socket.recv())
    assert error[:6] == [1, 4, 4, "remote", "builtins", "AttributeError"]
    req_socket.send(request(6, 5, "fields", "_secret"))
    assert decode(req_socket.recv())[1:4] == [4, 5, "no_such_method"]
    req_socket.send(request(6, 6, "fields", "bump"))  # a method is not an attribute
    assert decode(req_socket.recv())[1:4] == [4, 6, "no_such_method"]
    req_socket.send(request(7, 7, "fields", "count", 1, 2))
    assert decode(req_socket.recv())[1:4] == [4, 7, "invalid_request"]
    req_socket.send(request(5, 8, "nobody", "*"))
    assert decode(req_socket.recv())[1:4] == [4, 8, "unknown_actor"]
    req_socket.send(request(7, 9, "fields", "brand_new", 1))  # no attribute is ever added
    assert decode(req_socket.recv())[1:4] == [4, 9, "no_such_method"]
    req_socket.send(request(7, 10, "fields", "host", "elsewhere"))  # RPC_READ_ONLY
    assert decode(req_socket.recv())[1:4] == [4, 10, "no_such_method"]
    req_socket.send(request(6, 11, "fields", "host"))
    assert decode(req_socket.recv())[1:4] == [3, 11, "transport-test"]
