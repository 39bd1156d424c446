"""msgpack with extension types for what managers exchange; never pickle.

What travels (and how it comes back):

- `None`, `bool`, `int` (any size), `float`, `str`, `bytes`, `list`, `dict`:
  native msgpack (ints beyond 64 bits use an extension type). `bytearray` and
  `memoryview` come back as `bytes`.
- `tuple`: an extension type, so a tuple comes back as a tuple (named tuples come
  back as plain tuples).
- timezone-aware `datetime.datetime`: comes back equal, with the same wall time
  and UTC offset, its `tzinfo` a fixed-offset `datetime.timezone`. Naive
  datetimes are refused (attach a `tzinfo`; there is no implicit "local time").
- `uuid.UUID`, `decimal.Decimal` (exact, including quiet NaN and exponents;
  a signalling NaN is refused on both sides: it raises when compared).
- exceptions (instances of `Exception`): come back as their own class when their
  module is allow-listed (builtins always), otherwise as `RemoteError`.
- subclasses of `str`, `int`, `float`, `bytes`, `list` and `dict` (enums,
  `OrderedDict`, ...) travel as their base type.

Tuples (and exceptions) may nest inside one another at most `MAX_EXT_DEPTH`
(32) deep; deeper values are refused on both sides (the decoder would otherwise
recurse through the C unpacker without bound).

Anything else (sets, dates without time, objects, ...) is refused at the sender
with a `TypeError` naming the offending type and its path, e.g.
``args[1]['x'][0]: cannot encode <class 'set'>``.
"""

from __future__ import annotations

import datetime as dt
import struct
import threading
import traceback as tb_module
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type information

from transport._errors import rebuild_exception

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "EXT_BIGINT",
    "EXT_DATETIME",
    "EXT_DECIMAL",
    "EXT_EXCEPTION",
    "EXT_TUPLE",
    "EXT_UUID",
    "MAX_EXT_DEPTH",
    "Codec",
    "default_codec",
    "describe_exception",
]

EXT_DATETIME = 1
EXT_UUID = 2
EXT_DECIMAL = 3
EXT_TUPLE = 4
EXT_EXCEPTION = 5
EXT_BIGINT = 6

_DATETIME = struct.Struct(">qIi")
_EPOCH = dt.datetime(1970, 1, 1)  # naive on purpose: wall-time arithmetic
_DAY = 86400
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
MAX_EXT_DEPTH = 32
_nesting = threading.local()


def _pack(obj: Any) -> bytes:
    data: bytes = msgpack.packb(obj, default=_default, strict_types=True, use_bin_type=True)
    return data


_packers = threading.local()
_THREAD_BUF_SIZE = 256 * 1024  # msgpack's default
_PACKER_KEEP_LIMIT = 1 << 20


def _thread_packer() -> Any:
    """Return the calling thread's top-level packer (a `msgpack.Packer` is not thread-safe).

    Only `Codec.encode` uses it; extension values nested inside a message are
    packed by `_pack`, so the packer is never re-entered. `msgpack.packb` would
    build a packer, with its buffer, for every message.
    """
    pack = _packers.pack = new_packer(_THREAD_BUF_SIZE)
    return pack


def new_packer(buf_size: int = 4096) -> Callable[[Any], bytes]:
    """A fresh packer's `pack`: `Codec.encode`'s encoding, for one thread at a time.

    `buf_size` is its buffer's first size; the buffer grows with what it
    packs and never shrinks (drop a packer that packed something large).
    """
    packer = msgpack.Packer(
        default=_default, strict_types=True, use_bin_type=True, buf_size=buf_size
    )
    pack: Callable[[Any], bytes] = packer.pack
    return pack


def _pack_nested(obj: Any) -> bytes:
    depth: int = getattr(_nesting, "depth", 0)
    if depth >= MAX_EXT_DEPTH:
        raise TypeError(f"cannot encode: extension values nested deeper than {MAX_EXT_DEPTH}")
    _nesting.depth = depth + 1
    try:
        return _pack(obj)
    finally:
        _nesting.depth = depth


def describe_exception(exc: BaseException) -> tuple[str, str, str, list[Any] | None]:
    """Return an exception's module, qualified class name, message and args.

    `args` is `None` when the codec cannot carry them.

    Returns:
        `(module, qualname, message, args)`.
    """
    cls = type(exc)
    args: list[Any] | None = list(exc.args)
    try:
        _pack(args)
    except (TypeError, ValueError, OverflowError):
        args = None
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the reply
        message = repr(exc.args)
    return cls.__module__, cls.__qualname__, message, args


def _encode_datetime(obj: dt.datetime) -> msgpack.ExtType:
    offset = obj.utcoffset()
    if offset is None:
        msg = f"cannot encode naive {type(obj)!r} (attach a tzinfo)"
        raise TypeError(msg)
    if offset.microseconds:
        msg = f"cannot encode {type(obj)!r} with a sub-second UTC offset"
        raise TypeError(msg)
    wall = obj.replace(tzinfo=None) - _EPOCH
    offset_s = offset.days * _DAY + offset.seconds
    utc_s = wall.days * _DAY + wall.seconds - offset_s
    return msgpack.ExtType(EXT_DATETIME, _DATETIME.pack(utc_s, obj.microsecond, offset_s))


def _default(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return msgpack.ExtType(EXT_TUPLE, _pack_nested(list(obj)))
    if isinstance(obj, dt.datetime):
        return _encode_datetime(obj)
    if isinstance(obj, UUID):
        return msgpack.ExtType(EXT_UUID, obj.bytes)
    if isinstance(obj, Decimal):
        if obj.is_snan():
            raise TypeError("cannot encode a signalling-NaN Decimal")
        return msgpack.ExtType(EXT_DECIMAL, str(obj).encode("ascii"))
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        value = int(obj)
        if _INT_MIN <= value <= _INT_MAX:
            return value
        size = (value.bit_length() + 8) // 8
        return msgpack.ExtType(EXT_BIGINT, value.to_bytes(size, "big", signed=True))
    if isinstance(obj, str):
        return str.__str__(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj)
    if isinstance(obj, dict):
        return dict(obj)
    if isinstance(obj, list):
        return list(obj)
    if isinstance(obj, Exception):
        module, qualname, message, args = describe_exception(obj)
        return msgpack.ExtType(EXT_EXCEPTION, _pack_nested([module, qualname, message, args]))
    msg = f"cannot encode {type(obj)!r}"
    raise TypeError(msg)


_NATIVE = (type(None), bool, int, float, str, bytes, bytearray, memoryview)


def _find_unencodable(
    obj: Any, path: str, depth: int = 0, ext_depth: int = 0
) -> tuple[str, str] | None:
    """Find the first value the codec refuses: `(path, reason)`, or None."""
    if depth > 500:
        return path, "nested too deeply"
    if isinstance(obj, tuple):
        if ext_depth >= MAX_EXT_DEPTH:
            return path, f"cannot encode: extension values nested deeper than {MAX_EXT_DEPTH}"
        ext_depth += 1
    if isinstance(obj, dict):
        for key, value in obj.items():
            found = _find_unencodable(key, f"{path} key {key!r}", depth + 1, ext_depth) or (
                _find_unencodable(value, f"{path}[{key!r}]", depth + 1, ext_depth)
            )
            if found:
                return found
        return None
    if isinstance(obj, list | tuple):
        for index, value in enumerate(obj):
            found = _find_unencodable(value, f"{path}[{index}]", depth + 1, ext_depth)
            if found:
                return found
        return None
    if isinstance(obj, _NATIVE):
        return None
    try:
        _default(obj)
    except TypeError as exc:
        return path, str(exc)
    return None


class Codec:
    """Encoder and decoder of message bodies.

    Args:
        allowed_exception_modules: modules whose exceptions are decoded as their
            own class (besides builtins); other exceptions decode as
            `RemoteError`.
    """

    def __init__(self, allowed_exception_modules: frozenset[str] = frozenset()) -> None:
        self.allowed_exception_modules = frozenset({"builtins", *allowed_exception_modules})
        # One hook per nesting depth of extension values: the bound on recursion.
        self._ext_hooks = [self._make_ext_hook(depth) for depth in range(MAX_EXT_DEPTH + 1)]

    def encode(self, obj: Any, *, roots: tuple[str, ...] = ()) -> bytes:
        """Encode `obj`.

        Args:
            obj: the value to encode.
            roots: names of `obj`'s items, used in error messages when `obj` is
                a list of separately named parts (`("args", "kwargs")`). Without
                it the root is called `value`.

        Raises:
            TypeError: when a value cannot be encoded; the message names its path
                and type.

        Returns:
            the msgpack bytes.
        """
        try:
            try:
                pack = _packers.pack
            except AttributeError:
                pack = _thread_packer()
            data: bytes = pack(obj)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            found: tuple[str, str] | None = None
            if roots and isinstance(obj, list):
                for name, part in zip(roots, obj, strict=False):
                    found = _find_unencodable(part, name)
                    if found:
                        break
            else:
                found = _find_unencodable(obj, "value")
            if found is None:
                raise TypeError(f"cannot encode: {exc}") from exc
            path, reason = found
            raise TypeError(f"{path}: {reason}") from None
        if len(data) > _PACKER_KEEP_LIMIT:  # the packer's buffer grew to this size: drop it
            del _packers.pack
        return data

    def decode(self, data: bytes | memoryview) -> Any:
        """Decode one message body.

        Raises:
            ValueError: (or another `Exception`) when `data` is not valid.

        Returns:
            the decoded value.
        """
        return msgpack.unpackb(  # depth 0 inline: this is every message's path
            data, raw=False, ext_hook=self._ext_hooks[0], strict_map_key=False, use_list=True
        )

    def _decode(self, data: bytes | memoryview, depth: int) -> Any:
        if depth > MAX_EXT_DEPTH:
            raise ValueError(f"extension values nested deeper than {MAX_EXT_DEPTH}")
        return msgpack.unpackb(
            data, raw=False, ext_hook=self._ext_hooks[depth], strict_map_key=False, use_list=True
        )

    def _make_ext_hook(self, depth: int) -> Any:
        allowed = self.allowed_exception_modules
        inner = depth + 1

        def ext_hook(code: int, data: bytes) -> Any:
            if code == EXT_TUPLE:
                items = self._decode(data, inner)
                if not isinstance(items, list):
                    raise ValueError("tuple extension must hold an array")
                return tuple(items)
            if code == EXT_DATETIME:
                utc_s, micro, offset_s = _DATETIME.unpack(data)
                if micro >= 1_000_000 or not -_DAY < offset_s < _DAY:
                    raise ValueError("bad datetime extension")
                tz = dt.timezone(dt.timedelta(seconds=offset_s))
                wall = _EPOCH + dt.timedelta(seconds=utc_s + offset_s, microseconds=micro)
                return wall.replace(tzinfo=tz)
            if code == EXT_UUID:
                return UUID(bytes=data)
            if code == EXT_DECIMAL:
                value = Decimal(data.decode("ascii"))
                if value.is_snan():  # it raises when compared or hashed
                    raise ValueError("signalling-NaN Decimal")
                return value
            if code == EXT_BIGINT:
                return int.from_bytes(data, "big", signed=True)
            if code == EXT_EXCEPTION:
                module, qualname, message, args = self._decode(data, inner)
                return rebuild_exception(
                    module=str(module),
                    qualname=str(qualname),
                    message=str(message),
                    args=args if isinstance(args, list) else None,
                    traceback="",
                    allowed_modules=allowed,
                )
            raise ValueError(f"unknown extension type {code}")

        return ext_hook


default_codec = Codec()


def format_traceback(exc: BaseException) -> str:
    """Return the formatted traceback of `exc` (as `traceback.format_exception`)."""
    return "".join(tb_module.format_exception(exc))
