"""Write ``docs/grafana-dashboard.json``: a Grafana dashboard of Reppu's ``/metrics``.

Import the file in Grafana (Dashboards, New, Import) and pick the Prometheus data source
that scrapes Reppu. The panels follow ``docs/operations.md``'s metrics and alarms. The file
is generated, so that a test can check that every expression names a metric Reppu has
(``tests/server/test_grafana_dashboard.py``); run this script after changing a panel.

    .venv/bin/python scripts/grafana_dashboard.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "grafana-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# (title, unit, [(expression, legend)], description)
PANELS: list[tuple[str, str, list[tuple[str, str]], str]] = [
    (
        "Requests by status",
        "reqps",
        [("sum by (status) (rate(reppu_http_requests_total[5m]))", "{{status}}")],
        "Every answer, refusals before a route included.",
    ),
    (
        "p99 time to answer, by route",
        "s",
        [
            (
                "histogram_quantile(0.99, sum by (le, route) "
                "(rate(reppu_http_request_duration_seconds_bucket[5m])))",
                "{{route}}",
            )
        ],
        "The morning spike's targets: /sync/pull p99 at most 100 ms on SQLite, 50 ms on "
        "PostgreSQL.",
    ),
    (
        "Sync pulls",
        "reqps",
        [("sum by (answer) (rate(reppu_sync_pulls_total[5m]))", "{{answer}}")],
        "'nothing_new' should be most of them.",
    ),
    (
        "Sync pushes and mutations",
        "ops",
        [
            ("sum(rate(reppu_sync_pushes_total[5m]))", "pushes"),
            ("sum by (status) (rate(reppu_sync_mutations_total[5m]))", "mutations {{status}}"),
        ],
        "",
    ),
    (
        "Mutation rejections by code",
        "ops",
        [("sum by (code) (rate(reppu_sync_mutation_rejections_total[5m]))", "{{code}}")],
        "A code rising after a release: app and server disagree.",
    ),
    (
        "Outbox depth by lane",
        "short",
        [("max by (lane) (reppu_outbox_depth)", "{{lane}}")],
        "Entries waiting, due or not (read from the database at each scrape).",
    ),
    (
        "Oldest due entry by lane (worker lag)",
        "s",
        [("max by (lane) (reppu_outbox_oldest_age_seconds)", "{{lane}}")],
        "Alarm: urgent over 60 s, normal over 15 min, expand over 2 min.",
    ),
    (
        "Deliveries by channel and outcome",
        "ops",
        [
            (
                "sum by (channel, outcome) (rate(reppu_deliveries_total[5m]))",
                "{{channel}} {{outcome}}",
            )
        ],
        "",
    ),
    (
        "Delivery workers",
        "short",
        [
            ("max(reppu_workers_alive)", "alive"),
            ("max(reppu_worker_heartbeat_age_seconds)", "freshest heartbeat, s"),
        ],
        "Alarm: no worker alive for a minute.",
    ),
    (
        "Live streams open",
        "short",
        [("sum(reppu_live_streams_open)", "streams")],
        "",
    ),
    (
        "Database connections",
        "short",
        [("sum by (state) (reppu_db_connections)", "{{state}}")],
        "Alarm: no idle connection for 5 minutes.",
    ),
]


def panel(index: int, title: str, unit: str, targets: list[tuple[str, str]], about: str) -> Any:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "description": about,
        "datasource": DATASOURCE,
        "gridPos": {"x": (index % 2) * 12, "y": (index // 2) * 8, "w": 12, "h": 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + n), "datasource": DATASOURCE, "expr": e, "legendFormat": f}
            for n, (e, f) in enumerate(targets)
        ],
    }


def dashboard() -> dict[str, Any]:
    return {
        "title": "Reppu",
        "uid": "reppu-operations",
        "description": "Reppu's /metrics (docs/operations.md).",
        "tags": ["reppu"],
        "schemaVersion": 39,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                }
            ]
        },
        "panels": [panel(i, *p) for i, p in enumerate(PANELS)],
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(OUTPUT.parent.parent)}")
