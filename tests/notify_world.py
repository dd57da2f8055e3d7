"""Helpers for the fan-out tests: devices subscribed at the push-service emulator, a worker
sending to it in-process, and time moved forward for waiting deliveries."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
from piccolo.engine.base import Engine

from clients.python import ReppuClient
from server.db.notify_tables import Delivery
from server.deliver import Worker
from server.push_transport import HttpxTransport
from server.settings import Settings
from tests.devices import device
from tests.push_service import PushService

PUSH_ORIGIN = "http://push.test:8443"


def make_worker(
    engine: Engine[Any], settings: Settings, service: PushService, **options: Any
) -> Worker:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app))
    return Worker(engine, settings, transport=HttpxTransport(client), idle_poll=0.05, **options)


async def subscribed_device(
    http: httpx.AsyncClient, service: PushService, username: str
) -> tuple[ReppuClient, str]:
    """A logged-in device of ``username`` with a Web Push subscription; (client, token)."""
    client = await device(http, username)
    subscription = service.subscribe()
    answer = await http.post(
        "/push/subscriptions", json=subscription.to_json(), headers=client.headers
    )
    assert answer.status_code == 201, answer.text
    return client, subscription.token


def pushes(service: PushService, token: str) -> list[dict[str, Any]]:
    """The decrypted payloads the emulator accepted for ``token``."""
    return [json.loads(r.plaintext) for r in service.received_for(token)]


async def time_passes(until: dt.datetime | None = None) -> None:
    """Make every waiting delivery due now, as if the clock had moved on to ``until``."""
    due = (until or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=1)
    await Delivery.update({Delivery.not_before: due}).where(
        Delivery.status.is_in(["queued", "digest"])
    )


async def deliveries(**where: Any) -> list[dict[str, Any]]:
    query = Delivery.select()
    for column, value in where.items():
        query = query.where(getattr(Delivery, column) == value)
    return list(await query.order_by(Delivery.id))
