"""OpenTelemetry spans for calls between nodes, joined by W3C ``traceparent``.

The request context (`transport.RequestContext`) carries a ``traceparent``
field across hosts. With tracing installed (the ``otel`` extra and a tracer
provider configured by the application, e.g. ``opentelemetry-instrument``):

* every outgoing call or cast gets a *client* span, child of the span current
  in the caller, whose id goes out as the message's ``traceparent``; the span
  marks the send (its duration is not the call's latency);
* every call or cast a manager handles runs inside a *server* span, child of
  that ``traceparent``, named ``<topic>.<method>``; so a chain of calls across
  nodes is one trace.

Without tracing installed, a ``traceparent`` that came in still travels on with
every call made while handling it (it is a field of the request context), so
JSON logs on every node of a chain show the same trace id.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pykka.messages import ProxyCall

from transport._context import current_context, set_outgoing_hook

if TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry.trace import TracerProvider

__all__ = ["Tracing", "configured_tracing"]

logger = logging.getLogger(__name__)


class Tracing:
    """Client and server spans through OpenTelemetry's API.

    Args:
        provider: the tracer provider (default: the global one).

    Raises:
        ImportError: opentelemetry-api is not installed (the ``otel`` extra).
    """

    def __init__(self, provider: TracerProvider | None = None) -> None:
        from opentelemetry import trace  # noqa: PLC0415 - an optional dependency
        from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
            TraceContextTextMapPropagator,
        )

        self._tracer = trace.get_tracer("actors", tracer_provider=provider)
        self._propagator = TraceContextTextMapPropagator()
        self._client_kind = trace.SpanKind.CLIENT
        self._server_kind = trace.SpanKind.SERVER

    def install(self) -> None:
        """Give every outgoing message of this process a client span and its ``traceparent``."""
        set_outgoing_hook(self.outgoing)

    @staticmethod
    def uninstall() -> None:
        """Stop adding client spans (server spans follow the probes that hold this object)."""
        set_outgoing_hook(None)

    def outgoing(self, wire: dict[str, Any], actor: str, method: str) -> None:
        """Start and end a client span for one message; put its ``traceparent`` in `wire`."""
        name = f"{actor}.{method}" if actor else "send"
        with self._tracer.start_as_current_span(
            name,
            kind=self._client_kind,
            attributes={"rpc.system": "actors", "rpc.method": method,
                        "actors.request_id": str(wire.get("request_id", ""))},
        ):  # fmt: skip
            self._propagator.inject(wire)

    def server_handler(self, handle: Callable[[Any], Any], topic: str) -> Callable[[Any], Any]:
        """Wrap one message's handler in a server span (to run inside the message's context)."""

        def traced(message: Any) -> Any:
            rc = current_context()
            parent = self._propagator.extract(_carrier(rc.fields)) if rc is not None else None
            method = ".".join(message.attr_path) if isinstance(message, ProxyCall) else "message"
            attributes = {"rpc.system": "actors", "rpc.service": topic, "rpc.method": method}
            if rc is not None:
                attributes["actors.request_id"] = rc.request_id
            with self._tracer.start_as_current_span(
                f"{topic}.{method}", context=parent, kind=self._server_kind, attributes=attributes
            ):
                return handle(message)

        return traced


def _carrier(fields: dict[str, Any]) -> dict[str, str]:
    """The trace-context fields that are strings: a caller may send anything."""
    return {
        key: value
        for key in ("traceparent", "tracestate")
        if isinstance(value := fields.get(key), str)
    }


def configured_tracing() -> Tracing | None:
    """Return a `Tracing` if OpenTelemetry is installed and a tracer provider set, else None."""
    try:
        from opentelemetry import trace  # noqa: PLC0415 - an optional dependency
    except ImportError:
        return None
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return None  # nobody configured an SDK: spans would go nowhere
    return Tracing()
