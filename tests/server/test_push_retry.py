"""A push transaction that PostgreSQL fails as a deadlock loser is applied again, once."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

import server.push
from clients.python import ReppuClient
from schemas.sync import SCHEMA_VERSION
from server.db.message_tables import Message
from tests.city import City
from tests.devices import device


async def _send(client: ReppuClient) -> httpx.Response:
    """POST the client's queued mutations as one push, leaving its outbox as it was."""
    body = {
        "schema_version": SCHEMA_VERSION,
        "client_id": client.client_id,
        "mutations": [
            {"id": i, "name": n, "args": a, "occurred_at": o}
            for i, n, a, o in client.store.pending()
        ],
    }
    return await client.http.post("/sync/push", json=body, headers=client.headers)


def _fail_first(times: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the first ``times`` calls of the push's last step (writing the results and the
    client's position, inside the transaction) raise a deadlock; the calls are counted."""
    calls: list[int] = []
    real = server.push._record

    async def flaky(*args: Any) -> None:
        calls.append(1)
        await real(*args)  # written, then lost with the rolled-back transaction
        if len(calls) <= times:
            raise asyncpg.DeadlockDetectedError("deadlock detected")

    monkeypatch.setattr(server.push, "_record", flaky)
    return calls


async def test_a_deadlocked_push_is_applied_again_once(
    fx_client: httpx.AsyncClient, fx_city: City, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fail_first(1, monkeypatch)
    teacher = await device(fx_client, "teacher")
    for body in ("Eka", "Toka"):
        teacher.queue("message.send", {"to": [fx_city.mother], "subject": "s", "body": body})
    for _ in range(2):  # the second time as if the first answer was lost
        answer = await _send(teacher)
        assert answer.status_code == 200, answer.text
        assert [r["status"] for r in answer.json()["results"]] == ["applied", "applied"]
    assert len(calls) == 2  # the failed attempt and the retry; the replay writes nothing
    assert sorted(m["body"] for m in await Message.select(Message.body)) == ["Eka", "Toka"]


async def test_a_push_that_keeps_deadlocking_applies_nothing_and_says_try_again(
    fx_client: httpx.AsyncClient, fx_city: City, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fail_first(server.push.RETRIES, monkeypatch)
    teacher = await device(fx_client, "teacher")
    teacher.queue("message.send", {"to": [fx_city.mother], "subject": "s", "body": "Eka"})
    answer = await _send(teacher)
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "server.unavailable"
    assert answer.headers["retry-after"]
    assert len(calls) == server.push.RETRIES
    assert await Message.count() == 0
