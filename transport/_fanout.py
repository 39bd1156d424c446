"""Fan-out: one cast to many bridges."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from transport._codec import default_codec
from transport._connection import Connection, connect
from transport._context import wire_context
from transport._errors import ConnectionClosed, MessageTooLarge, MessagingTimeout
from transport._protocol import Kind, encode_request

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["fanout_cast"]

logger = logging.getLogger("transport.client")


def fanout_cast(
    targets: Iterable[Connection | str],
    name: str,
    method: str,
    /,
    *args: Any,
    **kwargs: Any,
) -> None:
    """Cast `name.method(*args, **kwargs)` to every target: one message each.

    Endpoint strings get a temporary plain connection, closed with a one-second
    linger so the cast still goes out; each is a new sender, so two fan-outs to
    the same endpoint string are not ordered. Pass connections to keep order
    (and for CURVE). A target
    that cannot take the message is logged and skipped (a fan-out is
    at-most-once, like a cast).

    Raises:
        TypeError: an argument cannot be encoded (nothing was sent).
        MessageTooLarge: the message exceeds a target's limit (nothing was sent
            to that target).
    """
    context = wire_context(name, method)
    body = encode_request(
        default_codec, kind=Kind.CAST, msg_id=0, actor=name, method=method, args=args,
        kwargs=kwargs, version=None, context=context,
    )  # fmt: skip
    for target in targets:
        conn = connect(target) if isinstance(target, str) else target
        try:
            if len(body) > conn.max_message_size:
                raise MessageTooLarge(
                    f"{name}.{method}: message of {len(body)} bytes exceeds the limit of "
                    f"{conn.max_message_size}"
                )
            conn._send(body, time.monotonic() + conn.timeout)
        except (MessagingTimeout, ConnectionClosed) as exc:
            logger.warning(
                "fan-out cast %s.%s to %s not sent: %s", name, method, conn.endpoint, exc
            )
        finally:
            if isinstance(target, str):
                conn.close(linger=1.0)
