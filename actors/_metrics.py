"""Prometheus metrics of a node: its managers' mailboxes, handlers, periodic work and bridge.

Nothing here touches prometheus_client on a message's path. Each manager's
`ManagerProbe` (its `mailbox_probe`, set by its service) counts every message
in a plain dict and times one in `SAMPLE` into bucket counts, from the
manager's own thread, the only writer; the bridge's `transport.BridgeTraffic`
bumps plain integers. `NodeCollector` turns both into metric families when
Prometheus scrapes, and `MetricsServer` serves them over HTTP (``[metrics]
bind`` in the node's config).

Why sampled: a cast costs about 11 µs of CPU in all (both threads of the
bridge and the actor), so 3 % is 0.3 µs. Timing every message (two clock
readings, two histograms) measured 0.6-1 µs per message, and
prometheus_client's own labelled ``Histogram.observe`` about 1.5 µs (a lock,
a dict look-up) twice; counting alone costs about 0.15-0.3 µs. ``python
bench/metrics.py`` measures the whole cost with the remote benchmark.

Metrics, labelled ``manager`` (class), ``topic`` and ``host`` (the service's):

* ``actors_mailbox_depth``: messages waiting (gauge, read at scrape time).
* ``actors_mailbox_wait_seconds``: from arrival (bridge request, timer tick)
  to the handler's start (histogram; local proxy calls carry no arrival time).
* ``actors_handler_duration_seconds``: handler time (histogram).

  Both histograms time one message in `SAMPLE` (16), and every timer tick; their
  ``_count`` is of the messages timed. The ``_total`` counters are exact.
* ``actors_calls_total``, ``actors_casts_total``, ``actors_ticks_total``,
  ``actors_handler_errors_total``: messages handled, and those that raised.
* ``actors_periodic_runs_total``, ``actors_periodic_failures_total``: per task
  (label ``task``; names come from the manager's class, so they are bounded).
* ``actors_heartbeat_age_seconds``: since the service's last heartbeat write.
* ``actors_last_tick_age_seconds``: since the manager last ran a timer tick.
* ``actors_manager_up``: 1 while the manager runs; ``actors_manager_restarts_total``.

And for the node's bridge: ``actors_bridge_messages_total`` and
``actors_bridge_bytes_total`` (label ``direction``: ``in``/``out``),
``actors_bridge_refused_total`` (label ``reason``, from `Bridge.stats()`),
``actors_bridge_backlog_replies`` and ``actors_bridge_backlog_bytes``.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from time import perf_counter
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    import contextvars
    import threading
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from wsgiref.simple_server import WSGIServer

    import pykka
    from prometheus_client.metrics_core import Metric

    import transport
    from actors._service import Service
    from actors._tracing import Tracing

__all__ = ["BUCKETS", "SAMPLE", "ManagerProbe", "MetricsServer", "NodeCollector", "parse_bind"]

logger = logging.getLogger(__name__)

BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Upper bounds (seconds) of the histograms' buckets; ``+Inf`` follows."""

_LABELS = ("manager", "topic", "host")
SAMPLE = 16
"""One message in this many is timed (every timer tick is); all are counted."""
_SAMPLE_MASK = SAMPLE - 1  # n & _SAMPLE_MASK is n % SAMPLE (written as a literal on the hot path)


class _Histogram:
    """Bucket counts and a sum: one writer (`ManagerProbe._timed`), read by the scraper."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def cumulative(self) -> list[tuple[str, float]]:
        """The buckets as Prometheus wants them: cumulative, ending with ``+Inf``."""
        counts = list(self.counts)  # one snapshot, so the buckets agree with each other
        out, running = [], 0
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class ManagerProbe:
    """A manager's `mailbox_probe`: counts every message, times one in `SAMPLE`.

    `run` (in the manager's thread, the only writer) counts each message by its
    kind (call, cast or tick, from its reply future's ``message_kind``) and
    times every `SAMPLE`-th message of a kind, and every tick, into the two
    histograms; the scraper reads the numbers. Counts and errors are exact;
    the histograms are a systematic sample.

    The fast path is for the bridge's own reply futures, one class per kind,
    recognised by identity (two comparisons and an integer); any other
    message (a local call or cast, a tick) is counted through a dict.

    Args:
        tracing: when given, every call and cast runs inside a server span.
        label: the span name's prefix (the service's topic).
    """

    def __init__(self, *, tracing: Tracing | None = None, label: str = "") -> None:
        self.errors = 0
        self.handler = _Histogram()
        self.wait = _Histogram()
        self.tasks: dict[str, list[int]] = {}  # name -> [runs, failures]
        self.last_tick: float | None = None  # perf_counter() when the last tick started
        self._tracing = tracing
        self._label = label
        self._call_class: type | None = None  # the bridge's call and cast futures, once seen
        self._cast_class: type | None = None
        self._calls = 0
        self._casts = 0
        self._other: dict[str, int] = {}  # every other message, by kind

    @property
    def counts(self) -> dict[str, int]:
        """Messages handled so far, by kind: ``call``, ``cast`` and ``tick``."""
        other = dict(self._other)
        return {
            "call": self._calls + other.get("call", 0),
            "cast": self._casts + other.get("cast", 0),
            "tick": other.get("tick", 0),
        }

    def run(
        self,
        handle: Callable[[Any], Any],
        message: Any,
        reply_to: pykka.Future[Any] | None,
        context: contextvars.Context | None,
    ) -> Any:
        """Run the handler; count it, and time one message in `SAMPLE`."""
        cls = reply_to.__class__
        if cls is self._cast_class:  # casts first: they come fastest
            n = self._casts = self._casts + 1
        elif cls is self._call_class:
            n = self._calls = self._calls + 1
        else:
            return self._run_other(handle, message, reply_to, context)
        if n & 15:  # n % SAMPLE
            return handle(message) if context is None else context.run(handle, message)
        return self._timed(handle, message, reply_to, context)

    def failed(self) -> None:
        """Count a handler that raised (the mailbox tells)."""
        self.errors += 1

    def _run_other(
        self,
        handle: Callable[[Any], Any],
        message: Any,
        reply_to: pykka.Future[Any] | None,
        context: contextvars.Context | None,
    ) -> Any:
        declared = getattr(reply_to, "message_kind", None)
        if self._tracing is None and declared in ("call", "cast"):  # a bridge future
            if declared == "call" and self._call_class is None:
                self._call_class = reply_to.__class__
                return self.run(handle, message, reply_to, context)
            if declared == "cast" and self._cast_class is None:
                self._cast_class = reply_to.__class__
                return self.run(handle, message, reply_to, context)
        kind = declared or ("cast" if reply_to is None else "call")
        n = self._other[kind] = self._other.get(kind, 0) + 1
        if self._tracing is not None and kind != "tick":
            handle = self._tracing.server_handler(handle, self._label)
        if n & _SAMPLE_MASK and kind != "tick":
            return handle(message) if context is None else context.run(handle, message)
        return self._timed(handle, message, reply_to, context, tick=kind == "tick")

    def _timed(
        self,
        handle: Callable[[Any], Any],
        message: Any,
        reply_to: pykka.Future[Any] | None,
        context: contextvars.Context | None,
        *,
        tick: bool = False,
    ) -> Any:
        start = perf_counter()
        try:
            return handle(message) if context is None else context.run(handle, message)
        finally:
            took = perf_counter() - start  # the two observations inlined: this runs often
            handler = self.handler
            handler.counts[bisect_left(BUCKETS, took)] += 1
            handler.total += took
            queued = getattr(reply_to, "queued_at", None)
            if queued is not None:
                waited = start - queued
                wait = self.wait
                wait.counts[bisect_left(BUCKETS, waited)] += 1
                wait.total += waited
            if tick:
                self.last_tick = start

    def task_ran(self, name: str, *, failed: bool) -> None:
        """Count one run of periodic task `name`."""
        counts = self.tasks.get(name)
        if counts is None:
            counts = self.tasks[name] = [0, 0]
        counts[0] += 1
        if failed:
            counts[1] += 1


class NodeCollector(Collector):
    """Turns a node's probes and bridge counters into metric families at scrape time.

    Args:
        services: returns the services to report (read at each scrape).
        bridge: returns the node's bridge, if any.
    """

    def __init__(
        self,
        services: Callable[[], Iterable[Service]],
        bridge: Callable[[], transport.Bridge | None] = lambda: None,
    ) -> None:
        self._services = services
        self._bridge = bridge

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family (called by prometheus_client on each scrape)."""
        yield from self._manager_metrics()
        bridge = self._bridge()
        if bridge is not None:
            yield from _bridge_metrics(bridge)

    def _manager_metrics(self) -> Iterator[Metric]:
        task_labels = (*_LABELS, "task")
        depth = GaugeMetricFamily(
            "actors_mailbox_depth", "Messages waiting in the manager's mailbox.", labels=_LABELS
        )
        up = GaugeMetricFamily("actors_manager_up", "1 while the manager runs.", labels=_LABELS)
        restarts = CounterMetricFamily(
            "actors_manager_restarts", "Times the service restarted its manager.", labels=_LABELS
        )
        wait = HistogramMetricFamily(
            "actors_mailbox_wait_seconds",
            "Time from a request's or tick's arrival in the mailbox to its handler's start.",
            labels=_LABELS,
        )
        handler = HistogramMetricFamily(
            "actors_handler_duration_seconds", "Time spent in message handlers.", labels=_LABELS
        )
        kinds = {
            kind: CounterMetricFamily(f"actors_{kind}s", f"{what} handled.", labels=_LABELS)
            for kind, what in (("call", "Calls"), ("cast", "Casts"), ("tick", "Timer ticks"))
        }
        errors = CounterMetricFamily(
            "actors_handler_errors", "Messages whose handler raised.", labels=_LABELS
        )
        runs = CounterMetricFamily(
            "actors_periodic_runs", "Periodic task runs.", labels=task_labels
        )
        failures = CounterMetricFamily(
            "actors_periodic_failures", "Periodic task runs that raised.", labels=task_labels
        )
        beat = GaugeMetricFamily(
            "actors_heartbeat_age_seconds",
            "Seconds since the service last wrote its heartbeat.",
            labels=_LABELS,
        )
        tick = GaugeMetricFamily(
            "actors_last_tick_age_seconds",
            "Seconds since the manager last started a timer tick.",
            labels=_LABELS,
        )
        now = perf_counter()
        for service in self._services():
            labels = [service.manager_class.__name__, service.topic, service.host]
            ref = service.manager_ref
            alive = ref is not None and ref.is_alive()
            up.add_metric(labels, 1.0 if alive else 0.0)
            restarts.add_metric(labels, float(service.restarts))
            if ref is not None:
                depth.add_metric(labels, float(ref.actor_inbox.qsize()))  # type: ignore[attr-defined]
            if service.last_heartbeat is not None:
                age = service.clock.monotonic() - service.last_heartbeat
                beat.add_metric(labels, max(age, 0.0))
            probe = service.mailbox_probe
            if not isinstance(probe, ManagerProbe):
                continue
            counts = probe.counts
            for kind, family in kinds.items():
                family.add_metric(labels, float(counts[kind]))
            errors.add_metric(labels, float(probe.errors))
            wait.add_metric(labels, probe.wait.cumulative(), probe.wait.total)
            handler.add_metric(labels, probe.handler.cumulative(), probe.handler.total)
            for name, (ran, failed) in list(probe.tasks.items()):
                runs.add_metric([*labels, name], float(ran))
                failures.add_metric([*labels, name], float(failed))
            if probe.last_tick is not None:
                tick.add_metric(labels, now - probe.last_tick)
        yield from (depth, up, restarts, wait, handler, *kinds.values(), errors, runs, failures)
        yield from (beat, tick)


_NOT_REFUSALS = ("accepted", "backlog", "backlog_bytes")


def _bridge_metrics(bridge: transport.Bridge) -> Iterator[Metric]:
    traffic = bridge.traffic_totals()  # the actors' own sockets included
    messages = CounterMetricFamily(
        "actors_bridge_messages", "Messages through the bridge.", labels=["direction"]
    )
    messages.add_metric(["in"], float(traffic.messages_in))
    messages.add_metric(["out"], float(traffic.messages_out))
    size = CounterMetricFamily(
        "actors_bridge_bytes", "Message body bytes through the bridge.", labels=["direction"]
    )
    size.add_metric(["in"], float(traffic.bytes_in))
    size.add_metric(["out"], float(traffic.bytes_out))
    stats = bridge.stats()
    refused = CounterMetricFamily(
        "actors_bridge_refused", "Requests refused or dropped, by reason.", labels=["reason"]
    )
    for reason, count in sorted(stats.items()):
        if reason not in _NOT_REFUSALS and "." not in reason:  # not mailbox.<name> and such
            refused.add_metric([reason], float(count))
    backlog = GaugeMetricFamily(
        "actors_bridge_backlog_replies", "Replies held for clients that read too slowly."
    )
    backlog.add_metric([], float(stats.get("backlog", 0)))
    backlog_bytes = GaugeMetricFamily(
        "actors_bridge_backlog_bytes", "Bytes of the replies held for slow readers."
    )
    backlog_bytes.add_metric([], float(stats.get("backlog_bytes", 0)))
    yield from (messages, size, refused, backlog, backlog_bytes)


def parse_bind(bind: str) -> tuple[str, int]:
    """Split ``"HOST:PORT"`` (``"[::1]:9464"`` for IPv6; port 0 picks a free one).

    Raises:
        ValueError: not ``HOST:PORT`` with a port in 0..65535.
    """
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        msg = f"expected HOST:PORT, e.g. 127.0.0.1:9464, got {bind!r}"
        raise ValueError(msg)
    return host.strip("[]"), int(port)


class MetricsServer:
    """Serves a collector's metrics (and the process's) over HTTP at ``/metrics``.

    Args:
        bind: ``HOST:PORT`` to listen on (port 0: a free one, see `url`).
        collectors: what to export, besides the process collector.
    """

    def __init__(self, bind: str, collectors: Sequence[Collector]) -> None:
        self._addr, self._port = parse_bind(bind)
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        for collector in collectors:
            self.registry.register(collector)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where the metrics are served (with the actual port once started)."""
        port = self._server.server_port if self._server is not None else self._port
        host = f"[{self._addr}]" if ":" in self._addr else self._addr
        return f"http://{host}:{port}/metrics"

    def start(self) -> None:
        """Listen and serve from a daemon thread."""
        self._server, self._thread = start_http_server(
            self._port, addr=self._addr, registry=self.registry
        )
        logger.info("metrics at %s", self.url)

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop serving and close the socket. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
