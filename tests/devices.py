"""Logged-in devices running the reference client, for the sync tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from clients.python import ReppuClient
from tests.city import PASSWORD


async def device(http: httpx.AsyncClient, username: str, *, page_limit: int = 500) -> ReppuClient:
    """A logged-in device of ``username`` with an empty local store."""
    answer = await http.post(
        "/auth/login", json={"username": username, "password": PASSWORD, "device_name": "t"}
    )
    return ReppuClient(http, answer.json()["token"], page_limit=page_limit)


def records(client: ReppuClient, record_type: str) -> dict[int, dict[str, Any]]:
    return {i: r for (_, i), r in client.store.records(record_type).items()}


def next_weekday(today: dt.date, weekday: int) -> dt.date:
    """The next date after ``today`` with ISO ``weekday``."""
    return today + dt.timedelta(days=(weekday - today.isoweekday() - 1) % 7 + 1)


async def change(client: ReppuClient, name: str, **args: Any) -> dict[str, Any]:
    client.queue(name, {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in args.items()})
    return (await client.push())[-1]
