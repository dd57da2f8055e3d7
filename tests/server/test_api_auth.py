"""Logging in and out through HTTP, the token rules, rate limits and bad input."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
from typing import Any

import httpx
import pytest
from litestar import Litestar
from piccolo.engine.base import Engine

from server.app import PUBLIC_PATHS, create_app
from server.db.tables import Account, AuthToken, LoginFailure
from server.settings import Settings
from tests.city import PASSWORD, City
from tests.conftest import AppMaker, log_in_as


def login_body(username: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    return {"username": username, "password": password, "device_name": "Aino's phone", **extra}


async def test_login_gives_a_token_bound_to_the_device(
    fx_client: httpx.AsyncClient, fx_city: City, fx_settings: Settings
) -> None:
    answer = await fx_client.post("/auth/login", json=login_body("mother"))
    assert answer.status_code == 200
    body = answer.json()
    assert body["person_id"] == fx_city.mother
    assert body["roles"] == ["guardian"]
    expires = dt.datetime.fromisoformat(body["expires_at"])
    lifetime = expires - dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=fx_settings.token_ttl_seconds - 60) < lifetime
    assert lifetime <= dt.timedelta(seconds=fx_settings.token_ttl_seconds)

    stored = await AuthToken.select().first()
    assert stored is not None
    assert stored["device_name"] == "Aino's phone"
    assert body["token"] not in stored["token_hash"]  # only a keyed hash is kept

    me = await fx_client.get("/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.json()["person"]["id"] == fx_city.mother


async def test_logout_revokes_only_that_token(fx_client: httpx.AsyncClient, fx_city: City) -> None:
    phone = await log_in_as(fx_client, "teacher")
    laptop = await log_in_as(fx_client, "teacher")
    assert (await fx_client.post("/auth/logout", headers=phone)).status_code == 204
    refused = await fx_client.get("/me", headers=phone)
    assert refused.status_code == 401
    assert refused.json()["code"] == "auth.invalid_token"
    assert (await fx_client.get("/me", headers=laptop)).status_code == 200


async def test_expired_token_is_refused(fx_client: httpx.AsyncClient, fx_city: City) -> None:
    headers = await log_in_as(fx_client, "aino")
    await AuthToken.update({AuthToken.expires_at: dt.datetime.now(dt.UTC)}, force=True)
    answer = await fx_client.get("/me", headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {
        "code": "auth.invalid_token",
        "message": "The token is unknown, expired or revoked.",
    }


async def test_disabled_account_cannot_log_in_or_use_its_tokens(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    headers = await log_in_as(fx_client, "father")
    await Account.update({Account.disabled: True}).where(Account.username == "father")
    assert (await fx_client.get("/me", headers=headers)).status_code == 401
    answer = await fx_client.post("/auth/login", json=login_body("father"))
    assert answer.status_code == 401
    assert answer.json()["code"] == "auth.bad_credentials"


@pytest.mark.parametrize(
    ("username", "password"), [("mother", "wrong password"), ("nobody", PASSWORD)]
)
async def test_wrong_credentials_say_the_same_thing(
    fx_client: httpx.AsyncClient, fx_city: City, username: str, password: str
) -> None:
    answer = await fx_client.post("/auth/login", json=login_body(username, password))
    assert answer.status_code == 401
    assert answer.json() == {
        "code": "auth.bad_credentials",
        "message": "Wrong username or password.",
    }
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert await AuthToken.count() == 0


async def test_failures_per_account_are_rate_limited(
    fx_client: httpx.AsyncClient, fx_city: City, fx_settings: Settings
) -> None:
    for _ in range(fx_settings.login_failures_per_account):
        answer = await fx_client.post("/auth/login", json=login_body("mother", "guess"))
        assert answer.status_code == 401
    # Now even the right password is refused until the window has passed.
    answer = await fx_client.post("/auth/login", json=login_body("mother"))
    assert answer.status_code == 429
    assert answer.json()["code"] == "auth.rate_limited"
    assert answer.headers["Retry-After"] == str(fx_settings.login_window_seconds)
    # Another account from the same address is not locked by this one's failures.
    assert (await fx_client.post("/auth/login", json=login_body("father"))).status_code == 200
    # When the failures age out of the window, the account opens again.
    old = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=fx_settings.login_window_seconds + 1)
    await LoginFailure.update({LoginFailure.failed_at: old}, force=True)
    assert (await fx_client.post("/auth/login", json=login_body("mother"))).status_code == 200


async def test_a_success_clears_the_account_count(
    fx_client: httpx.AsyncClient, fx_city: City, fx_settings: Settings
) -> None:
    for _ in range(fx_settings.login_failures_per_account - 1):
        await fx_client.post("/auth/login", json=login_body("aino", "guess"))
    assert (await fx_client.post("/auth/login", json=login_body("aino"))).status_code == 200
    for _ in range(fx_settings.login_failures_per_account - 1):
        await fx_client.post("/auth/login", json=login_body("aino", "guess"))
    assert (await fx_client.post("/auth/login", json=login_body("aino"))).status_code == 200


async def test_failures_per_address_are_rate_limited(
    fx_settings: Settings, fx_db: Engine[Any], fx_city: City, fx_make_app: AppMaker
) -> None:
    settings = dataclasses.replace(fx_settings, login_failures_per_address=3)
    app: Litestar = fx_make_app(settings, fx_db)
    guesser = httpx.ASGITransport(app=app, client=("198.51.100.7", 4000))
    other = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=guesser, base_url="http://t") as c:
        for name in ("mother", "father", "aino"):  # one failure each: no account limit is hit
            assert (await c.post("/auth/login", json=login_body(name, "x"))).status_code == 401
        answer = await c.post("/auth/login", json=login_body("teacher"))
        assert answer.status_code == 429
        async with httpx.AsyncClient(transport=other, base_url="http://t") as elsewhere:
            ok = await elsewhere.post("/auth/login", json=login_body("teacher"))
            assert ok.status_code == 200


BAD_BODIES = [
    ("malformed JSON", b'{"username": ', 400, "request.malformed", None),
    ("not an object", b"[1, 2]", 422, "request.invalid", None),
    ("wrong type", b'{"username": 5, "password": "p", "device_name": "d"}', 422,
     "request.invalid", "$.username"),
    ("missing field", b'{"username": "mother", "password": "p"}', 422, "request.invalid",
     "$.device_name"),
    ("unknown field", b'{"username": "mother", "password": "p", "device_name": "d", "admin": true}',
     422, "request.invalid", "$.admin"),
    ("empty username", b'{"username": "", "password": "p", "device_name": "d"}', 422,
     "request.invalid", "$.username"),
    ("too large", b'{"username": "' + b"a" * 2_000_000 + b'"}', 413, "request.too_large", None),
    ("NUL in a name", b'{"username": "a\\u0000", "password": "p", "device_name": "d"}', 422,
     "request.invalid", "$.username"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
async def test_bad_input_is_a_clear_4xx_and_stores_nothing(
    fx_client: httpx.AsyncClient,
    fx_city: City,
    body: bytes,
    status: int,
    code: str,
    field: str | None,
) -> None:
    answer = await fx_client.post(
        "/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert error["code"] == code
    assert error["message"]
    assert error.get("field") == field
    assert await AuthToken.count() == 0
    assert await LoginFailure.count() == 0


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "auth.required"),
        ("Bearer", "auth.invalid_token"),
        ("Bearer    ", "auth.invalid_token"),
        ("Basic bW90aGVyOnB3", "auth.invalid_token"),
        ("Bearer not-a-real-token", "auth.invalid_token"),
    ],
)
async def test_every_private_route_needs_a_valid_token(
    fx_app: Litestar, fx_client: httpx.AsyncClient, authorization: str | None, code: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    checked = 0
    for route in fx_app.routes:
        for handler in getattr(route, "route_handlers", []):
            if handler.opt.get("exclude_from_auth") or any(
                route.path.startswith(p.strip("^").rstrip("/")) for p in PUBLIC_PATHS
            ):
                continue
            path = re.sub(r"\{\w+:int\}", "1", route.path)
            # OPTIONS is Litestar's own answer listing the allowed methods: it reveals nothing.
            for method in handler.http_methods - {"OPTIONS"}:
                answer = await fx_client.request(method, path, headers=headers)
                assert answer.status_code == 401, (method, path)
                assert answer.json()["code"] == code
                checked += 1
    assert checked >= 3  # /me, /people/{id}, /auth/logout at least


async def test_public_routes_answer_without_a_token(fx_client: httpx.AsyncClient) -> None:
    health = await fx_client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["schema_version"]
    schema = await fx_client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert "/auth/login" in schema.json()["paths"]


async def test_unknown_route_and_method(fx_client: httpx.AsyncClient) -> None:
    missing = await fx_client.get("/no/such/thing")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    wrong = await fx_client.get("/auth/login")
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")


async def test_health_says_when_the_database_is_unreachable(
    fx_settings: Settings, fx_db: Engine[Any]
) -> None:
    from piccolo.engine.postgres import PostgresEngine

    from server.db.engine import bind_engine

    # Piccolo asks the server for its version as the engine is built, and warns when it can't.
    with pytest.warns(Warning, match="Unable to"):
        closed_port = PostgresEngine(
            config={"dsn": "postgresql://postgres@127.0.0.1:9/nowhere", "timeout": 2},
            extensions=(),
        )
    bind_engine(closed_port)
    try:
        app = create_app(fx_settings, engine=closed_port)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.get("/health")
            private = await client.get("/me", headers={"Authorization": "Bearer some-token"})
    finally:
        bind_engine(fx_db)
    assert private.status_code == 503
    assert private.json()["code"] == "server.unavailable"
    assert private.headers["Retry-After"] == "5"
    assert answer.status_code == 503
    assert answer.json() == {
        "code": "server.unavailable",
        "message": "The database is not reachable.",
    }


async def test_guesses_sent_all_at_once_are_limited_too(
    fx_client: httpx.AsyncClient, fx_city: City, fx_settings: Settings
) -> None:
    guesses = 4 * fx_settings.login_failures_per_account
    answers = await asyncio.gather(
        *(
            fx_client.post("/auth/login", json=login_body("mother", f"guess {n}"))
            for n in range(guesses)
        )
    )
    codes = [a.json()["code"] for a in answers]
    assert codes.count("auth.bad_credentials") <= fx_settings.login_failures_per_account
    assert codes.count("auth.rate_limited") >= guesses - fx_settings.login_failures_per_account
