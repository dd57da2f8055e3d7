"""Nothing a client sends gets a 500: every route, walked from ``app.routes``.

Every route of the app (a new route is covered without touching this file) is called, on both
databases and as a pupil, a guardian and a teacher, with

- each integer path parameter set to 0, -1, 2**31, 2**63 and 10**30 (ids are PostgreSQL's
  32-bit ``integer``: anything past 2**31 - 1 once reached the database and failed there);
- each integer query parameter set to the same values;
- a body, on every route with a body-taking method, that is not UTF-8 (JSON and MessagePack),
  or is nested a thousand or a hundred thousand levels deep (JSON and MessagePack);

and must answer a 4xx whose body carries a code of the error catalogue.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from schemas.errors import ErrorCode
from schemas.sync import SCHEMA_VERSION
from server.clock import utc_now
from server.routes.sync import sync_pull, sync_push
from server.settings import Settings
from tests.city import City
from tests.conftest import log_in_as

BAD_INTS = (0, -1, 2**31, 2**63, 10**30)
ROLES = ("aino", "mother", "teacher")
"""A pupil, a guardian, a teacher."""
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CATALOGUE = {code.value for code in ErrorCode}
# The PWA's files and the OpenAPI pages take no ids or bodies; a file path is no id.
SKIPPED_PARAMETERS = {"file_path", "path", "name"}


def _nested_msgpack(depth: int) -> bytes:
    """``depth`` arrays of one element each, around an empty array (fixarray headers)."""
    return b"\x91" * depth + b"\x90"


NOT_UTF8_JSON = b'{"username": "\xff\xfe", "password": "\xc3", "x": "\xed\xa0\x80"}'
NOT_UTF8_MSGPACK = b"\x81\xa8username\xa2\xff\xfe"
BAD_BODIES: dict[str, tuple[bytes, str]] = {
    "json-not-utf8": (NOT_UTF8_JSON, "application/json"),
    "msgpack-not-utf8": (NOT_UTF8_MSGPACK, "application/x-msgpack"),
    "json-nested-1000": (b"[" * 1_000 + b"]" * 1_000, "application/json"),
    "json-nested-100000": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "application/json"),
    "msgpack-nested-1000": (_nested_msgpack(1_000), "application/x-msgpack"),
    "msgpack-nested-100000": (_nested_msgpack(100_000), "application/x-msgpack"),
    "json-args-nested-1000": (
        b'{"schema_version": 1, "client_id": "abcdefgh1", "mutations": [{"id": 1, '
        b'"name": "message.send", "occurred_at": "2026-01-01T00:00:00Z", "args": {"a": '
        + b"[" * 1_000
        + b"]" * 1_000
        + b"}}]}",
        "application/json",
    ),
}


def _is_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    if typing.get_origin(annotation) is typing.Annotated:
        return _is_int(typing.get_args(annotation)[0])
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(_is_int(a) for a in typing.get_args(annotation))
    return False


def _endpoints(app: Litestar) -> Iterator[tuple[str, str, list[str], list[str], bool]]:
    """Every (method, path template, int path parameters, int query parameters, whether it
    reads a body). Logging out comes last: it ends the token the walk goes on with."""
    routes = sorted(app.routes, key=lambda route: route.path == "/auth/logout")
    for route in routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                path_ints = [
                    name
                    for name, parameter in route.path_parameters.items()
                    if parameter.type is int and name not in SKIPPED_PARAMETERS
                ]
                query_ints = [
                    getattr(parameter.kwarg_definition, "query", None) or name
                    for name, parameter in handler.parsed_fn_signature.parameters.items()
                    if name not in route.path_parameters
                    and name not in ("data", "request", "app_state")
                    and _is_int(parameter.annotation)
                ]
                reads_body = "data" in handler.parsed_fn_signature.parameters or handler.fn in (
                    sync_pull.fn,
                    sync_push.fn,
                )
                yield method, route.path, path_ints, query_ints, reads_body


def _fill(template: str, values: dict[str, int]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(values.get(name, 1))

    return re.sub(r"\{(\w+)(?::\w+)?\}", one, template)


def _check(answer: httpx.Response, what: str) -> str | None:
    """A failure's description, or None if the answer is a 4xx from the catalogue."""
    if not 400 <= answer.status_code < 500:
        return f"{what}: {answer.status_code} {answer.text[:200]}"
    try:
        code = msgspec.json.decode(answer.content)["code"]
    except (msgspec.DecodeError, KeyError, TypeError):
        return f"{what}: {answer.status_code} without a catalogue body: {answer.text[:200]}"
    if code not in CATALOGUE:
        return f"{what}: {answer.status_code} with code {code!r} not in the catalogue"
    return None


async def test_the_walk_reaches_every_kind_of_input(fx_app: Litestar) -> None:
    """The walk below is only as good as what it finds: it must find the ids and queries."""
    endpoints = list(_endpoints(fx_app))
    assert ("GET", "/people/{person_id:int}", ["person_id"], [], False) in endpoints
    assert any(query == ["after", "limit"] for _, _, _, query, _ in endpoints)
    assert any(query == ["organisation_id"] for _, _, _, query, _ in endpoints)
    assert ("POST", "/sync/push", [], [], True) in endpoints
    assert ("POST", "/auth/login", [], [], True) in endpoints
    assert sum(1 for *_, reads_body in endpoints if reads_body) >= 10


@pytest.mark.parametrize("role", ROLES)
async def test_no_id_or_query_integer_gets_a_500(
    fx_client: httpx.AsyncClient, fx_app: Litestar, fx_city: City, role: str
) -> None:
    headers = await log_in_as(fx_client, role)
    failures = []
    for method, template, path_ints, query_ints, _ in _endpoints(fx_app):
        for bad in BAD_INTS:
            for name in path_ints:
                path = _fill(template, {name: bad})
                answer = await fx_client.request(method, path, headers=headers)
                failures.append(_check(answer, f"{method} {path}"))
            for name in query_ints:
                path = _fill(template, {})
                answer = await fx_client.request(
                    method, path, params={name: str(bad)}, headers=headers
                )
                failures.append(_check(answer, f"{method} {path}?{name}={bad}"))
    assert [f for f in failures if f] == []


@pytest.mark.parametrize("role", ROLES)
async def test_no_unreadable_or_deep_body_gets_a_500(
    fx_client: httpx.AsyncClient, fx_app: Litestar, fx_city: City, role: str
) -> None:
    token = await log_in_as(fx_client, role)
    failures = []
    for method, template, _, _, reads_body in _endpoints(fx_app):
        if method not in BODY_METHODS:
            continue
        path = _fill(template, {})
        for label, (body, media) in BAD_BODIES.items():
            answer = await fx_client.request(
                method, path, content=body, headers={**token, "Content-Type": media}
            )
            if reads_body or answer.status_code >= 400:
                # A route that reads no body (logging out) may ignore it; a 4xx it gives must
                # still be from the catalogue, and nothing may be a 5xx.
                failures.append(_check(answer, f"{method} {path} {label}"))
    assert [f for f in failures if f] == []


async def test_every_body_is_bounded_in_size(
    fx_client: httpx.AsyncClient, fx_app: Litestar, fx_settings: Settings, fx_city: City
) -> None:
    """A body one byte over ``REPPU_MAX_BODY_BYTES`` is ``413 request.too_large`` wherever
    a body is read, before it is decoded."""
    headers = await log_in_as(fx_client, "teacher")
    body = b'{"a": "' + b"x" * fx_settings.max_body_bytes + b'"}'
    failures = []
    for method, template, _, _, reads_body in _endpoints(fx_app):
        if not reads_body:
            continue
        path = _fill(template, {})
        answer = await fx_client.request(
            method, path, content=body, headers={**headers, "Content-Type": "application/json"}
        )
        if answer.status_code != 413 or answer.json().get("code") != "request.too_large":
            failures.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
    assert failures == []


@pytest.mark.parametrize("label", sorted(BAD_BODIES))
async def test_login_takes_no_body_it_cannot_read_without_a_token(
    fx_client: httpx.AsyncClient, label: str
) -> None:
    body, media = BAD_BODIES[label]
    answer = await fx_client.post("/auth/login", content=body, headers={"Content-Type": media})
    assert _check(answer, label) is None
    # Only the sync routes take MessagePack: elsewhere it is refused before it is read.
    expected = (
        "request.malformed" if media == "application/json" else "request.unsupported_media_type"
    )
    assert answer.json()["code"] == expected


@pytest.mark.parametrize("msgpack", [False, True], ids=["json", "msgpack"])
async def test_args_nested_to_any_depth_cost_at_most_their_own_mutation(
    fx_client: httpx.AsyncClient, fx_city: City, msgpack: bool
) -> None:
    """Nesting below the decoder's limit is one mutation's rejection, the mutation after it
    applied; past the limit the whole body is ``request.malformed``. Never a 500, whichever
    side of the limit (which depends on the stack the decoder runs on) a depth falls."""
    headers = await log_in_as(fx_client, "teacher")
    now = utc_now().isoformat()
    outcomes = set()
    for depth in (10, 100, 300, 500, 700, 800, 900, 950, 990, 1_000, 1_100, 5_000):
        good = {"to": [fx_city.mother], "subject": "s", "body": f"after {depth} {msgpack}"}
        body = {
            "schema_version": SCHEMA_VERSION,
            "client_id": f"deep-{depth}-{int(msgpack)}",
            "mutations": [
                {"id": 1, "name": "message.send", "args": {"to": "DEEP"}, "occurred_at": now},
                {"id": 2, "name": "message.send", "args": good, "occurred_at": now},
            ],
        }
        # Written out by hand: the encoders recurse too.
        if msgpack:
            deep = b"\x91" * depth + b"\x90"
            content = msgspec.msgpack.encode(body).replace(msgspec.msgpack.encode("DEEP"), deep)
            media = "application/x-msgpack"
        else:
            deep = b"[" * depth + b"]" * depth
            content = msgspec.json.encode(body).replace(b'"DEEP"', deep)
            media = "application/json"
        answer = await fx_client.post(
            "/sync/push", content=content, headers={**headers, "Content-Type": media}
        )
        if answer.status_code == 400:
            assert answer.json()["code"] == "request.malformed", (depth, answer.text)
            outcomes.add("malformed")
            continue
        assert answer.status_code == 200, (depth, answer.text)
        results = answer.json()["results"]
        assert [r["status"] for r in results] == ["rejected", "applied"], (depth, results)
        assert results[0]["code"] == "mutation.invalid_args"
        outcomes.add("rejected")
    assert outcomes == {"rejected", "malformed"}  # both sides of the limit were reached
