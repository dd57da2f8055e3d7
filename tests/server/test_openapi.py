"""The OpenAPI document says what the server does (``server/openapi.py``), and a method a
route does not have answers 405 with ``Allow``. ``test_fuzz.py`` holds every answer to it."""

from __future__ import annotations

import re
from typing import Any

import httpx

METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get("/schema/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method.upper(), operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method.upper() in METHODS
    ]


async def test_the_sync_bodies_are_described_in_json_and_messagepack(
    fx_client: httpx.AsyncClient,
) -> None:
    document = await _document(fx_client)
    ref = "#/components/schemas/{}".format
    for path, asked, answered in (
        ("/sync/pull", "PullRequest", "PullResponse"),
        ("/sync/push", "PushRequest", "PushResponse"),
    ):
        operation = document["paths"][path]["post"]
        for media in ("application/json", "application/x-msgpack"):
            assert operation["requestBody"]["content"][media]["schema"] == {"$ref": ref(asked)}
            assert operation["responses"]["200"]["content"][media]["schema"] == {
                "$ref": ref(answered)
            }
    schemas = document["components"]["schemas"]
    assert schemas["PullRequest"]["additionalProperties"] is False
    assert schemas["MutationIn"]["required"] == ["id", "name", "args", "occurred_at"]
    live = document["paths"]["/sync/live"]["get"]["responses"]["200"]["content"]
    assert list(live) == ["text/event-stream"]
    assert live["text/event-stream"]["schema"]["properties"]["event"]["enum"] == [
        "ready",
        "poke",
        "end",
    ]


async def test_no_answer_or_body_is_left_undescribed(fx_client: httpx.AsyncClient) -> None:
    document = await _document(fx_client)
    for path, method, operation in _operations(document):
        bodies = [*operation.get("requestBody", {}).get("content", {}).values()]
        for status, answer in operation["responses"].items():
            if status.startswith("2"):
                bodies += answer.get("content", {}).values()
        for body in bodies:
            assert body["schema"] != {}, (method, path)


async def test_every_error_answer_is_the_catalogues(fx_client: httpx.AsyncClient) -> None:
    document = await _document(fx_client)
    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    for path, method, operation in _operations(document):
        answers = operation["responses"]
        for status, answer in answers.items():
            if int(status) >= 400:
                assert answer["content"] == {"application/json": {"schema": error_body}}, (
                    method,
                    path,
                    status,
                )
                assert re.search(r"`[a-z_.]+`", answer["description"])
        assert {"500", "503"} <= set(answers), (method, path)
        if operation.get("security", document["security"]):
            assert "auth.invalid_token" in answers["401"]["description"], (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "415", "422"} <= set(answers), (method, path)
        if operation.get("parameters"):
            assert "request.invalid" in answers["422"]["description"], (method, path)
    assert "ErrorBody" in document["components"]["schemas"]
    login = document["paths"]["/auth/login"]["post"]["responses"]
    assert "auth.bad_credentials" in login["401"]["description"]
    assert "auth.rate_limited" in login["429"]["description"]


async def test_public_routes_say_they_need_no_token(fx_client: httpx.AsyncClient) -> None:
    document = await _document(fx_client)
    paths = document["paths"]
    for path, method in (("/health", "get"), ("/auth/login", "post"), ("/calendar/{name}", "get")):
        assert paths[path][method]["security"] == [], path
    assert "security" not in paths["/me"]["get"]  # the document's default: a bearer token
    assert document["security"] == [{"BearerToken": []}]


async def test_a_method_a_route_lacks_answers_405_naming_the_methods_it_has(
    fx_client: httpx.AsyncClient,
) -> None:
    document = await _document(fx_client)
    checked = 0
    for path, item in document["paths"].items():
        allowed = {method.upper() for method in item if method.upper() in METHODS}
        url = re.sub(r"\{\w+\}", "1", path)
        for method in sorted(set(METHODS) - allowed):
            answer = await fx_client.request(method, url)
            assert answer.status_code == 405, (method, path)
            assert answer.json()["code"] == "method_not_allowed"
            listed = {m.strip() for m in answer.headers["allow"].split(",")}
            # Litestar answers OPTIONS itself on every route.
            assert listed == allowed | {"OPTIONS"}, (method, path)
            checked += 1
    assert checked > 50
