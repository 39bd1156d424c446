"""The wire protocol in code; docs/protocol.rst is the normative text.

Frames: a client's DEALER (or REQ) socket sends zero or more routing frames
(a REQ socket adds one empty frame) and then exactly one body frame; the
bridge's ROUTER socket sees the peer identity first. A reply echoes every frame
before the body, then its own body. Bodies are msgpack arrays:

- request: ``[1, kind, msg_id, actor, method, args, kwargs, rpc_version, context]``
  with kind CALL (1), CAST (2), DESCRIBE (5), GET (6) or SET (7);
- reply: ``[1, 3, msg_id, result]``;
- error: ``[1, 4, msg_id, error_kind, exc_module, exc_name, message, exc_args, traceback]``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transport._codec import Codec

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_MSG_ID",
    "MAX_NAME_LENGTH",
    "MAX_ROUTING_FRAMES",
    "PROTOCOL_VERSION",
    "Kind",
    "Request",
    "decode_request",
    "decode_response_fields",
    "encode_error",
    "encode_reply",
    "encode_request",
    "parse_version",
    "version_is_compatible",
]

PROTOCOL_VERSION = 1
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024
MAX_ROUTING_FRAMES = 8
MAX_NAME_LENGTH = 255
MAX_MSG_ID = 2**64 - 1
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


class ProtocolError(ValueError):
    """A body that does not follow the protocol; `msg_id` when one could be read."""

    def __init__(self, message: str, msg_id: int | None = None) -> None:
        super().__init__(message)
        self.msg_id = msg_id


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
) -> bytes:
    """Encode a call or cast body.

    Raises:
        TypeError: an argument (or context field) cannot be encoded; the message
            names its path (`args[1]['x']: cannot encode <class 'set'>`).

    Returns:
        the body frame.
    """
    body = [
        PROTOCOL_VERSION,
        int(kind),
        msg_id,
        actor,
        method,
        list(args),
        kwargs,
        version,
        context,
    ]
    return codec.encode(
        body,
        roots=(
            "version",
            "kind",
            "msg_id",
            "actor",
            "method",
            "args",
            "kwargs",
            "rpc_version",
            "context",
        ),
    )


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
        raise ProtocolError(f"undecodable body: {exc!r}") from None
    if not isinstance(msg, list) or len(msg) < _REQUEST_FIELDS:
        raise ProtocolError("body is not an array of 9 elements")
    version, kind, msg_id, actor, method, args, kwargs, rpc_version, context = msg[:_REQUEST_FIELDS]
    if version != PROTOCOL_VERSION or type(version) is not int:
        raise ProtocolError(f"unsupported protocol version {version!r}")
    answered = _ANSWERED.get(kind) if type(kind) is int else None
    if answered is not None:
        if type(msg_id) is not int or not 0 <= msg_id <= MAX_MSG_ID:
            raise ProtocolError(f"bad msg_id {msg_id!r}")
        reply_id: int | None = msg_id
    elif kind == _CAST and type(kind) is int:
        reply_id = msg_id = None
    else:
        raise ProtocolError(f"kind {kind!r} is not a request")
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
    return Request(
        answered if answered is not None else Kind.CAST,
        msg_id or 0,
        actor,
        method,
        tuple(args),
        kwargs,
        rpc_version,
        context,
    )


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
        raise ProtocolError(f"undecodable body: {exc!r}") from None
    if type(msg) is not list or len(msg) < 4 or msg[0] != PROTOCOL_VERSION:
        raise ProtocolError("body is not a protocol 1 response")
    kind, msg_id = msg[1], msg[2]
    size = _RESPONSE_FIELDS.get(kind) if type(kind) is int else None
    if size is None or type(msg_id) is not int or not 0 <= msg_id <= MAX_MSG_ID:
        raise ProtocolError(f"bad response kind or id: {kind!r}, {msg_id!r}")
    if len(msg) < size:
        raise ProtocolError("response too short")
    return msg_id, kind == _REPLY, msg[3:size]


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
