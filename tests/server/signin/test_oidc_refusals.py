"""The relying party against a fake provider on loopback (joserfc-signed tokens): the happy
path, and every refusal of a bad answer, each of which must create nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio
from piccolo.engine.base import Engine

from server.clock import utc_now
from server.db.oneroster_tables import ExternalRef
from server.db.signin_tables import AccountEvent, OidcRequest, SigninHandoff
from server.db.tables import Account, AuthToken
from server.settings import Settings
from server.signin.oidc import JWKS_REFETCH_SECONDS
from tests.city import City
from tests.server.signin.conftest import fake_provider_config, signin_client
from tests.server.signin.fake_provider import CLIENT_ID, FakeProvider, unsigned
from tests.server.signin.steps import (
    AINO_NUMBER,
    BOUND,
    VERIFIER,
    callback,
    claims,
    redeem,
    sign_in,
    start,
)


@pytest_asyncio.fixture
async def fx_rp(
    fx_settings: Settings, fx_db: Engine[Any], fx_fake: FakeProvider, fx_city: City
) -> AsyncIterator[httpx.AsyncClient]:
    """Reppu with the fake provider configured, and Aino's oppijanumero in the roster."""
    await ExternalRef(
        source="fi.oppijanumero", kind="person", source_id=AINO_NUMBER, local_id=fx_city.aino
    ).save()
    async with signin_client(fx_settings, fx_db, fake_provider_config(fx_fake)) as client:
        yield client


async def _nothing_created() -> None:
    assert await SigninHandoff.count() == 0
    assert await AuthToken.count() == 0
    assert await Account.count() == 10  # the city's own


async def test_signing_in_gives_a_device_token_through_a_one_time_handoff(
    fx_rp: httpx.AsyncClient, fx_fake: FakeProvider, fx_city: City
) -> None:
    request = await start(fx_rp, device_name="Aino's phone")
    assert request["response_type"] == "code"
    assert request["code_challenge_method"] == "S256"
    assert request["redirect_uri"] == "http://reppu.test/auth/oidc/fake/callback"
    assert request["client_id"] == CLIENT_ID
    key = fx_fake.keys[0]
    fx_fake.grant("code-1", fx_fake.sign(claims(fx_fake, request), key), request["code_challenge"])
    location = await callback(fx_rp, request, "code-1")
    assert location.startswith("http://reppu.test/?handoff=")
    handoff = parse_qs(urlsplit(location).query)["handoff"][0]
    # The state, the code and the hand-off are stored only as keyed hashes.
    stored = str(await OidcRequest.select()) + str(await SigninHandoff.select())
    assert request["state"] not in stored
    assert handoff not in stored

    answer = await fx_rp.post(
        "/auth/oidc/handoff", json={"handoff": handoff, "handoff_verifier": VERIFIER}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["person_id"] == fx_city.aino
    assert body["roles"] == ["pupil"]
    headers = {"Authorization": f"Bearer {body['token']}"}
    assert (await fx_rp.get("/me", headers=headers)).status_code == 200
    token = await AuthToken.select(AuthToken.device_name).first()
    assert token is not None
    assert token["device_name"] == "Aino's phone"

    again = await fx_rp.post(
        "/auth/oidc/handoff", json={"handoff": handoff, "handoff_verifier": VERIFIER}
    )
    assert again.status_code == 400
    assert again.json()["code"] == "signin.handoff_invalid"
    # The same state cannot be brought back twice.
    replay = await fx_rp.get(
        "/auth/oidc/fake/callback", params={"state": request["state"], "code": "code-1"}
    )
    assert replay.status_code == 400
    assert replay.json()["code"] == "signin.state_mismatch"

    # Signing out revokes the token and names the provider's logout.
    out = await fx_rp.post("/auth/signout", headers=headers)
    assert out.status_code == 200
    end = urlsplit(out.json()["end_session_url"])
    assert f"{end.scheme}://{end.netloc}{end.path}" == f"{fx_fake.issuer}/logout"
    assert parse_qs(end.query)["client_id"] == [CLIENT_ID]
    assert (await fx_rp.get("/me", headers=headers)).status_code == 401
    kinds = [e["kind"] for e in await AccountEvent.select(AccountEvent.kind)]
    assert kinds.count("signin.succeeded") == 1


BAD_TOKENS: dict[str, Callable[[FakeProvider, dict[str, str]], str]] = {
    "forged signature": lambda f, r: f.sign(claims(f, r), f.new_key("k1")),
    "alg none": lambda f, r: unsigned(claims(f, r)),
    "wrong issuer": lambda f, r: f.sign(claims(f, r, iss="https://evil.example"), f.keys[0]),
    "wrong audience": lambda f, r: f.sign(claims(f, r, aud="another-client"), f.keys[0]),
    "another client, several audiences": lambda f, r: f.sign(
        claims(f, r, aud=[CLIENT_ID, "another-client"], azp="another-client"), f.keys[0]
    ),
    "expired": lambda f, r: f.sign(claims(f, r, exp=int(utc_now().timestamp()) - 120), f.keys[0]),
    "issued in the future": lambda f, r: f.sign(
        claims(f, r, iat=int(utc_now().timestamp()) + 3600), f.keys[0]
    ),
    "issued long ago": lambda f, r: f.sign(
        claims(f, r, iat=int(utc_now().timestamp()) - 3600), f.keys[0]
    ),
    "another nonce": lambda f, r: f.sign(claims(f, r, nonce="not-ours"), f.keys[0]),
    "no nonce": lambda f, r: f.sign(claims(f, r, nonce=None), f.keys[0]),
    "unknown kid": lambda f, r: f.sign(claims(f, r), f.new_key("k-unknown")),
    "not a token": lambda f, r: "not.a.token",
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_a_bad_id_token_is_refused_and_creates_nothing(
    fx_rp: httpx.AsyncClient, fx_fake: FakeProvider, case: str
) -> None:
    location = await sign_in(fx_rp, fx_fake, lambda r: BAD_TOKENS[case](fx_fake, r))
    assert location == "http://reppu.test/?signin_error=signin.invalid_id_token"
    await _nothing_created()
    refused = await AccountEvent.select().where(AccountEvent.kind == "signin.refused")
    assert [e["detail"] for e in refused] == ["signin.invalid_id_token"]


async def test_a_mismatched_or_missing_state_is_refused(
    fx_rp: httpx.AsyncClient, fx_fake: FakeProvider
) -> None:
    request = await start(fx_rp)
    fx_fake.grant("code-1", fx_fake.sign(claims(fx_fake, request), fx_fake.keys[0]), "x")
    for params in ({"state": "forged", "code": "code-1"}, {"code": "code-1"}):
        answer = await fx_rp.get("/auth/oidc/fake/callback", params=params)
        assert answer.status_code == 400
        assert answer.json()["code"] == "signin.state_mismatch"
    assert fx_fake.token_requests == []
    await _nothing_created()


async def test_a_replayed_code_is_refused_by_the_provider(
    fx_rp: httpx.AsyncClient, fx_fake: FakeProvider
) -> None:
    first = await sign_in(
        fx_rp, fx_fake, lambda r: fx_fake.sign(claims(fx_fake, r), fx_fake.keys[0])
    )
    assert "handoff=" in first
    second = await start(fx_rp)
    location = await callback(fx_rp, second, "code-1")  # the code of the first sign-in
    assert location == "http://reppu.test/?signin_error=signin.refused"
    assert await SigninHandoff.count() == 1


async def test_an_answer_naming_another_issuer_is_refused_before_its_code_is_used(
    fx_rp: httpx.AsyncClient, fx_fake: FakeProvider
) -> None:
    request = await start(fx_rp)
    token = fx_fake.sign(claims(fx_fake, request), fx_fake.keys[0])
    fx_fake.grant("code-1", token, request["code_challenge"])
    answer = await fx_rp.get(
        "/auth/oidc/fake/callback",
        params={"state": request["state"], "code": "code-1", "iss": "https://evil.example"},
    )
    assert answer.headers["location"] == "http://reppu.test/?signin_error=signin.refused"
    assert fx_fake.token_requests == []
    await _nothing_created()


async def test_a_cancelled_sign_in_goes_back_with_a_refusal(
    fx_rp: httpx.AsyncClient, fx_fake: FakeProvider
) -> None:
    request = await start(fx_rp)
    answer = await fx_rp.get(
        "/auth/oidc/fake/callback", params={"state": request["state"], "error": "access_denied"}
    )
    assert answer.headers["location"] == "http://reppu.test/?signin_error=signin.refused"
    assert fx_fake.token_requests == []


async def test_a_rotated_key_is_fetched_once_and_an_unknown_one_is_not_chased(
    fx_rp: httpx.AsyncClient, fx_fake: FakeProvider, fx_frozen_clock: Any
) -> None:
    import datetime as dt

    old = fx_fake.keys[0]
    first = await sign_in(fx_rp, fx_fake, lambda r: fx_fake.sign(claims(fx_fake, r), old))
    assert "handoff=" in first
    assert fx_fake.jwks_fetches == 1
    fx_frozen_clock.shift(dt.timedelta(seconds=JWKS_REFETCH_SECONDS + 1))
    new = fx_fake.new_key("k2")
    fx_fake.publish(old, new)
    rotated = await sign_in(fx_rp, fx_fake, lambda r: fx_fake.sign(claims(fx_fake, r), new))
    assert "handoff=" in rotated
    assert fx_fake.jwks_fetches == 2
    # Right after a fetch, a token naming a key nobody published costs no further fetch.
    stray = fx_fake.new_key("k3")
    refused = await sign_in(fx_rp, fx_fake, lambda r: fx_fake.sign(claims(fx_fake, r), stray))
    assert refused.endswith("signin_error=signin.invalid_id_token")
    assert fx_fake.jwks_fetches == 2


async def test_native_apps_return_only_to_allowed_redirect_uris(
    fx_rp: httpx.AsyncClient, fx_fake: FakeProvider
) -> None:
    # A private-use scheme and a loopback redirect on any port (RFC 8252 7.1 and 7.3).
    for allowed in ("fi.example.reppu:/signin", "http://127.0.0.1:53124/callback"):
        request = await start(fx_rp, return_to=allowed)
        token = fx_fake.sign(claims(fx_fake, request), fx_fake.keys[0])
        fx_fake.grant(f"code-{allowed}", token, request["code_challenge"])
        location = await callback(fx_rp, request, f"code-{allowed}")
        assert location.startswith(f"{allowed}?handoff=")
    for refused in (
        "https://evil.example/callback",
        "http://127.0.0.1:53124/other",
        "http://localhost:53124/callback",
        "fi.example.reppu:/other",
    ):
        answer = await fx_rp.get("/auth/oidc/fake/start", params={**BOUND, "return_to": refused})
        assert answer.status_code == 400, refused
        assert answer.json()["code"] == "signin.redirect_not_allowed"
    unknown = await fx_rp.get("/auth/oidc/nobody/start", params=BOUND)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "signin.unknown_provider"


async def test_bad_start_parameters_are_refused_and_store_nothing(fx_rp: httpx.AsyncClient) -> None:
    for params in ({"device_name": "a\x00b"}, {"device_name": "x" * 101}, {"device_name": ""}):
        answer = await fx_rp.get("/auth/oidc/fake/start", params={**BOUND, **params})
        assert answer.status_code == 422, params
        assert answer.json()["code"] == "request.invalid"
    assert await OidcRequest.count() == 0


async def test_a_handoff_is_redeemed_only_with_the_verifier_of_the_app_that_started_it(
    fx_rp: httpx.AsyncClient, fx_fake: FakeProvider
) -> None:
    # Login CSRF: a link with somebody else's ?handoff= signs nobody in, for the victim's
    # browser has not the verifier (RFC 8252 8.1: a public client proves it started it).
    started = await fx_rp.get("/auth/oidc/fake/start")
    assert started.status_code in (400, 422), started.text
    assert started.json()["code"] == "request.invalid"
    assert await OidcRequest.count() == 0
    location = await sign_in(
        fx_rp, fx_fake, lambda r: fx_fake.sign(claims(fx_fake, r), fx_fake.keys[0])
    )
    handoff = parse_qs(urlsplit(location).query)["handoff"][0]
    bare = await fx_rp.post("/auth/oidc/handoff", json={"handoff": handoff})
    assert bare.status_code in (400, 422)
    assert bare.json()["code"] == "request.invalid"
    wrong = await redeem(
        fx_rp, location, verifier="an-attacker-guesses-a-verifier-of-43-characters"
    )
    assert wrong.status_code == 400, wrong.text
    assert wrong.json()["code"] == "signin.handoff_invalid"
    assert await AuthToken.count() == 0
    # One try per code: not even the right verifier redeems it after a wrong one.
    late = await redeem(fx_rp, location)
    assert late.json()["code"] == "signin.handoff_invalid"
    assert await AuthToken.count() == 0
    right = await redeem(
        fx_rp,
        await sign_in(fx_rp, fx_fake, lambda r: fx_fake.sign(claims(fx_fake, r), fx_fake.keys[0])),
    )
    assert right.status_code == 200, right.text
    assert right.headers["cache-control"] == "no-store"
