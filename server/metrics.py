"""What Reppu counts for its operators, in Prometheus's terms (``docs/operations.md``).

The metrics are process-wide objects of ``prometheus-client``, as that library intends: a
counter is a number in this process's memory, and counting costs a dictionary lookup and an
add. With several uvicorn workers, ``reppu serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a
fresh folder before the workers start; each process then keeps its numbers in a small
memory-mapped file there, and a scrape of any worker adds up all of them (:func:`registry`).

Nothing here is counted unless the operator turned metrics on (``REPPU_METRICS_TOKEN``):
without it the app has no request middleware and no ``/metrics`` route, and the few counters
the sync routes bump are plain adds nobody reads.

Labels are chosen so that their values are few and known in advance: a route's path template
(``/people/{person_id:int}``), never the path itself; an error code from the catalogue; a
channel and an outcome from fixed lists. Nothing about a person is ever a label.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from piccolo.engine.base import Engine
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)

from schemas.sync import MutationCode
from server.db.engine import connection_counts

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "reppu_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "reppu_http_request_duration_seconds",
    "Time from a request's arrival to the start of its answer, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SYNC_PULLS = Counter(
    "reppu_sync_pulls",
    "Sync pulls answered: 'nothing_new' (from the heads alone) or 'changes'.",
    ["answer"],
)
SYNC_PUSHES = Counter("reppu_sync_pushes", "Sync pushes answered.")
SYNC_MUTATIONS = Counter(
    "reppu_sync_mutations",
    "Mutations in sync pushes, by their answer: applied or rejected (a replay counts again).",
    ["status"],
)
MUTATION_REJECTIONS = Counter(
    "reppu_sync_mutation_rejections",
    "Mutations refused, by the rejection's stable code.",
    ["code"],
)
DELIVERIES = Counter(
    "reppu_deliveries",
    "Deliveries the workers finished, by channel (webpush, fcm, apns, apprise) and outcome "
    "(sent, queued for a retry, gone, failed, expired).",
    ["channel", "outcome"],
)
LIVE_STREAMS = Gauge(
    "reppu_live_streams_open",
    "Live streams (GET /sync/live) open now.",
    multiprocess_mode="livesum",
)
DB_CONNECTIONS = Gauge(
    "reppu_db_connections",
    "Database connections of the serving processes: in_use or idle (PostgreSQL: the asyncpg "
    "pool; SQLite: the read connections).",
    ["state"],
    multiprocess_mode="livesum",
)


def _known_labels() -> None:
    """Every label value known in advance starts at 0, so that a rate or a ratio over it
    reads 0 rather than "no data" before the first event."""
    for answer in ("changes", "nothing_new"):
        SYNC_PULLS.labels(answer)
    for status in ("applied", "rejected"):
        SYNC_MUTATIONS.labels(status)
    for code in MutationCode:
        MUTATION_REJECTIONS.labels(str(code))
    for channel in ("webpush", "apprise", "fcm", "apns"):
        for outcome in ("sent", "queued", "gone", "failed", "expired"):
            DELIVERIES.labels(channel, outcome)


_known_labels()


def registry() -> CollectorRegistry:
    """The registry a scrape reads: this process's, or all processes' added up when
    ``PROMETHEUS_MULTIPROC_DIR`` is set (several uvicorn workers)."""
    folder = os.environ.get(MULTIPROC_VARIABLE)
    if not folder:
        return REGISTRY
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged, path=folder)  # type: ignore[no-untyped-call]
    return merged


def release_process() -> None:
    """This process stops: its live gauges no longer count (multi-process mode only)."""
    if os.environ.get(MULTIPROC_VARIABLE):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def count_pull(*, nothing_new: bool) -> None:
    SYNC_PULLS.labels("nothing_new" if nothing_new else "changes").inc()


def count_push(statuses: Iterator[tuple[str, str | None]]) -> None:
    """One push answered, with each mutation's ``(status, rejection code or None)``."""
    SYNC_PUSHES.inc()
    for status, code in statuses:
        SYNC_MUTATIONS.labels(status).inc()
        if code is not None:
            MUTATION_REJECTIONS.labels(code).inc()


def count_delivery(channel: str, outcome: str) -> None:
    DELIVERIES.labels(channel, outcome).inc()


@contextlib.contextmanager
def stream_open() -> Iterator[None]:
    """Counts a live stream as open for as long as the block runs."""
    LIVE_STREAMS.inc()
    try:
        yield
    finally:
        LIVE_STREAMS.dec()


def sample_connections(engine: Engine[Any]) -> None:
    """Set the connection gauges from ``engine`` now (called at each scrape, and by each
    process's own requests in multi-process mode, so every worker's pool is seen)."""
    in_use, idle = connection_counts(engine)
    DB_CONNECTIONS.labels("in_use").set(in_use)
    DB_CONNECTIONS.labels("idle").set(idle)


class RequestMetrics:
    """ASGI middleware around the whole application: counts every HTTP answer by route
    template, method and status, and times it to the start of the answer.

    It wraps Litestar's own handler (exception handling included), so answers made from an
    error raised before a route runs (a missing or refused token) are counted with their real
    status. The route template is read from the scope after routing; a path no route matched
    counts as ``unmatched``, so a scanner's random paths never become labels.
    """

    def __init__(self, app: Any, engine_of: Any) -> None:
        self.app = app
        self._engine_of = engine_of
        self._sampled_at = 0.0
        # Each label set's child, found once: ``labels()`` takes a lock and builds a key on
        # every call. Routes, methods and statuses are few, so these stay small.
        self._latency: dict[tuple[str, str], Any] = {}
        self._requests: dict[tuple[str, str, str], Any] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an answer that never started is a server error

        async def counting_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                key = (scope.get("path_template") or "unmatched", scope["method"])
                if (latency := self._latency.get(key)) is None:
                    latency = self._latency[key] = HTTP_LATENCY.labels(*key)
                latency.observe(time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            key3 = (scope.get("path_template") or "unmatched", scope["method"], str(status))
            if (requests := self._requests.get(key3)) is None:
                requests = self._requests[key3] = HTTP_REQUESTS.labels(*key3)
            requests.inc()
            self._sample(started)

    def _sample(self, now: float) -> None:
        # Once a second at most: each process's pool shows up in the sum of all processes.
        if now - self._sampled_at < 1.0:
            return
        self._sampled_at = now
        engine = self._engine_of()
        if engine is not None:
            sample_connections(engine)
