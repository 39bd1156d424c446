"""The client's request bytes: its own packer's and the codec's are the same, errors too."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import transport
from tests.transport.test_codec import values
from transport._codec import default_codec, new_packer
from transport._protocol import MAX_SENT_MS, MAX_TTL_MS, call_body, decode_request, request_body

TIMEOUT = 10.0
names = st.text(min_size=1, max_size=20)
edges = st.sampled_from([-(2**70), -1, 0, 1, MAX_TTL_MS, MAX_TTL_MS + 1, MAX_SENT_MS + 1, 2**70])
millis = st.one_of(st.integers(min_value=-(2**64), max_value=2**64), edges)


@given(
    st.sampled_from([1, 5, 6, 7]),
    st.integers(min_value=0, max_value=2**64 - 1),
    names,
    names,
    st.lists(values, max_size=4).map(tuple),
    st.dictionaries(st.text(max_size=8), values, max_size=3),
    st.one_of(st.none(), st.sampled_from(["1.0", "2.3"])),
    st.dictionaries(st.text(max_size=8), values, max_size=2),
    millis,
    millis,
)
def test_call_body_is_request_body(
    kind: int,
    msg_id: int,
    actor: str,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    version: str | None,
    context: dict[str, Any],
    ttl: int,
    sent: int,
) -> None:
    fields = (kind, msg_id, actor, method, args, kwargs, version, context, ttl, sent)
    pack = new_packer()
    expected = request_body(default_codec, *fields)
    assert call_body(pack, default_codec, *fields) == expected
    assert call_body(pack, default_codec, *fields) == expected  # the packer is reusable
    request = decode_request(default_codec, expected)  # in range, whatever was asked
    assert request.ttl is not None
    assert request.sent is not None
    assert 0 <= request.ttl <= MAX_TTL_MS
    assert 0 <= request.sent <= MAX_SENT_MS


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (({"x": [set()]},), {}, r"^args\[0\]\['x'\]\[0\]: cannot encode <class 'set'>$"),
        ((), {"value": object()}, r"^kwargs\['value'\]: cannot encode"),
        ((1, frozenset()), {}, r"^args\[1\]: cannot encode <class 'frozenset'>$"),
    ],
)
def test_call_body_fails_as_the_codec_does(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    pack = new_packer()
    fields: tuple[Any, ...] = (1, 7, "echo", "echo", args, kwargs, None, {}, 1000, 5)
    with pytest.raises(TypeError, match=message):
        request_body(default_codec, *fields)
    with pytest.raises(TypeError, match=message):
        call_body(pack, default_codec, *fields)
    assert call_body(pack, default_codec, 1, 8, "echo", "echo", (1,), {}, None, {}, 1000, 5) == (
        request_body(default_codec, 1, 8, "echo", "echo", (1,), {}, None, {}, 1000, 5)
    )  # nothing of the failed request is left in the packer


def test_a_large_request_leaves_no_large_packer_behind(local_conn: transport.Connection) -> None:
    conn = local_conn
    echo = conn.proxy("echo")
    small = conn._pack
    assert echo.echo(b"x" * 10).get(timeout=TIMEOUT) == b"x" * 10
    assert conn._pack is small
    assert len(echo.echo(b"x" * 1_500_000).get(timeout=TIMEOUT)) == 1_500_000
    assert conn._pack is not small  # its buffer grew past the limit: replaced
    assert echo.echo(b"y").get(timeout=TIMEOUT) == b"y"
