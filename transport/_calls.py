"""The I/O-free part of a client call, shared by every client of a bridge.

`Connection` (threads), `AsyncConnection` (asyncio) and the simulator's
connection (`actors.testing`) differ in how they send, wait and read; what a
request is, when one is refused and what a description allows is the same
for all of them, and is said once here.  Nothing in this module touches a
socket, a lock, a clock other than `time.monotonic` (the request's send
time) or a logger: each function gives the same answer for the same
arguments, so the clients agree by construction.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from transport._context import wire_context
from transport._errors import MessageTooLarge, Overloaded, UnsupportedVersion, error_from_fields
from transport._protocol import (
    decode_response_fields,
    request_body,
    version_is_compatible,
)
from transport._proxy import Description

if TYPE_CHECKING:
    from collections.abc import Callable

    from transport._codec import Codec


def encode_call(  # noqa: PLR0917 - private, hot path
    codec: Codec,
    max_message_size: int,
    kind: int,
    msg_id: int,
    actor: str,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    version: str | None,
    ttl: int | None = None,
    sent: int | None = None,
) -> bytes:
    """The request's bytes, stamped with its send time when it has a `ttl`.

    `sent` is that time (`time.monotonic()` in milliseconds) when the caller
    has just read the clock; it is read here otherwise.

    Raises:
        MessageTooLarge: it exceeds `max_message_size` (nothing is sent).
    """
    if ttl is not None and sent is None:
        sent = int(time.monotonic() * 1000)
    body = request_body(
        codec, kind, msg_id, actor, method, args, kwargs, version, wire_context(actor, method),
        ttl, sent,
    )  # fmt: skip
    if len(body) > max_message_size:
        raise too_large(actor, method, len(body), max_message_size)
    return body


def too_large(actor: str, method: str, size: int, max_message_size: int) -> MessageTooLarge:
    """The error for a request of `size` bytes over `max_message_size` (to raise)."""
    return MessageTooLarge(
        f"{actor}.{method}: message of {size} bytes exceeds the limit of {max_message_size}"
    )


def overloaded(
    actor: str, method: str, pending: int, endpoint: str, max_pending: int
) -> Overloaded:
    """The error for a call refused because `pending` calls already wait (to raise)."""
    return Overloaded(
        f"{actor}.{method}: {pending} calls already pending on the "
        f"connection to {endpoint} (max_pending={max_pending})"
    )


def outcome(
    codec: Codec, body: bytes, allowed: frozenset[str]
) -> tuple[int, Any, BaseException | None]:
    """A response as `(msg_id, value, None)` for a reply, `(msg_id, None, error)` for an error.

    The error is the exception the caller gets (modules outside `allowed`
    come back as `RemoteError`).

    Raises:
        ProtocolError: `body` is not a response.
    """
    msg_id, is_reply, fields = decode_response_fields(codec, body)
    if is_reply:
        return msg_id, fields[0], None
    return msg_id, None, error_from_fields(fields, allowed)


def described(
    cache: dict[str, Description],
    name: str,
    fetch: Callable[[], Any],
    *,
    fresh: bool = False,
) -> Description:
    """`name`'s description from `cache`, or from the reply `fetch()` returns (then cached)."""
    description = None if fresh else cache.get(name)
    if description is None:
        description = cache[name] = Description.from_wire(fetch())
    return description


def check_version(name: str, description: Description, version: str | None) -> None:
    """Refuse a proxy asking for an RPC `version` the described actor cannot serve.

    Raises:
        UnsupportedVersion: the versions are not compatible.
    """
    if version is not None and not version_is_compatible(description.rpc_version, version):
        raise UnsupportedVersion(
            f"{name} implements RPC version {description.rpc_version}, cannot serve {version}"
        )
