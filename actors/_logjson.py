"""JSON log lines that carry the request id, trace id and span id.

One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
``message``, ``host``, ``request_id``, ``trace_id`` and ``span_id`` (when a
trace is known), and ``exception`` (the formatted traceback) when there is one.

The ids come from the OpenTelemetry span current in the logging thread when
tracing is on, else from the ``traceparent`` field of the current request
context (see `actors._tracing`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from transport._context import current_context

__all__ = ["JsonFormatter", "trace_ids"]

_TRACEPARENT_LENGTH = 55  # "00-" + 32 hex + "-" + 16 hex + "-" + 2 hex


_trace: Any
try:
    from opentelemetry import trace as _trace
except ImportError:  # the otel extra is optional
    _trace = None


def _otel_ids() -> tuple[str, str] | None:
    if _trace is None:
        return None
    span_context = _trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


def trace_ids() -> tuple[str, str] | None:
    """Return ``(trace_id, span_id)`` in hex for this thread's current work, if known."""
    ids = _otel_ids()
    if ids is not None:
        return ids
    context = current_context()
    parent = context.get("traceparent") if context is not None else None
    if isinstance(parent, str) and len(parent) == _TRACEPARENT_LENGTH:
        _, trace_id, span_id, _ = parent.split("-")
        return trace_id, span_id
    return None


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object.

    Args:
        host: the node's host name, added to every line.
    """

    def __init__(self, host: str = "-") -> None:
        super().__init__()
        self._host = host

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line."""
        context = current_context()
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "host": self._host,
            "request_id": context.request_id if context is not None else None,
        }
        ids = trace_ids()
        if ids is not None:
            line["trace_id"], line["span_id"] = ids
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
