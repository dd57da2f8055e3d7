"""What an operator sees: ``/metrics``, ``/health/ready``, worker heartbeats, JSON logs.

The counters are process-wide (as prometheus-client intends), so each test compares a scrape
after its requests with one before them, never absolute numbers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import time_machine
from litestar import Litestar
from piccolo.engine.base import Engine
from prometheus_client.parser import text_string_to_metric_families

from server.clock import utc_now
from server.db.bulk import run_sql
from server.db.engine import write_transaction
from server.logs import JsonFormatter, RedactSecrets, configure, redact
from server.metrics import LIVE_STREAMS, RequestMetrics
from server.routes.sync import counted
from server.settings import Settings, SettingsError, load_settings
from server.worker_presence import ALIVE_WITHIN, Presence
from tests.city import City
from tests.conftest import AppMaker, log_in_as
from tests.devices import change, device
from tests.notify_world import make_worker, subscribed_device
from tests.push_service import PushService

TOKEN = "scraper-token-0123456789abcdef"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}
BULLETIN = {"audience": "group", "title": "t", "body": "b"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest_asyncio.fixture
async def fx_ops_app(fx_settings: Settings, fx_db: Engine[Any], fx_make_app: AppMaker) -> Litestar:
    return fx_make_app(dataclasses.replace(fx_settings, metrics_token=TOKEN), fx_db)


@pytest_asyncio.fixture
async def fx_ops(fx_ops_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fx_ops_app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://reppu.test") as client:
        yield client


async def scrape(client: httpx.AsyncClient) -> Samples:
    answer = await client.get("/metrics", headers=SCRAPE)
    assert answer.status_code == 200, answer.text
    # The classic text format's header, each parameter once (Prometheus parses it strictly).
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    found: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_no_token_no_metrics_route_and_no_request_counting(
    fx_client: httpx.AsyncClient, fx_app: Litestar
) -> None:
    answer = await fx_client.get("/metrics", headers=SCRAPE)
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
    assert not isinstance(fx_app.asgi_handler, RequestMetrics)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "auth.required"),
        ({"Authorization": "Bearer wrong-token-0123456789abcdef"}, "auth.invalid_token"),
        ({"Authorization": f"Basic {TOKEN}"}, "auth.invalid_token"),
        ({"Authorization": f"Bearer {TOKEN}x"}, "auth.invalid_token"),
    ],
)
async def test_metrics_refuse_anyone_without_the_scrapers_token(
    fx_ops: httpx.AsyncClient, headers: dict[str, str], code: str
) -> None:
    answer = await fx_ops.get("/metrics", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["code"] == code
    assert "reppu_" not in answer.text


async def test_a_persons_token_does_not_open_metrics(
    fx_ops: httpx.AsyncClient, fx_city: City
) -> None:
    headers = await log_in_as(fx_ops, "admin")
    answer = await fx_ops.get("/metrics", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["code"] == "auth.invalid_token"


async def test_requests_are_counted_by_route_template_and_status(
    fx_ops: httpx.AsyncClient, fx_city: City
) -> None:
    before = await scrape(fx_ops)
    headers = await log_in_as(fx_ops, "mother")
    assert (await fx_ops.get("/me", headers=headers)).status_code == 200
    assert (await fx_ops.get("/me", headers=headers)).status_code == 200
    # Another family's child: refused by the policy.
    assert (await fx_ops.get(f"/people/{fx_city.olli}", headers=headers)).status_code == 403
    # Refused before any route runs: no token, a bad token.
    assert (await fx_ops.get("/me")).status_code == 401
    assert (await fx_ops.get("/me", headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (await fx_ops.get("/no/such/path/31337")).status_code == 404
    after = await scrape(fx_ops)

    requests = "reppu_http_requests_total"
    assert grew(before, after, requests, route="/auth/login", method="POST", status="200") == 1
    assert grew(before, after, requests, route="/me", method="GET", status="200") == 2
    assert grew(before, after, requests, route="/me", method="GET", status="401") == 2
    person = "/people/{person_id}"
    assert grew(before, after, requests, route=person, method="GET", status="403") == 1
    # A path no API route has falls to the web app's files: its template, not the path.
    assert grew(before, after, requests, route="/{file_path}", method="GET", status="404") == 1
    latency = "reppu_http_request_duration_seconds_count"
    assert grew(before, after, latency, route="/me", method="GET") == 4
    # Paths with ids never become labels: the set of label values stays small.
    routes = {dict(pairs)["route"] for (_, pairs) in after if "route" in dict(pairs)}
    assert not any(f"/{fx_city.olli}" in r or "31337" in r for r in routes)


async def test_pulls_pushes_and_rejections_are_counted(
    fx_ops: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    before = await scrape(fx_ops)
    teacher = await device(fx_ops, "teacher")
    await teacher.sync()  # the first pull brings changes
    await teacher.sync()  # and the next one nothing new
    applied = await change(
        teacher,
        "bulletin.send",
        audience="group",
        audience_id=fx_city.class_5b,
        title="t",
        body="b",
    )
    assert applied["status"] == "applied"
    mother = await device(fx_ops, "mother")
    refused = await change(mother, "bulletin.send", **BULLETIN, audience_id=fx_city.class_5b)
    assert refused["status"] == "rejected"
    after = await scrape(fx_ops)

    # Known label values are there from the start, at 0 until their first event.
    assert (
        "reppu_deliveries_total",
        frozenset({("channel", "webpush"), ("outcome", "gone")}),
    ) in after
    assert grew(before, after, "reppu_sync_pulls_total", answer="changes") >= 1
    assert grew(before, after, "reppu_sync_pulls_total", answer="nothing_new") >= 1
    assert grew(before, after, "reppu_sync_pushes_total") == 2
    assert grew(before, after, "reppu_sync_mutations_total", status="applied") == 1
    assert grew(before, after, "reppu_sync_mutations_total", status="rejected") == 1
    code = refused["code"]
    assert grew(before, after, "reppu_sync_mutation_rejections_total", code=code) == 1


async def _queued(engine: Engine[Any], urgent: bool, not_before: dt.datetime, key: str) -> None:
    now = utc_now()
    async with write_transaction(engine):
        await run_sql(
            "INSERT INTO delivery (key, person, channel, target, urgent, status, item_count, "
            "not_before, expires_at, attempts, detail, updated_at) "
            "VALUES ({}, 1, 'webpush', 1, {}, 'queued', 1, {}, {}, 0, '', {})",
            key,
            urgent,
            not_before,
            now + dt.timedelta(days=1),
            now,
        )


async def test_outbox_depth_and_age_per_lane(fx_ops: httpx.AsyncClient, fx_db: Engine[Any]) -> None:
    now = utc_now()
    await _queued(fx_db, True, now - dt.timedelta(seconds=90), "a")
    await _queued(fx_db, True, now - dt.timedelta(seconds=10), "b")
    await _queued(fx_db, False, now + dt.timedelta(hours=1), "c")  # waits for quiet hours: not due
    after = await scrape(fx_ops)
    assert value(after, "reppu_outbox_depth", lane="urgent") == 2
    assert value(after, "reppu_outbox_depth", lane="normal") == 1
    assert value(after, "reppu_outbox_depth", lane="apprise:urgent") == 0
    assert value(after, "reppu_outbox_depth", lane="expand") == 0
    assert 90 <= value(after, "reppu_outbox_oldest_age_seconds", lane="urgent") < 150
    assert value(after, "reppu_outbox_oldest_age_seconds", lane="normal") == 0


async def test_readiness_needs_a_living_worker(
    fx_ops: httpx.AsyncClient, fx_db: Engine[Any]
) -> None:
    answer = await fx_ops.get("/health/ready")
    assert answer.status_code == 503
    assert answer.json()["code"] == "server.unavailable"
    assert "no delivery worker is alive" in answer.json()["message"]
    assert value(await scrape(fx_ops), "reppu_workers_alive") == 0

    presence = Presence(fx_db)
    await presence.beat()
    answer = await fx_ops.get("/health/ready")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ready"
    assert answer.json()["workers_alive"] == 1
    samples = await scrape(fx_ops)
    assert value(samples, "reppu_workers_alive") == 1
    assert value(samples, "reppu_worker_heartbeat_age_seconds") < ALIVE_WITHIN.total_seconds()

    # A killed worker stops beating: after ALIVE_WITHIN it no longer counts.
    with time_machine.travel(utc_now() + ALIVE_WITHIN + dt.timedelta(seconds=1)):
        answer = await fx_ops.get("/health/ready")
        assert answer.status_code == 503
        assert "no delivery worker" in answer.json()["message"]
    await presence.leave()
    assert (await fx_ops.get("/health/ready")).status_code == 503


async def test_readiness_names_pending_migrations(
    fx_ops: httpx.AsyncClient, fx_db: Engine[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await Presence(fx_db).beat()

    async def two_pending() -> list[str]:
        return ["2099-01-01T00:00:00:000000", "2099-01-02T00:00:00:000000"]

    monkeypatch.setattr("server.routes.health.pending_migrations", two_pending)
    answer = await fx_ops.get("/health/ready")
    assert answer.status_code == 503
    assert "2 migration(s) not applied" in answer.json()["message"]
    assert (await fx_ops.get("/health")).status_code == 200  # alive, just not ready


async def test_a_running_worker_beats_and_leaves_when_stopped(
    fx_db: Engine[Any], fx_settings: Settings, fx_ops: httpx.AsyncClient
) -> None:
    worker = make_worker(fx_db, fx_settings, PushService("http://push.test:8443"))
    running = asyncio.create_task(worker.run())
    try:
        for _ in range(200):
            if (await fx_ops.get("/health/ready")).status_code == 200:
                break
            await asyncio.sleep(0.02)
        assert (await fx_ops.get("/health/ready")).json()["workers_alive"] == 1
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert (await run_sql("SELECT id FROM worker_heartbeat")) == []


@pytest.mark.now("2026-11-24T10:15:00+02:00")  # school hours: the push goes now
async def test_deliveries_are_counted_by_channel_and_outcome(
    fx_ops: httpx.AsyncClient, fx_city: City, fx_db: Engine[Any], fx_settings: Settings
) -> None:
    service = PushService("http://push.test:8443")
    await subscribed_device(fx_ops, service, "mother")
    before = await scrape(fx_ops)
    teacher = await device(fx_ops, "teacher")
    await change(
        teacher,
        "bulletin.send",
        audience="group",
        audience_id=fx_city.class_5b,
        title="t",
        body="b",
    )
    worker = make_worker(fx_db, fx_settings, service)
    try:
        stats = await worker.drain()
    finally:
        await worker.push.close()
    after = await scrape(fx_ops)
    sent = grew(before, after, "reppu_deliveries_total", channel="webpush", outcome="sent")
    assert sent == stats.by_status["sent"] >= 1


async def test_live_streams_are_counted_while_open() -> None:
    closed = asyncio.Event()

    async def events() -> Any:
        try:
            for n in range(3):
                yield n
        finally:
            closed.set()

    start = LIVE_STREAMS._value.get()
    stream = counted(events())
    assert await anext(stream) == 0
    assert LIVE_STREAMS._value.get() == start + 1
    await stream.aclose()  # the client went away
    assert LIVE_STREAMS._value.get() == start
    assert closed.is_set()


async def test_database_connections_are_sampled(fx_ops: httpx.AsyncClient) -> None:
    samples = await scrape(fx_ops)
    in_use = value(samples, "reppu_db_connections", state="in_use")
    idle = value(samples, "reppu_db_connections", state="idle")
    assert in_use >= 0
    assert idle >= 0
    assert in_use + idle >= 1  # the test's own engine has at least one open


def test_metrics_token_and_log_format_settings(tmp_path: Path) -> None:
    base = {"REPPU_DATA_DIR": str(tmp_path)}
    assert load_settings(base).metrics_token == ""
    assert load_settings(base).log_format == "text"
    assert load_settings({**base, "REPPU_METRICS_TOKEN": TOKEN}).metrics_token == TOKEN
    assert load_settings({**base, "REPPU_LOG_FORMAT": "JSON"}).log_format == "json"
    for bad in ("short", "x" * 20 + " spaces " + "y" * 20, "é" * 30):
        with pytest.raises(SettingsError, match="REPPU_METRICS_TOKEN"):
            load_settings({**base, "REPPU_METRICS_TOKEN": bad})
    with pytest.raises(SettingsError, match="REPPU_LOG_FORMAT"):
        load_settings({**base, "REPPU_LOG_FORMAT": "xml"})


def _record(name: str, msg: str, *args: Any, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_json_log_lines_carry_fields_and_never_secrets() -> None:
    formatter = JsonFormatter()
    line = json.loads(
        formatter.format(_record("reppu.worker", "delivery %s failed", 17, lane="urgent"))
    )
    assert line["level"] == "warning"
    assert line["logger"] == "reppu.worker"
    assert line["message"] == "delivery 17 failed"
    assert line["lane"] == "urgent"
    assert line["time"].endswith("+00:00")

    access = _record(
        "uvicorn.access", '%s - "%s %s HTTP/%s" %d', "1.2.3.4", "GET", "/me", "1.1", 200
    )
    line = json.loads(formatter.format(access))
    assert (line["client"], line["method"], line["path"], line["status"]) == (
        "1.2.3.4",
        "GET",
        "/me",
        200,
    )

    leaky = _record(
        "reppu", "got %s for %s", "Authorization: Bearer abcdefghijklmnop123", "131052-308T"
    )
    RedactSecrets().filter(leaky)
    text = formatter.format(leaky)
    assert "abcdefghijklmnop123" not in text
    assert "131052-308T" not in text
    assert redact("pupil 010203A1234 and 311299-999X, order 0102031234") == (
        "pupil <redacted> and <redacted>, order 0102031234"
    )
    assert redact("new-style 010110Y123A too") == "new-style <redacted> too"
    # Secrets put in a URL by mistake: query parameters, a bearer token or a token in a path.
    token = "Zx3_" + "q" * 39  # the shape of the tokens Reppu issues
    assert redact(f"GET /me?access_token={token}&x=1") == "GET /me?access_token=<redacted>&x=1"
    assert redact("POST /auth/login?password=reppu-demo") == "POST /auth/login?password=<redacted>"
    assert redact(f"GET /x/Bearer%20{token}") == "GET /x/Bearer%20<redacted>"
    assert redact(f"GET /calendar/{token}.ics") == "GET /calendar/<redacted>.ics"
    assert redact("GET /people/17/devices/4") == "GET /people/17/devices/4"


def test_the_cli_logs_json_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    kept = (list(root.handlers), root.level)
    try:
        configure("json")
        # The handler writes to the stderr of the moment it was made: capsys's.
        assert root.handlers[0].stream is sys.stderr  # type: ignore[attr-defined]
        logging.getLogger("reppu.test").warning("token %s", "Bearer abcdefghijklmnop")
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert line["message"] == "token Bearer <redacted>"
    finally:
        root.handlers[:] = kept[0]
        root.setLevel(kept[1])
