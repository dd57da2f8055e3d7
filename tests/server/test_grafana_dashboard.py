"""The Grafana dashboard in docs/ is the generator's output, and every expression in it
names metrics that Reppu's /metrics really has."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import httpx
from piccolo.engine.base import Engine
from prometheus_client.parser import text_string_to_metric_families

from server.settings import Settings
from server.worker_presence import Presence
from tests.conftest import AppMaker

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "dashboard-token-0123456789abcdef"


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "grafana_dashboard", ROOT / "scripts" / "grafana_dashboard.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dashboard_file_is_the_generators_output() -> None:
    generator = _generator()
    assert (ROOT / "docs" / "grafana-dashboard.json").read_text("utf-8") == generator.render(), (
        "docs/grafana-dashboard.json is stale: run .venv/bin/python scripts/grafana_dashboard.py"
    )


async def test_every_expression_names_a_metric_reppu_has(
    fx_settings: Settings, fx_db: Engine[Any], fx_make_app: AppMaker
) -> None:
    await Presence(fx_db).beat()  # the heartbeat's age is there once a worker has run
    app = fx_make_app(dataclasses.replace(fx_settings, metrics_token=TOKEN), fx_db)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://reppu.test") as client:
        await client.get("/health")
        text = (await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).text
    samples = {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }
    families = {family.name for family in text_string_to_metric_families(text)}
    # Counters that no request has bumped yet have no sample, but their family is described.
    known = (
        samples | families | {f"{f}_total" for f in families} | {f"{f}_bucket" for f in families}
    )
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text("utf-8"))
    used = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
            bare = re.sub(r"\[[^\]]*\]|\{[^}]*\}", "", target["expr"])  # no ranges, labels
            used |= {w for w in re.findall(r"[a-z_]+", bare) if w.startswith("reppu_")}
    missing = used - known
    assert not missing, f"the dashboard names metrics /metrics does not have: {sorted(missing)}"
    assert len(used) >= 10
