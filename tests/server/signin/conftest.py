"""Sign-in fixtures: a fake OpenID Connect provider on loopback, and Reppu configured with
providers."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from piccolo.engine.base import Engine

from server.app import create_app
from server.settings import Settings
from server.signin.config import ClaimMatch, OidcProvider, SigninSettings
from tests.server.signin.fake_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeProvider,
    running_fake_provider,
)

LEARNER_CLAIM = "urn:mpass.id:learnerId"
NATIONAL_ID_CLAIM = "urn:oid:1.2.246.21"
IDENTITY_KEY = b"an identity key of the tests, 32+"


@pytest.fixture
def fx_fake() -> Iterator[FakeProvider]:
    with running_fake_provider() as provider:
        provider.publish(provider.new_key("k1"))
        yield provider


def fake_provider_config(fake: FakeProvider, **changes: Any) -> OidcProvider:
    """The fake provider as MPASSid would be configured (learner number), unless changed."""
    base = OidcProvider(
        name="fake",
        title="Fake MPASSid",
        issuer=fake.issuer,
        client_id=CLIENT_ID,
        client_auth="client_secret_basic",
        client_secret=CLIENT_SECRET,
        matches=(ClaimMatch(LEARNER_CLAIM, "oppijanumero"),),
        algorithms=("ES256",),
    )
    return dataclasses.replace(base, **changes)


def signin_settings(*providers: OidcProvider) -> SigninSettings:
    return SigninSettings(
        providers=providers,
        public_url="http://reppu.test",
        identity_key=IDENTITY_KEY,
        app_redirect_uris=("fi.example.reppu:/signin", "http://127.0.0.1/callback"),
    )


@asynccontextmanager
async def signin_client(
    settings: Settings, engine: Engine[Any], *providers: OidcProvider
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of Reppu configured with ``providers``."""
    configured = dataclasses.replace(settings, signin=signin_settings(*providers))
    app = create_app(configured, engine=engine)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://reppu.test") as client:
            yield client
    finally:
        await app.state.reppu.live.stop()  # its watch would outlive the test
