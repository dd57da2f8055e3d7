"""Sign-in against npm's oidc-provider (OpenID Certified) on loopback, configured as two
providers: one like MPASSid (pupils and staff, client_secret_basic) and one like Suomi.fi
(guardians, private_key_jwt, strong identification as ``acr``). It proves the happy path for
both, and the checks a provider makes: a code works once, and only for its own client."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import ECKey
from piccolo.engine.base import Engine

from server.db.oneroster_tables import ExternalRef
from server.db.signin_tables import PersonIdentifier, SigninHandoff
from server.settings import Settings
from server.signin.config import ClaimMatch, OidcProvider
from server.signin.matching import identifier_digest
from tests.city import City
from tests.server.signin.conftest import (
    LEARNER_CLAIM,
    NATIONAL_ID_CLAIM,
    signin_client,
    signin_settings,
)
from tests.server.signin.oidc_provider import running_oidc_provider
from tests.server.signin.steps import AINO_NUMBER, BOUND, VERIFIER

pytestmark = pytest.mark.slow

STAFF_CLAIM = "urn:mpass.id:uid"
SCHOOL_CLAIM = "urn:mpass.id:schoolCode"
MARIA = "131052-308T"
LOA3 = "http://ftn.ficora.fi/2017/loa3"
MPASS_SECRET = "the MPASSid-like provider's client secret"
CALLBACK = "http://reppu.test/auth/oidc/{}/callback"
CLIENT_KEY = ECKey.generate_key("P-256", parameters={"kid": "reppu-1", "use": "sig"})


@pytest.fixture
def fx_mpass() -> Iterator[str]:
    config = {
        "clients": [
            {
                "client_id": "reppu",
                "client_secret": MPASS_SECRET,
                "redirect_uris": [CALLBACK.format("mpassid")],
                "post_logout_redirect_uris": ["http://reppu.test/"],
                "token_endpoint_auth_method": "client_secret_basic",
            },
            {
                "client_id": "reppu-post",
                "client_secret": MPASS_SECRET,
                "redirect_uris": [CALLBACK.format("mpassid")],
                "token_endpoint_auth_method": "client_secret_post",
            },
            {
                "client_id": "another-service",
                "client_secret": "another service's secret",
                "redirect_uris": [CALLBACK.format("mpassid")],
                "token_endpoint_auth_method": "client_secret_basic",
            },
        ],
        "scopes": {"mpass": [LEARNER_CLAIM, STAFF_CLAIM, SCHOOL_CLAIM]},
        "accounts": {
            "aino": {LEARNER_CLAIM: AINO_NUMBER, SCHOOL_CLAIM: "00001"},
            "tiina": {STAFF_CLAIM: "tiina.opettaja@koivukyla", SCHOOL_CLAIM: "00001"},
            # The same staff identifier at another school is another person.
            "tiina-elsewhere": {STAFF_CLAIM: "tiina.opettaja@koivukyla", SCHOOL_CLAIM: "00002"},
            "stranger": {LEARNER_CLAIM: "1.2.246.562.24.99999999999"},
        },
    }
    with running_oidc_provider(config) as issuer:
        yield issuer


@pytest.fixture
def fx_suomifi() -> Iterator[str]:
    config = {
        "clients": [
            {
                "client_id": "reppu-suomifi",
                "redirect_uris": [CALLBACK.format("suomifi")],
                "token_endpoint_auth_method": "private_key_jwt",
                "token_endpoint_auth_signing_alg": "ES256",
                "jwks": {"keys": [CLIENT_KEY.as_dict(private=False)]},
            }
        ],
        "scopes": {"suomifi": [NATIONAL_ID_CLAIM]},
        "acrValues": ["http://ftn.ficora.fi/2017/loa2", LOA3],
        "accounts": {"maria": {NATIONAL_ID_CLAIM: MARIA}},
    }
    with running_oidc_provider(config) as issuer:
        yield issuer


def _mpass(issuer: str, **changes: Any) -> OidcProvider:
    base = OidcProvider(
        name="mpassid",
        title="MPASSid",
        issuer=issuer,
        client_id="reppu",
        client_auth="client_secret_basic",
        client_secret=MPASS_SECRET,
        roles=("pupil", "teacher", "principal"),
        scopes=("openid", "mpass"),
        matches=(
            ClaimMatch(LEARNER_CLAIM, "oppijanumero"),
            ClaimMatch(STAFF_CLAIM, "staff_id", SCHOOL_CLAIM),
        ),
    )
    return dataclasses.replace(base, **changes)


def _suomifi(issuer: str) -> OidcProvider:
    return OidcProvider(
        name="suomifi",
        title="Suomi.fi",
        issuer=issuer,
        client_id="reppu-suomifi",
        client_auth="private_key_jwt",
        private_key=json.dumps(CLIENT_KEY.as_dict(private=True)),
        roles=("guardian",),
        scopes=("openid", "suomifi"),
        matches=(ClaimMatch(NATIONAL_ID_CLAIM, "national_id"),),
        acr_values=(LOA3,),
    )


async def _through_provider(location: str, person: str) -> str:
    """What the person's browser does at the provider: follow its redirects (signing in as
    ``person``) until it sends the browser back to Reppu; returns that URL."""
    url = f"{location}&login_hint={person}"
    async with httpx.AsyncClient(follow_redirects=False, timeout=30) as browser:
        for _ in range(10):
            answer = await browser.get(url)
            assert answer.status_code in (302, 303), answer.text
            url = str(httpx.URL(url).join(answer.headers["location"]))
            if url.startswith("http://reppu.test/"):
                return url
    raise AssertionError("the provider never sent the browser back")


async def _sign_in(client: httpx.AsyncClient, provider: str, person: str) -> str:
    """Start at Reppu, sign in at the provider, come back: where Reppu sends the browser."""
    started = await client.get(f"/auth/oidc/{provider}/start", params=BOUND)
    assert started.status_code == 302, started.text
    back = await _through_provider(started.headers["location"], person)
    answer = await client.get(back.removeprefix("http://reppu.test"))
    assert answer.status_code == 302, answer.text
    return str(answer.headers["location"])


async def _device_token(client: httpx.AsyncClient, location: str) -> dict[str, Any]:
    handoff = parse_qs(urlsplit(location).query)["handoff"][0]
    answer = await client.post(
        "/auth/oidc/handoff", json={"handoff": handoff, "handoff_verifier": VERIFIER}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def _roster(city: City) -> None:
    await ExternalRef(
        source="fi.oppijanumero", kind="person", source_id=AINO_NUMBER, local_id=city.aino
    ).save()
    signin = signin_settings()
    await PersonIdentifier.insert(
        PersonIdentifier(
            person=city.teacher,
            scheme="staff_id",
            digest=identifier_digest(signin, "staff_id", "00001/tiina.opettaja@koivukyla"),
        ),
        PersonIdentifier(
            person=city.mother,
            scheme="national_id",
            digest=identifier_digest(signin, "national_id", MARIA),
        ),
    )


async def test_pupils_staff_and_guardians_sign_in_through_their_providers(
    fx_settings: Settings,
    fx_db: Engine[Any],
    fx_city: City,
    fx_mpass: str,
    fx_suomifi: str,
) -> None:
    await _roster(fx_city)
    async with signin_client(fx_settings, fx_db, _mpass(fx_mpass), _suomifi(fx_suomifi)) as client:
        listed = (await client.get("/auth/providers")).json()["providers"]
        assert [p["title"] for p in listed] == ["MPASSid", "Suomi.fi"]

        pupil = await _device_token(client, await _sign_in(client, "mpassid", "aino"))
        assert pupil["person_id"] == fx_city.aino
        teacher = await _device_token(client, await _sign_in(client, "mpassid", "tiina"))
        assert teacher["person_id"] == fx_city.teacher
        guardian = await _device_token(client, await _sign_in(client, "suomifi", "maria"))
        assert guardian["person_id"] == fx_city.mother
        assert guardian["roles"] == ["guardian"]

        for body in (pupil, teacher, guardian):
            headers = {"Authorization": f"Bearer {body['token']}"}
            assert (await client.get("/me", headers=headers)).status_code == 200

        # Signing out ends the device's token and names the provider's own logout.
        headers = {"Authorization": f"Bearer {pupil['token']}"}
        out = (await client.post("/auth/signout", headers=headers)).json()
        assert out["end_session_url"].startswith(f"{fx_mpass}/session/end?")
        assert (await client.get("/me", headers=headers)).status_code == 401

        stranger = await _sign_in(client, "mpassid", "stranger")
        assert stranger.endswith("signin_error=signin.no_match")
        elsewhere = await _sign_in(client, "mpassid", "tiina-elsewhere")
        assert elsewhere.endswith("signin_error=signin.no_match")


async def test_the_provider_refuses_a_replayed_code_and_another_clients_code(
    fx_settings: Settings, fx_db: Engine[Any], fx_city: City, fx_mpass: str
) -> None:
    await _roster(fx_city)
    async with signin_client(fx_settings, fx_db, _mpass(fx_mpass)) as client:
        first = await client.get("/auth/oidc/mpassid/start", params=BOUND)
        back = await _through_provider(first.headers["location"], "aino")
        code = parse_qs(urlsplit(back).query)["code"][0]
        assert (
            "handoff="
            in (await client.get(back.removeprefix("http://reppu.test"))).headers["location"]
        )
        handoffs = await SigninHandoff.count()

        # The same code again, under a fresh sign-in of ours.
        second = await client.get("/auth/oidc/mpassid/start", params=BOUND)
        state = parse_qs(urlsplit(second.headers["location"]).query)["state"][0]
        replay = await client.get(
            "/auth/oidc/mpassid/callback", params={"state": state, "code": code}
        )
        assert replay.headers["location"].endswith("signin_error=signin.refused")

        # A code the provider issued to another service, brought to our callback.
        third = await client.get("/auth/oidc/mpassid/start", params=BOUND)
        ours = parse_qs(urlsplit(third.headers["location"]).query)
        theirs = third.headers["location"].replace("client_id=reppu&", "client_id=another-service&")
        assert theirs != third.headers["location"]
        stolen = parse_qs(urlsplit(await _through_provider(theirs, "aino")).query)["code"][0]
        answer = await client.get(
            "/auth/oidc/mpassid/callback", params={"state": ours["state"][0], "code": stolen}
        )
        assert answer.headers["location"].endswith("signin_error=signin.refused")
        assert await SigninHandoff.count() == handoffs

    # The secret in the body instead of Basic, as a provider registered so requires.
    post = _mpass(fx_mpass, client_id="reppu-post", client_auth="client_secret_post")
    async with signin_client(fx_settings, fx_db, post) as client:
        assert "handoff=" in await _sign_in(client, "mpassid", "aino")

    # A wrong client secret (a misconfiguration) is refused by the provider too.
    async with signin_client(
        fx_settings, fx_db, _mpass(fx_mpass, client_secret="not the secret")
    ) as client:
        assert (await _sign_in(client, "mpassid", "aino")).endswith("signin_error=signin.refused")
