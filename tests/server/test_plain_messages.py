"""``request.invalid`` says what is wrong in plain words, never in msgspec's (issue 14).

The ``field`` says where; the ``message`` is a sentence without regexes, backticks or type
names, whichever side decoded the request (Litestar for most routes, ``server/wire.py`` for
the sync routes).
"""

from __future__ import annotations

import httpx
import pytest

from schemas.sync import SCHEMA_VERSION
from server.plain_words import plain
from tests.city import City
from tests.conftest import log_in_as

JARGON = ("regex", "`", "Expected `", "RFC3339", "str", "int")


def _is_plain(message: str) -> bool:
    return not any(word in message for word in JARGON)


async def test_request_invalid_messages_are_plain_words(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    headers = await log_in_as(fx_client, "principal")
    answers = {
        "quiet hours": await fx_client.put(
            "/me/notifications", json={"quiet_start": "25:99"}, headers=headers
        ),
        "wrong kind": await fx_client.put(
            "/me/notifications", json={"quiet_start": 7}, headers=headers
        ),
        "query date": await fx_client.get(
            f"/schools/{fx_city.school_a}/absences",
            params={"from": "2026-13-45"},
            headers=headers,
        ),
        "channel address": await fx_client.post(
            "/me/channels", json={"kind": "email", "address": ""}, headers=headers
        ),
        "push envelope": await fx_client.post(
            "/sync/push",
            json={"schema_version": SCHEMA_VERSION, "client_id": "no spaces!", "mutations": []},
            headers=headers,
        ),
        "push list": await fx_client.post(
            "/sync/push",
            json={"schema_version": SCHEMA_VERSION, "client_id": "abcdefgh", "mutations": {}},
            headers=headers,
        ),
    }
    for label, answer in answers.items():
        assert answer.status_code in (400, 422), (label, answer.text)
        body = answer.json()
        assert body["code"] == "request.invalid", (label, body)
        assert _is_plain(body["message"]), (label, body)
        assert body.get("field"), (label, body)
    assert answers["quiet hours"].json() == {
        "code": "request.invalid",
        "message": "This value is not in the expected form (HH:MM).",
        "field": "$.quiet_start",
    }
    assert answers["query date"].json()["field"] == "from"
    assert answers["push envelope"].json()["field"] == "$.client_id"


@pytest.mark.parametrize(
    "message",
    [
        "Expected `str` matching regex '^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$'",
        "Expected `str` matching regex '^[^\\x00]*$'",
        "Expected `str` matching regex '^weird$'",
        "Expected `str` of length <= 60",
        "Expected `array` of length >= 1",
        "Expected `int` >= 1",
        "Expected `float` < 1.5",
        "Expected `int` that's a multiple of 5",
        "Expected `str | null`, got `int`",
        "Expected `object`, got `array`",
        "Expected `mystery`, got `bool`",
        "Invalid RFC3339 encoded date",
        "Invalid RFC3339 encoded datetime",
        "Invalid enum value 'x'",
        "Invalid UUID",
        "Object missing required field `name`",
        "Object contains unknown field `nme`",
        "Expected something `new` that msgspec may say one day",
    ],
)
def test_every_phrase_of_msgspec_becomes_a_sentence(message: str) -> None:
    said = plain(message)
    assert _is_plain(said), said
    assert said.endswith("."), said
