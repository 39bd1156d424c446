"""The wire protocol in code; docs/protocol.rst is the normative text.

Frames: a client's DEALER (or REQ) socket sends zero or more routing frames
(a REQ socket adds one empty frame) and then exactly one body frame; the
bridge's ROUTER socket sees the peer identity first. A reply echoes every frame
before the body, then its own body. Bodies are msgpack arrays:

- request: ``[1, kind, msg_id, actor, method, args, kwargs, rpc_version, context, ttl?, sent?]``
  with kind CALL (1), CAST (2), DESCRIBE (5), GET (6) or SET (7), an optional
  time-to-live in milliseconds and the sender's monotonic clock when it sent
  the request (milliseconds);
- reply: ``[1, 3, msg_id, result]``;
- error: ``[1, 4, msg_id, error_kind, exc_module, exc_name, message, exc_args, traceback]``.
"""

from __future__ import annotations

import enum
import reprlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from transport._codec import Codec

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_MSG_ID",
    "MAX_NAME_LENGTH",
    "MAX_ROUTING_FRAMES",
    "MAX_TTL_MS",
    "PROTOCOL_VERSION",
    "Kind",
    "ProtocolError",
    "Request",
    "brief",
    "call_body",
    "decode_plain",
    "decode_request",
    "decode_response_fields",
    "encode_error",
    "encode_reply",
    "encode_request",
    "parse_version",
    "request_body",
    "version_is_compatible",
]

PROTOCOL_VERSION = 1
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024
MAX_ROUTING_FRAMES = 8
MAX_NAME_LENGTH = 255
MAX_MSG_ID = 2**64 - 1
MAX_TTL_MS = 2**32 - 1
MAX_SENT_MS = 2**63 - 1
_REQUEST_FIELDS = 9
_RESPONSE_FIELDS = {3: 4, 4: 9}
_CAST = 2
_REPLY = 3
_REQUEST_ROOTS = ("protocol", "kind", "msg_id", "actor", "method", "args", "kwargs", "rpc_version",
                  "context")  # fmt: skip


class Kind(enum.IntEnum):
    """The message kinds (envelope field 1)."""

    CALL = 1
    CAST = 2
    REPLY = 3
    ERROR = 4
    DESCRIBE = 5
    """Ask what the actor exposes; ``method`` is ``"*"``; the reply's result is a map."""
    GET = 6
    """Read the attribute named by ``method`` inside the actor's mailbox."""
    SET = 7
    """Set the attribute named by ``method`` to ``args[0]`` inside the actor's mailbox."""


# The request kinds that are answered (all but CAST), by their wire value.
_ANSWERED = {int(k): k for k in (Kind.CALL, Kind.DESCRIBE, Kind.GET, Kind.SET)}


@dataclass(slots=True)
class Request:
    """A decoded call or cast."""

    kind: Kind
    msg_id: int
    actor: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    version: str | None
    context: dict[str, Any]
    ttl: int | None = None
    """Milliseconds the caller still waits, counted from receipt; None: no limit."""
    sent: int | None = None
    """The sender's monotonic clock when it sent this, in milliseconds (with `ttl`)."""


_BRIEF = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxstring, _BRIEF.maxother, _BRIEF.maxlist, _BRIEF.maxdict = 2, 40, 40, 4, 4


def brief(value: Any) -> str:
    """A short description of a received value for an error message; never raises.

    Sender-chosen values may not format at all (integers beyond Python's 4,300
    digit limit) or cost much to format (long strings, deep containers).
    """
    if type(value) is int and value.bit_length() > 64:
        return f"<int of {value.bit_length()} bits>"
    try:
        return _BRIEF.repr(value)
    except Exception:  # noqa: BLE001 - anything a sender made that does not format
        return f"<{type(value).__name__}>"


class ProtocolError(ValueError):
    """A body that does not follow the protocol; `msg_id` when one could be read."""

    def __init__(self, message: str, msg_id: int | None = None) -> None:
        super().__init__(message)
        self.msg_id = msg_id


_ENCODED_ROOTS = ("version", "kind", "msg_id", "actor", "method", "args", "kwargs",
                  "rpc_version", "context", "ttl", "sent")  # fmt: skip


def encode_request(
    codec: Codec,
    *,
    kind: Kind,
    msg_id: int,
    actor: str,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    version: str | None,
    context: dict[str, Any],
    ttl: int | None = None,
    sent: int | None = None,
) -> bytes:
    """Encode a call or cast body.

    `ttl` is how many milliseconds the caller still waits for the result (the
    bridge does not start the request after that); `sent` is the sender's
    monotonic clock now, in milliseconds, which lets the bridge tell how long
    the request spent in transit (docs/protocol.rst, "Deadlines"). Without
    them the body has the 9 fields of older clients.

    Raises:
        TypeError: an argument (or context field) cannot be encoded; the message
            names its path (`args[1]['x']: cannot encode <class 'set'>`).

    Returns:
        the body frame.
    """
    return request_body(
        codec, kind, msg_id, actor, method, args, kwargs, version, context, ttl, sent
    )


def request_body(  # noqa: PLR0917 - the client's hot path: positional, one frame
    codec: Codec,
    kind: int,
    msg_id: int,
    actor: str,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    version: str | None,
    context: dict[str, Any],
    ttl: int | None,
    sent: int | None,
) -> bytes:
    """`encode_request` with positional arguments (what the clients call per message)."""
    if type(kind) is not int:
        kind = int(kind)  # msgpack's strict types would send an IntEnum through its hook
    body = [PROTOCOL_VERSION, kind, msg_id, actor, method, list(args), kwargs, version, context]
    if sent is not None:  # a call: both, in range (a clamp only when not: no call per message)
        body += (
            ttl if type(ttl) is int and 0 <= ttl <= MAX_TTL_MS else _clamp(ttl, MAX_TTL_MS),
            sent if type(sent) is int and 0 <= sent <= MAX_SENT_MS else _clamp(sent, MAX_SENT_MS),
        )
    elif ttl is not None:
        body.append(_clamp(ttl, MAX_TTL_MS))
    return codec.encode(body, roots=_ENCODED_ROOTS)


def call_body(  # noqa: PLR0917 - the client's hot path: positional, one frame
    pack: Callable[[Any], bytes],
    codec: Codec,
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
) -> bytes:
    """`request_body` of a request with a deadline, packed by `pack` (from `new_packer`).

    The same bytes, for a caller that owns a packer (no per-thread lookup):
    `kind` a plain int, `ttl` and `sent` ints. What cannot be encoded raises
    `codec.encode`'s error, which names the part.
    """
    body = [
        PROTOCOL_VERSION, kind, msg_id, actor, method, list(args), kwargs, version, context,
        ttl if 0 <= ttl <= MAX_TTL_MS else _clamp(ttl, MAX_TTL_MS),
        sent if 0 <= sent <= MAX_SENT_MS else _clamp(sent, MAX_SENT_MS),
    ]  # fmt: skip
    try:
        return pack(body)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return codec.encode(body, roots=_ENCODED_ROOTS)


def _clamp(value: int | None, top: int) -> int | None:
    return None if value is None else min(max(int(value), 0), top)


def encode_reply(codec: Codec, msg_id: int, result: Any) -> bytes:
    """Encode a reply body.

    Raises:
        TypeError: the result cannot be encoded.

    Returns:
        the body frame.
    """
    return codec.encode(
        [PROTOCOL_VERSION, int(Kind.REPLY), msg_id, result],
        roots=("version", "kind", "msg_id", "result"),
    )


def encode_error(
    codec: Codec,
    msg_id: int,
    *,
    error_kind: str,
    exc_module: str,
    exc_name: str,
    message: str,
    exc_args: list[Any] | None,
    traceback: str,
) -> bytes:
    """Encode an error body (`exc_args` must already be known to be encodable).

    Returns:
        the body frame.
    """
    return codec.encode(
        [
            PROTOCOL_VERSION,
            int(Kind.ERROR),
            msg_id,
            error_kind,
            exc_module,
            exc_name,
            message,
            exc_args,
            traceback,
        ]
    )


def _is_msg_id(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_MSG_ID


def decode_request(codec: Codec, body: bytes | memoryview) -> Request:
    """Decode and validate a call or cast body.

    Raises:
        ProtocolError: the body is not a valid request; its `msg_id` is set when
            the body is a call whose id could be read (the bridge then answers
            with an `invalid_request` error; otherwise it drops the message).

    Returns:
        the request.
    """
    try:
        msg = codec.decode(body)
    except Exception as exc:  # noqa: BLE001 - any decoding failure means a bad body
        raise ProtocolError(f"undecodable body: {brief(exc)}") from None
    # Type checks come before comparisons: a received value may not compare at
    # all (a signalling-NaN Decimal raises) or format (a huge integer).
    if type(msg) is not list or len(msg) < _REQUEST_FIELDS:
        raise ProtocolError("body is not an array of 9 elements")
    version, kind, msg_id, actor, method, args, kwargs, rpc_version, context = msg[:_REQUEST_FIELDS]
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {brief(version)}")
    answered = _ANSWERED.get(kind) if type(kind) is int else None
    if answered is not None:
        if type(msg_id) is not int or not 0 <= msg_id <= MAX_MSG_ID:
            raise ProtocolError(f"bad msg_id {brief(msg_id)}")
        reply_id: int | None = msg_id
    elif type(kind) is int and kind == _CAST:
        reply_id = msg_id = None
    else:
        raise ProtocolError(f"kind {brief(kind)} is not a request")
    if type(actor) is not str or not 0 < len(actor) <= MAX_NAME_LENGTH:
        raise ProtocolError("actor must be a non-empty string", reply_id)
    if type(method) is not str or not 0 < len(method) <= MAX_NAME_LENGTH:
        raise ProtocolError("method must be a non-empty string", reply_id)
    if type(args) is not list:
        raise ProtocolError("args must be an array", reply_id)
    if type(kwargs) is not dict or (kwargs and not _str_keys(kwargs)):
        raise ProtocolError("kwargs must be a map with string keys", reply_id)
    if rpc_version is not None and type(rpc_version) is not str:
        raise ProtocolError("rpc_version must be a string or nil", reply_id)
    if context is None:
        context = {}
    elif type(context) is not dict or not _str_keys(context):
        raise ProtocolError("context must be a map with string keys or nil", reply_id)
    size = len(msg)
    ttl = msg[_REQUEST_FIELDS] if size > _REQUEST_FIELDS else None
    if ttl is not None and (type(ttl) is not int or not 0 <= ttl <= MAX_TTL_MS):
        raise ProtocolError("ttl must be an integer 0..2**32-1 (milliseconds) or nil", reply_id)
    sent = msg[_REQUEST_FIELDS + 1] if size > _REQUEST_FIELDS + 1 else None
    if sent is not None and (type(sent) is not int or not 0 <= sent <= MAX_SENT_MS):
        raise ProtocolError("sent must be an integer 0..2**63-1 (milliseconds) or nil", reply_id)
    return Request(
        answered if answered is not None else Kind.CAST,
        msg_id or 0,
        actor,
        method,
        tuple(args),
        kwargs,
        rpc_version,
        context,
        ttl,
        sent,
    )


def decode_plain(codec: Codec, body: Any) -> list[Any] | None:
    """Decode a plain call or cast body (any buffer), or say it needs `decode_request` (None).

    The server's fast path (transport/_direct.py): one unpack and the same
    checks as `decode_request`, without building a `Request`. It returns the
    decoded array (fields by position: ``msg[1]`` kind, ``msg[2]`` msg_id,
    ``msg[3]`` actor, ``msg[4]`` method, ``msg[5]`` args, ``msg[6]`` kwargs,
    ``msg[7]`` rpc_version, ``msg[8]`` context, then ttl and sent if present)
    only when `decode_request` would return a CALL or CAST request with the
    same fields; anything else (other kinds, a bad field, an undecodable body)
    gives None, and `decode_request` then says what is wrong.

    Returns:
        the decoded array, or None.
    """
    try:
        msg = codec.decode(body)
    except Exception:  # noqa: BLE001 - decode_request names the failure
        return None
    # `__class__ is int` before any comparison: a received value may not compare.
    if msg.__class__ is not list:
        return None
    size = len(msg)
    if size < _REQUEST_FIELDS or size > _REQUEST_FIELDS + 2:
        return None
    version, kind, msg_id, actor, method, args, kwargs, rpc_version, context = msg[:9]
    if (
        version.__class__ is not int
        or version != PROTOCOL_VERSION
        or kind.__class__ is not int
        or (
            kind != _CAST
            and (kind != 1 or msg_id.__class__ is not int or not 0 <= msg_id <= MAX_MSG_ID)
        )
        or actor.__class__ is not str
        or not 0 < len(actor) <= MAX_NAME_LENGTH
        or method.__class__ is not str
        or not 0 < len(method) <= MAX_NAME_LENGTH
        or args.__class__ is not list
        or kwargs.__class__ is not dict
        or (kwargs and not _str_keys(kwargs))
        or (rpc_version is not None and rpc_version.__class__ is not str)
        or (
            context is not None
            and (
                context.__class__ is not dict
                # a request id alone (the common context) has string keys
                or (
                    context
                    and not (len(context) == 1 and "request_id" in context)
                    and not _str_keys(context)
                )
            )
        )
    ):
        return None
    if size > _REQUEST_FIELDS:
        ttl = msg[_REQUEST_FIELDS]
        if ttl is not None and (ttl.__class__ is not int or not 0 <= ttl <= MAX_TTL_MS):
            return None
        if size > _REQUEST_FIELDS + 1:
            sent = msg[_REQUEST_FIELDS + 1]
            if sent is not None and (sent.__class__ is not int or not 0 <= sent <= MAX_SENT_MS):
                return None
    return msg


def _str_keys(mapping: dict[Any, Any]) -> bool:
    for key in mapping:  # noqa: SIM110 - a loop, not a generator: hot path
        if type(key) is not str:
            return False
    return True


def decode_response_fields(codec: Codec, body: bytes) -> tuple[int, bool, list[Any]]:
    """Decode a reply or error body into `(msg_id, is_reply, fields)` (the client's hot path).

    `fields` holds the elements after `msg_id`: `[result]` for a reply, the six
    error fields for an error.

    Raises:
        ProtocolError: the body is not a valid response.
    """
    try:
        msg = codec.decode(body)
    except Exception as exc:  # noqa: BLE001
        raise ProtocolError(f"undecodable body: {brief(exc)}") from None
    if type(msg) is list and len(msg) == 4:  # a reply, most likely: checked in one go
        version, kind, msg_id, result = msg
        if (
            type(version) is int
            and version == PROTOCOL_VERSION
            and type(kind) is int
            and kind == _REPLY
            and type(msg_id) is int
            and 0 <= msg_id <= MAX_MSG_ID
        ):
            return msg_id, True, [result]
    if (
        type(msg) is not list
        or len(msg) < 4
        or type(msg[0]) is not int
        or msg[0] != PROTOCOL_VERSION
    ):
        raise ProtocolError("body is not a protocol 1 response")
    kind, msg_id = msg[1], msg[2]
    size = _RESPONSE_FIELDS.get(kind) if type(kind) is int else None
    if size is None or type(msg_id) is not int or not 0 <= msg_id <= MAX_MSG_ID:
        raise ProtocolError(f"bad response kind or id: {brief(kind)}, {brief(msg_id)}")
    if len(msg) < size:
        raise ProtocolError("response too short")
    fields = msg[3:size]
    if kind != _REPLY:
        error_kind, module, name, message, args, traceback = fields
        if (
            type(error_kind) is not str
            or type(module) is not str
            or type(name) is not str
            or type(message) is not str
            or (args is not None and type(args) is not list)
            or (traceback is not None and type(traceback) is not str)
        ):
            raise ProtocolError("error fields have the wrong types")
    return msg_id, kind == _REPLY, fields


def parse_version(version: str) -> tuple[int, int]:
    """Parse an RPC version "major.minor" (a bare "major" means "major.0").

    Raises:
        ValueError: not a version.

    Returns:
        `(major, minor)`.
    """
    parts = version.split(".")
    if len(parts) > 2 or not all(p.isdigit() and p.isascii() for p in parts):
        raise ValueError(f"bad RPC version {version!r}")
    return int(parts[0]), int(parts[1]) if len(parts) == 2 else 0


def version_is_compatible(implemented: str, requested: str) -> bool:
    """Tell whether an actor implementing `implemented` can serve `requested`.

    Same major version and a requested minor no higher than the implemented one.

    Returns:
        whether the request can be served (False for malformed versions).
    """
    try:
        imp_major, imp_minor = parse_version(implemented)
        req_major, req_minor = parse_version(requested)
    except ValueError:
        return False
    return imp_major == req_major and req_minor <= imp_minor
