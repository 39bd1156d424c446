"""The codec: exact round trips (property-tested) and refusals at the sender."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
import zoneinfo
from collections import OrderedDict
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st

import transport
from tests.transport._actors import CustomError
from transport._codec import EXT_TUPLE, MAX_EXT_DEPTH, Codec, default_codec


def same(a: Any, b: Any) -> bool:
    """Equality that also checks types (so a tuple is not a list) and NaN decimals."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, decimal.Decimal):
        return bool(str(a) == str(b))
    if isinstance(a, float) and a != a:
        return bool(b != b)
    if isinstance(a, dt.datetime):
        return bool(
            a == b
            and a.utcoffset() == b.utcoffset()
            and a.replace(tzinfo=None) == b.replace(tzinfo=None)
        )
    return bool(a == b)


offsets = st.integers(min_value=-86399, max_value=86399).map(
    lambda s: dt.timezone(dt.timedelta(seconds=s))
)
aware_datetimes = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=offsets
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.binary(),
    aware_datetimes,
    st.uuids(),
    st.decimals().filter(lambda d: not d.is_snan()),  # refused: see below
)
keys = st.one_of(st.text(), st.integers(), st.booleans(), st.none())
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=30,
)


@given(values)
def test_round_trip_is_exact(value: Any) -> None:
    assert same(default_codec.decode(default_codec.encode(value)), value)


@given(st.tuples(values, values))
def test_tuples_come_back_as_tuples(value: tuple[Any, Any]) -> None:
    decoded = default_codec.decode(default_codec.encode(value))
    assert type(decoded) is tuple
    assert same(decoded, value)


def test_zoneinfo_datetime_keeps_instant_and_offset() -> None:
    when = dt.datetime(2024, 7, 1, 12, 30, 15, 123456, tzinfo=zoneinfo.ZoneInfo("Europe/Oslo"))
    back = default_codec.decode(default_codec.encode(when))
    assert back == when
    assert back.utcoffset() == dt.timedelta(hours=2)
    assert back.tzinfo == dt.timezone(dt.timedelta(hours=2))


def test_big_ints_and_subclasses_travel_as_base_types() -> None:
    class Color(enum.IntEnum):
        RED = 1

    class Name(enum.StrEnum):
        ALICE = "alice"

    value = [2**200, -(2**200), Color.RED, Name.ALICE, OrderedDict(a=1), bytearray(b"ab")]
    back = default_codec.decode(default_codec.encode(value))
    assert back == [2**200, -(2**200), 1, "alice", {"a": 1}, b"ab"]
    assert [type(v) for v in back[2:]] == [int, str, dict, bytes]


def test_exceptions_round_trip_builtins_and_fall_back_to_remote_error() -> None:
    back = default_codec.decode(default_codec.encode([KeyError("k"), ArithmeticError(1, "x")]))
    assert isinstance(back[0], KeyError)
    assert back[0].args == ("k",)
    assert isinstance(back[1], ArithmeticError)
    assert back[1].args == (1, "x")

    class Custom(Exception):
        pass

    odd = default_codec.decode(default_codec.encode(Custom("boom")))
    assert isinstance(odd, transport.RemoteError)
    assert odd.value == "boom"
    assert odd.exc_type.endswith("Custom")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, {"x": [set()]}], "args[1]['x'][0]: cannot encode <class 'set'>"),
        ([object()], "args[0]: cannot encode <class 'object'>"),
        ([[dt.datetime(2024, 1, 1)]], "args[0][0]: cannot encode naive <class 'datetime.dat"),
        ([(1, frozenset())], "args[0][1]: cannot encode <class 'frozenset'>"),
        ([dt.date(2024, 1, 1)], "args[0]: cannot encode <class 'datetime.date'>"),
    ],
)
def test_unsupported_types_fail_at_the_sender_with_their_path(value: Any, message: str) -> None:
    with pytest.raises(TypeError) as info:
        default_codec.encode([value, {}], roots=("args", "kwargs"))
    assert str(info.value).startswith(message)


def test_unsupported_kwarg_names_its_path() -> None:
    with pytest.raises(TypeError, match=r"^kwargs\['when'\]: cannot encode <class 'complex'>"):
        default_codec.encode([[], {"when": 1j}], roots=("args", "kwargs"))


def test_no_pickle_and_unknown_ext_types_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown extension type"):
        default_codec.decode(msgpack.packb(msgpack.ExtType(99, b"")))


def test_tuple_extension_is_a_packed_array() -> None:
    assert default_codec.encode((1, "a")) == msgpack.packb(
        msgpack.ExtType(EXT_TUPLE, msgpack.packb([1, "a"]))
    )


def test_allowed_modules_decode_their_own_exceptions() -> None:
    codec = Codec(frozenset({"tests.transport._actors"}))
    back = codec.decode(default_codec.encode(CustomError("x")))
    assert type(back) is CustomError


def test_uuid_and_decimal_are_exact() -> None:
    value = [uuid.UUID(int=7), decimal.Decimal("-0.00E+3"), decimal.Decimal("NaN")]
    back = default_codec.decode(default_codec.encode(value))
    assert [str(v) for v in back] == [str(v) for v in value]


def test_extension_nesting_is_bounded_on_both_sides() -> None:
    value: Any = ()
    for _ in range(MAX_EXT_DEPTH - 1):
        value = (value,)
    assert default_codec.decode(default_codec.encode(value)) == value  # 32 levels: fine
    with pytest.raises(TypeError, match=r"^args\[0\]\[0\].*nested deeper than 32"):
        default_codec.encode([[(value,)], {}], roots=("args", "kwargs"))
    inner = msgpack.packb([])
    for _ in range(3000):  # would overflow the C stack if the decoder recursed unbounded
        inner = msgpack.packb(msgpack.ExtType(EXT_TUPLE, inner))
    with pytest.raises(ValueError, match="nested deeper"):
        default_codec.decode(inner)


def test_signalling_nan_decimals_are_refused_on_both_sides() -> None:
    # A signalling NaN raises when compared or hashed: receiving one must not be
    # able to break code that merely compares a field.
    with pytest.raises(TypeError, match="signalling-NaN"):
        default_codec.encode([decimal.Decimal("sNaN")])
    forged = msgpack.packb([msgpack.ExtType(3, b"sNaN")])
    with pytest.raises(ValueError, match="signalling-NaN"):
        default_codec.decode(forged)
    assert str(default_codec.decode(msgpack.packb([msgpack.ExtType(3, b"NaN")]))[0]) == "NaN"
