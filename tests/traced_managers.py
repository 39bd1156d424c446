"""The relay and leaf managers, in a node process whose OpenTelemetry SDK writes spans to a file.

Importing this module (the node does, to load its managers, before it looks for a
tracer provider) installs a provider when ``ACTORS_TEST_SPANS`` names a file: every
finished span becomes one JSON line there.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from tests.observed_managers import Leaf, Relay

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["Leaf", "Relay"]


def span_line(span: ReadableSpan) -> str:
    """One span as a JSON line: name, kind and the ids that chain it to its parent."""
    context = span.get_span_context()
    assert context is not None
    parent = span.parent
    return json.dumps({
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_id": f"{parent.span_id:016x}" if parent is not None else None,
    }) + "\n"


_path = os.environ.get("ACTORS_TEST_SPANS")
if _path:
    _provider = TracerProvider()
    _out = open(_path, "a", encoding="utf-8", buffering=1)  # open for the process's life
    _exporter = ConsoleSpanExporter(out=_out, formatter=span_line)
    _provider.add_span_processor(SimpleSpanProcessor(_exporter))
    trace.set_tracer_provider(_provider)
