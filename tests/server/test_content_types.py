"""A body is read only as what its Content-Type says (issue 14, ``docs/errors.md``).

Outside ``/sync/*`` a route takes JSON only: any other named type is
``415 request.unsupported_media_type`` and nothing is stored, even if the bytes happen to be
JSON. A body that names no type is read as JSON. The sync routes also take MessagePack.
"""

from __future__ import annotations

import urllib.parse

import httpx
import msgspec
import pytest

from schemas.sync import SCHEMA_VERSION
from server.db.notify_tables import NotifyChannel
from tests.city import PASSWORD, City
from tests.conftest import log_in_as

LOGIN = {"username": "teacher", "password": PASSWORD, "device_name": "test"}
CHANNEL = {"kind": "email", "address": "opettaja@koulu.fi", "label": "työ"}
PREFERENCES = {"quiet_start": "22:15", "quiet_end": "06:45"}
ROUTES = {
    "login": ("POST", "/auth/login", LOGIN),
    "channels": ("POST", "/me/channels", CHANNEL),
    "notifications": ("PUT", "/me/notifications", PREFERENCES),
}


def _content(media: str, body: dict[str, str]) -> bytes:
    """``body`` as a client that names ``media`` might send it: in that format where one can
    hold it, else as JSON (which the route must still refuse)."""
    if media == "application/x-msgpack":
        return msgspec.msgpack.encode(body)
    if media == "application/x-www-form-urlencoded":
        return urllib.parse.urlencode(body).encode()
    return msgspec.json.encode(body)


@pytest.mark.parametrize(
    "media",
    [
        "application/x-msgpack",
        "text/plain",
        "text/plain; charset=utf-8",
        "application/xml",
        "application/x-www-form-urlencoded",
    ],
)
async def test_a_body_that_is_not_json_is_415_and_stores_nothing(
    fx_client: httpx.AsyncClient, fx_city: City, media: str
) -> None:
    headers = await log_in_as(fx_client, "teacher")
    before = (await fx_client.get("/me/notifications", headers=headers)).json()
    for label, (method, path, body) in ROUTES.items():
        answer = await fx_client.request(
            method,
            path,
            content=_content(media, body),
            headers={**headers, "Content-Type": media},
        )
        assert answer.status_code == 415, (label, media, answer.text)
        assert answer.json()["code"] == "request.unsupported_media_type", (label, answer.text)
        assert "token" not in answer.json()
    assert await NotifyChannel.count() == 0
    assert (await fx_client.get("/me/notifications", headers=headers)).json() == before


async def test_json_with_or_without_a_content_type_is_read(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    """``application/json`` (with any parameters, in any case) and a body that names no type
    at all are JSON."""
    headers = await log_in_as(fx_client, "teacher")
    for media in ("application/json", "Application/JSON; charset=utf-8", None):
        answer = await fx_client.post(
            "/auth/login",
            content=msgspec.json.encode(LOGIN),
            headers={"Content-Type": media} if media else {},
        )
        assert answer.status_code == 200, (media, answer.text)
    answer = await fx_client.put(
        "/me/notifications", content=msgspec.json.encode(PREFERENCES), headers=headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["quiet_start"] == "22:15"


async def test_the_sync_routes_take_msgpack_and_refuse_other_types(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    headers = await log_in_as(fx_client, "teacher")
    body = {"schema_version": SCHEMA_VERSION, "client_id": "content-types", "mutations": []}
    answer = await fx_client.post(
        "/sync/push",
        content=msgspec.msgpack.encode(body),
        headers={**headers, "Content-Type": "application/x-msgpack"},
    )
    assert answer.status_code == 200, answer.text
    answer = await fx_client.post(
        "/sync/push",
        content=msgspec.json.encode(body),
        headers={**headers, "Content-Type": "text/plain"},
    )
    assert (answer.status_code, answer.json()["code"]) == (415, "request.unsupported_media_type")
