"""``GET /metrics``: Prometheus's text format, for a scraper holding ``REPPU_METRICS_TOKEN``.

The route exists only when the operator set the token (``server/app.py``). It is not behind
the people's bearer tokens: the scraper is no person, and a person's token never opens it.
Besides what the processes count (``server/metrics.py``), each scrape reads from the database
what only the database knows: how deep and how old each lane of the outbox is, and whether a
delivery worker is alive. ``docs/operations.md`` lists every metric and its alarm.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.errors import ErrorCode
from server.clock import utc_now
from server.errors import ReppuError
from server.metrics import registry, sample_connections
from server.outbox_lanes import outbox_lanes
from server.state import AppState
from server.worker_presence import alive, workers_seen


def scraper_allowed(settings_token: str, header: str | None) -> None:
    """Raises 401 unless ``header`` is ``Bearer <REPPU_METRICS_TOKEN>`` (compared in constant
    time, so the answer's timing says nothing of how much of a guess was right)."""
    if not header:
        raise ReppuError(ErrorCode.AUTH_REQUIRED, "A bearer token is required.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), settings_token.encode()
    ):
        raise ReppuError(ErrorCode.AUTH_INVALID_TOKEN, "This is not the metrics token.")


class DatabaseSnapshot(Collector):
    """Gauges read from the database once per scrape (collected values, not counted ones)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


async def snapshot_families() -> list[Metric]:
    now = utc_now()
    depth = GaugeMetricFamily(
        "reppu_outbox_depth", "Entries waiting in each lane of the outbox.", labels=["lane"]
    )
    age = GaugeMetricFamily(
        "reppu_outbox_oldest_age_seconds",
        "How long the oldest due entry of each lane has waited (0 when none waits): the "
        "delivery workers' lag.",
        labels=["lane"],
    )
    for lane, waiting, oldest in await outbox_lanes(now):
        depth.add_metric([lane], waiting)
        age.add_metric([lane], oldest)
    seen = await workers_seen()
    living = alive(seen)
    workers = GaugeMetricFamily(
        "reppu_workers_alive", "Delivery workers whose heartbeat is recent.", value=len(living)
    )
    families: list[Metric] = [depth, age, workers]
    if seen:
        families.append(
            GaugeMetricFamily(
                "reppu_worker_heartbeat_age_seconds",
                "Seconds since the most recent heartbeat of any delivery worker.",
                value=seen[0].age_seconds,
            )
        )
    return families


TEXT_FORMAT = "text/plain; version=0.0.4"


@get(
    "/metrics",
    exclude_from_auth=True,
    include_in_schema=False,
    summary="Prometheus metrics",
)
async def metrics(
    request: Request[Any, Any, Any], app_state: NamedDependency[AppState]
) -> Response[bytes]:
    """Every metric of every process of this server, and the outbox and workers as the
    database sees them now."""
    scraper_allowed(app_state.settings.metrics_token, request.headers.get("authorization"))
    sample_connections(app_state.engine)
    snapshot = CollectorRegistry(auto_describe=False)
    snapshot.register(DatabaseSnapshot(await snapshot_families()))
    body = generate_latest(registry()) + generate_latest(snapshot)
    return Response(
        body,
        # Litestar adds "; charset=utf-8": the classic text format's header, which every
        # Prometheus takes (the names here need none of the newer format's escaping).
        media_type=TEXT_FORMAT,
        headers={"Cache-Control": "no-store"},
    )
