"""The steps of a sign-in through the fake provider, as a browser would take them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from server.clock import utc_now
from server.signin.flow import handoff_challenge_of
from tests.server.signin.conftest import LEARNER_CLAIM
from tests.server.signin.fake_provider import CLIENT_ID, FakeProvider

AINO_NUMBER = "1.2.246.562.24.10000000001"
VERIFIER = "the-handoff-verifier-of-the-app-that-started-it"
"""The app's ``handoff_verifier``; :data:`CHALLENGE` is its S256 challenge."""
CHALLENGE = handoff_challenge_of(VERIFIER)
BOUND = {"handoff_challenge": CHALLENGE}
"""The query parameter every ``/start`` needs."""


async def start(client: httpx.AsyncClient, provider: str = "fake", **params: str) -> dict[str, str]:
    answer = await client.get(f"/auth/oidc/{provider}/start", params={**BOUND, **params})
    assert answer.status_code == 302, answer.text
    assert answer.headers["cache-control"] == "no-store"
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    return {name: values[0] for name, values in query.items()}


def claims(fake: FakeProvider, request: dict[str, str], **changes: Any) -> dict[str, Any]:
    now = int(utc_now().timestamp())
    claims: dict[str, Any] = {
        "iss": fake.issuer,
        "sub": "mpass-aino",
        "aud": CLIENT_ID,
        "exp": now + 300,
        "iat": now,
        "nonce": request["nonce"],
        LEARNER_CLAIM: AINO_NUMBER,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


async def callback(
    client: httpx.AsyncClient, request: dict[str, str], code: str, provider: str = "fake"
) -> str:
    answer = await client.get(
        f"/auth/oidc/{provider}/callback", params={"state": request["state"], "code": code}
    )
    assert answer.status_code == 302, answer.text
    return str(answer.headers["location"])


async def sign_in(
    client: httpx.AsyncClient,
    fake: FakeProvider,
    token: Callable[[dict[str, str]], str],
    provider: str = "fake",
) -> str:
    """Start, let the provider grant a code for ``token(request)``, come back: the
    redirect's location."""
    request = await start(client, provider)
    code = f"code-{len(fake.grants) + 1}"
    fake.grant(code, token(request), request["code_challenge"])
    return await callback(client, request, code, provider)


async def redeem(
    client: httpx.AsyncClient, location: str, verifier: str = VERIFIER
) -> httpx.Response:
    """Post the hand-off code of the redirect's ``location`` with the app's verifier."""
    handoff = parse_qs(urlsplit(location).query)["handoff"][0]
    return await client.post(
        "/auth/oidc/handoff", json={"handoff": handoff, "handoff_verifier": verifier}
    )
