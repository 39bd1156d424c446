"""The transport's error classes and the rebuilding of remote exceptions."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import pykka

__all__ = [
    "ConnectionClosed",
    "InvalidRequest",
    "MessageTooLarge",
    "MessagingError",
    "MessagingTimeout",
    "NoSuchMethod",
    "Overloaded",
    "RemoteError",
    "UnknownActor",
    "UnsupportedVersion",
    "error_from_fields",
    "rebuild_exception",
]


class MessagingError(Exception):
    """Base class of every error raised by the transport itself."""


class MessagingTimeout(MessagingError, pykka.Timeout):
    """A call got no reply before its deadline, or a send could not be queued.

    Whether the remote method ran is unknown (delivery is at-most-once). Also a
    `pykka.Timeout`, so code written against local proxies keeps working. The
    message names the endpoint, actor, method and the time since the call was
    sent; where the connection has a `peer_status` (a `Directory`'s do), a note
    says whether the services table still shows that node up.
    """

    peer_noted = False


class ConnectionClosed(MessagingError):
    """The connection was closed: pending calls fail with this, new ones too."""


class UnknownActor(MessagingError, pykka.ActorDeadError):
    """The bridge serves no live actor under the requested name.

    Also a `pykka.ActorDeadError`, as for a local proxy of a stopped actor.
    """


class NoSuchMethod(MessagingError, AttributeError):
    """The actor has no remotely callable method of that name.

    Private names (leading `_`), pykka's and the lifecycle's internals and
    non-callable attributes all count as missing.
    """


class UnsupportedVersion(MessagingError):
    """The actor cannot serve the RPC version the caller asked for."""


class MessageTooLarge(MessagingError):
    """A message exceeds the configured size limit; it was not sent."""


class Overloaded(MessagingError):
    """Refused at once because a bound was reached; back off and retry later.

    Raised by the client when a connection has too many calls outstanding, and
    by the bridge when the target manager's mailbox is full. The request was
    not run.
    """


class InvalidRequest(MessagingError):
    """The bridge could not make sense of a request (wrong field types, bad values)."""


class RemoteError(MessagingError):
    """A remote exception whose class is not allowed to be re-raised locally.

    Attributes:
        exc_type: the remote exception's class, as `module.QualName`.
        value: the remote exception's message (`str(exc)`).
        traceback: the remote traceback, formatted.
    """

    def __init__(self, exc_type: str, value: str, traceback: str) -> None:
        super().__init__(f"Remote error: {exc_type} {value}")
        self.exc_type = exc_type
        self.value = value
        self.traceback = traceback
        if traceback:
            self.add_note(f"Remote traceback:\n{traceback.rstrip()}")


# Error kinds on the wire (docs/protocol.rst, "Error kinds"), and back.
BRIDGE_ERRORS: dict[str, type[MessagingError]] = {
    "unknown_actor": UnknownActor,
    "no_such_method": NoSuchMethod,
    "unsupported_version": UnsupportedVersion,
    "message_too_large": MessageTooLarge,
    "invalid_request": InvalidRequest,
    "overloaded": Overloaded,
}
ERROR_KINDS: dict[type[MessagingError], str] = {cls: kind for kind, cls in BRIDGE_ERRORS.items()}


def _resolve_class(module: str, qualname: str) -> type[Exception] | None:
    mod = sys.modules.get(module)
    if mod is None:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            return None
    obj: Any = mod
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    if isinstance(obj, type) and issubclass(obj, Exception):
        return obj
    return None


def rebuild_exception(
    *,
    module: str,
    qualname: str,
    message: str,
    args: list[Any] | None,
    traceback: str,
    allowed_modules: frozenset[str],
) -> Exception:
    """Turn a remote exception's description back into an exception.

    Classes from `allowed_modules` (an exact module name match) that derive from
    `Exception` come back as themselves, rebuilt from `args` (or from `message`
    when `args` is missing or does not fit), with the remote traceback attached
    as a note. Anything else becomes a `RemoteError`. Only allow-listed modules
    are ever imported.

    Returns:
        the exception to raise locally.
    """
    if module in allowed_modules:
        cls = _resolve_class(module, qualname)
        if cls is not None:
            exc: Exception | None
            try:
                exc = cls(*args) if args is not None else cls(message)
            except Exception:  # noqa: BLE001 - any constructor may refuse
                try:
                    exc = cls(message)
                except Exception:  # noqa: BLE001
                    exc = None
            if exc is not None:
                if traceback:
                    exc.add_note(f"Remote traceback:\n{traceback.rstrip()}")
                return exc
    exc_type = qualname if module == "builtins" else f"{module}.{qualname}"
    return RemoteError(exc_type, message, traceback)


def error_from_fields(fields: list[Any], allowed_modules: frozenset[str]) -> BaseException:
    """Turn an error body's fields (after `msg_id`) into the exception to raise.

    Returns:
        the rebuilt remote exception, or the refusal's own class.
    """
    kind, module, name, message, args, traceback = fields
    message = str(message)
    if kind == "remote":
        return rebuild_exception(
            module=str(module), qualname=str(name), message=message,
            args=args if isinstance(args, list) else None, traceback=str(traceback or ""),
            allowed_modules=allowed_modules,
        )  # fmt: skip
    return BRIDGE_ERRORS.get(str(kind), MessagingError)(message)
