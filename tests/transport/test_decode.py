"""Every undecodable or ill-typed body is the protocol's own error, cheap to refuse."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgpack  # type: ignore[import-untyped]
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

import transport
from tests.transport._actors import Echo
from transport._bridge import _callable_cached, _cast_target, _version_ok
from transport._codec import EXT_BIGINT, EXT_DECIMAL, EXT_EXCEPTION, EXT_TUPLE, default_codec
from transport._protocol import (
    Kind,
    ProtocolError,
    decode_plain,
    decode_request,
    decode_response_fields,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

TIMEOUT = 10.0


def bigint(digits: int) -> msgpack.ExtType:
    value = 7 * 10**digits
    return msgpack.ExtType(EXT_BIGINT, value.to_bytes((value.bit_length() + 8) // 8, "big"))


HUGE = bigint(5000)  # str() of it raises ValueError (Python's 4,300-digit limit)
SNAN = msgpack.ExtType(EXT_DECIMAL, b"sNaN")  # raises when compared


@pytest.mark.parametrize(
    "body",
    [
        [HUGE, 1, 1, "echo", "add", [], {}, None, {}],  # protocol version
        [1, HUGE, 1, "echo", "add", [], {}, None, {}],  # kind
        [1, 1, HUGE, "echo", "add", [], {}, None, {}],  # msg_id
        [SNAN, 1, 1, "echo", "add", [], {}, None, {}],
        [1, SNAN, 1, "echo", "add", [], {}, None, {}],
        [1, 1, SNAN, "echo", "add", [], {}, None, {}],
        [1, 1, 1, "echo", "add", [], {}, None, {}, HUGE],  # ttl
        [1, 1, 1, "echo", "add", [], {}, None, {}, -1],
        [1, 1, 1, "echo", "add", [], {}, None, {}, 1.5],
        [1, 1, 1, "echo", "add", [], {}, None, {}, 2**40],
        [1, 1, 1, "echo", "add", [HUGE], {}, None, {}],  # decodes: the method's business
        [1, 1, 1, "echo", "add", [SNAN], {}, None, {}],
        [1, 1, [HUGE] * 3, "echo", "add", [], {}, None, {}],
        [1, 1, "x" * 100_000, "echo", "add", [], {}, None, {}],
    ],
)
def test_hostile_fields_are_protocol_errors_with_short_messages(body: list[Any]) -> None:
    error = refusal(decode_request, msgpack.packb(body))
    if body[5] == [HUGE]:
        assert error is None  # a valid request: a big integer argument
    else:
        assert error is not None
        assert len(error) < 500


def refusal(decode: Any, body: bytes) -> str | None:
    """Decode `body`: None when valid, the message of the `ProtocolError` otherwise."""
    try:
        decode(default_codec, body)
    except ProtocolError as exc:
        return str(exc)
    return None


def test_ttl_and_sent_are_optional_and_checked() -> None:
    base = [1, 1, 5, "echo", "add", [1, 2], {}, None, {}]
    assert decode_request(default_codec, msgpack.packb(base)).ttl is None
    assert decode_request(default_codec, msgpack.packb([*base, None])).ttl is None
    assert decode_request(default_codec, msgpack.packb([*base, 250])).ttl == 250
    full = decode_request(default_codec, msgpack.packb([*base, 250, 7, "a later field"]))
    assert (full.ttl, full.sent) == (250, 7)
    assert decode_request(default_codec, msgpack.packb([*base, None, 7])).sent == 7
    with pytest.raises(ProtocolError, match="ttl") as info:
        decode_request(default_codec, msgpack.packb([*base, "soon"]))
    assert info.value.msg_id == 5  # a call: the bridge answers invalid_request
    with pytest.raises(ProtocolError, match="sent"):
        decode_request(default_codec, msgpack.packb([*base, 250, -1]))


ext = st.builds(
    msgpack.ExtType,
    st.sampled_from([EXT_BIGINT, EXT_DECIMAL, EXT_TUPLE, EXT_EXCEPTION, 1, 2, 99]),
    st.one_of(
        st.binary(max_size=3000),
        st.sampled_from([b"sNaN", b"-sNaN123", b"NaN", b"1e999999999", b"\xc0", b"\x94\x01"]),
    ),
)
field = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.floats(),
        st.text(max_size=20),
        st.binary(max_size=20),
        ext,
        st.sampled_from([HUGE, SNAN, bigint(4299), bigint(4301)]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
plausible = st.tuples(
    st.one_of(st.just(1), field),
    st.one_of(st.sampled_from([1, 2, 3, 4]), field),
    st.one_of(st.integers(0, 10), field),
    st.one_of(st.just("echo"), field),
    st.one_of(st.just("add"), field),
    st.one_of(st.just([1, 2]), field),
    st.one_of(st.just({}), field),
    st.one_of(st.none(), field),
    st.one_of(st.none(), field),
    st.one_of(st.none(), st.integers(0, 1000), field),
).map(list)
bodies = st.one_of(
    plausible.map(msgpack.packb),
    st.lists(field, max_size=12).map(msgpack.packb),
    st.binary(max_size=200),
)


@settings(max_examples=400)
@given(bodies)
def test_decoding_anything_yields_a_request_or_a_protocol_error(body: bytes) -> None:
    for decode in (decode_request, decode_response_fields):
        assert len(refusal(decode, body) or "") < 500  # any other exception fails the test


@settings(max_examples=200)
@given(bodies)
def test_the_fast_decoder_accepts_exactly_the_plain_calls_and_casts(body: bytes) -> None:
    plain = decode_plain(default_codec, body)
    try:
        req = decode_request(default_codec, body)
    except ProtocolError:
        assert plain is None
        return
    if req.kind not in (Kind.CALL, Kind.CAST) or len(default_codec.decode(body)) > 11:
        assert plain is None  # described, got, set, or with fields it ignores: the full path
        return
    assert plain is not None
    assert (plain[3], plain[4], tuple(plain[5]), plain[6], plain[7]) == (
        req.actor, req.method, req.args, req.kwargs, req.version
    )
    assert (plain[8] or {}) == req.context
    assert (plain[2] if req.kind is Kind.CALL else 0) == req.msg_id
    assert [*plain[9:], None, None][:2] == [req.ttl, req.sent]


@pytest.fixture
def bridge() -> Iterator[transport.Bridge]:
    with transport.Bridge("tcp://127.0.0.1:*", log_interval=3600) as served:
        served.expose("echo", Echo.start())
        yield served


def test_a_flood_of_bad_frames_is_counted_and_logged_in_one_line(
    bridge: transport.Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="transport.bridge")
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(bridge.endpoint)
    bad = [
        msgpack.packb([1, 1, HUGE, "echo", "add", [], {}, None, {}]),
        msgpack.packb([SNAN, 1, 1, "echo", "add", [], {}, None, {}]),
        msgpack.packb([1, 2, 0, "echo", "add", [], {}, None, {}, "ttl"]),
        msgpack.packb([1, 2, 0, "nobody", "add", [], {}, None, {"request_id": HUGE}]),
        b"\xc1",
    ]
    try:
        for i in range(2000):
            sock.send(bad[i % len(bad)])
        # Read in order after the bad frames: once it is answered, all were handled.
        sock.send(msgpack.packb([1, 1, 7, "echo", "add", [1, 2], {}, None, {}]))
        assert sock.poll(int(TIMEOUT * 1000))
        assert msgpack.unpackb(sock.recv()) == [1, 3, 7, 3]
    finally:
        sock.close(linger=0)
    stats = bridge.stats()
    assert stats["malformed"] == 1600
    assert stats["unknown_actor_cast"] == 400
    records = [r for r in caplog.records if r.name == "transport.bridge"]
    assert not [r for r in records if r.exc_info or r.levelno >= logging.ERROR]
    refusals = [r for r in records if "bridge serving" not in r.getMessage()]
    assert len(refusals) == 1  # the first; the rest wait for the summary line


def test_the_method_and_version_caches_are_bounded(bridge: transport.Bridge) -> None:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(bridge.endpoint)
    try:
        for i in range(6000):
            sock.send(msgpack.packb([1, 2, 0, "echo", f"made_up_{i}", [], {}, f"1.{i}", {}]))
            sock.send(msgpack.packb([1, 2, 0, "echo", f"made_up_{i}", [], {}, None, {}]))
        sock.send(msgpack.packb([1, 1, 7, "echo", "add", [1, 2], {}, None, {}]))
        assert sock.poll(int(TIMEOUT * 1000))
        assert msgpack.unpackb(sock.recv()) == [1, 3, 7, 3]
    finally:
        sock.close(linger=0)
    assert _callable_cached.cache_info().currsize <= 4096
    assert _version_ok.cache_info().currsize <= 4096
    assert bridge.stats()["no_such_method_cast"] >= 6000


@pytest.mark.parametrize(
    "fields",
    [
        [HUGE, "builtins", "ValueError", "m", [], ""],
        ["remote", "builtins", "ValueError", HUGE, [], ""],
        ["remote", ["builtins"], "ValueError", "m", [], ""],
        ["remote", "builtins", "ValueError", "m", "not a list", ""],
        ["remote", "builtins", "ValueError", "m", [], 7],
    ],
)
def test_error_responses_with_wrong_field_types_are_protocol_errors(fields: list[Any]) -> None:
    # The client formats these fields (str(message)): they must be strings.
    error = refusal(decode_response_fields, msgpack.packb([1, 4, 9, *fields]))
    assert error == "error fields have the wrong types"
    good = msgpack.packb([1, 4, 9, "remote", "builtins", "ValueError", "m", None, None])
    assert decode_response_fields(default_codec, good)[0] == 9


def test_a_flood_of_failing_casts_logs_one_traceback_then_counts(
    bridge: transport.Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="transport.bridge")
    with transport.connect(bridge.endpoint, timeout=TIMEOUT) as conn:
        echo = conn.proxy("echo")
        for i in range(500):
            echo.fail.defer("ValueError", f"bad {i}")
        assert echo.add(1, 2).get(timeout=TIMEOUT) == 3  # after every cast before it
    failures = [r for r in caplog.records if "cast_failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].levelno == logging.ERROR
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], ValueError)
    assert bridge.stats()["cast_failed"] == 500


@pytest.mark.parametrize(
    ("body", "target"),
    [
        (msgpack.packb([1, 2, 0, "echo", "add", [], {}, None, {}]), "echo"),
        (msgpack.packb([1, 2, 0, "e" * 200, "add", [], {}, None, {}, None, 5]), "e" * 200),
        (msgpack.packb([1, 1, 0, "echo", "add", [], {}, None, {}]), None),  # a call
        (msgpack.packb([1, 2, None, "echo", "add", [], {}, None, {}]), None),  # decoded in full
        (msgpack.packb([1, 2, 0, "", "add", [], {}, None, {}]), None),
        (msgpack.packb([1, 2, 0, b"echo", "add", [], {}, None, {}]), None),
        (b"\x99\x01\x02\x00\xa4\xff\xfe\xfd\xfc", None),  # not UTF-8
        (b"\x99\x01\x02\x00\xa4ec", "ec"),  # truncated: the full decode refuses it later
        (b"\x99\x01\x02", None),
    ],
)
def test_the_cast_fast_path_reads_only_what_it_can(body: bytes, target: str | None) -> None:
    assert _cast_target(memoryview(body)) == target
