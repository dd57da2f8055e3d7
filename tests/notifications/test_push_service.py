"""The push-service emulator itself: it accepts what a real service accepts, refuses the rest.

Valid messages are built with the ``webpush`` package (the encryption Reppu sends with), with
the VAPID JWT signed here, because webpush's own ``aud`` drops a non-default port.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from webpush import WebPush  # type: ignore[import-untyped]
from webpush.types import WebPushKeys, WebPushSubscription  # type: ignore[import-untyped]

from tests.push_service import MAX_BODY_BYTES, PushService, Subscription

ORIGIN = "http://push.test:8443"
SUBJECT = "mailto:ops@reppu.test"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


VAPID_KEY = ec.generate_private_key(ec.SECP256R1())
VAPID_PUBLIC = _b64url(
    VAPID_KEY.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
)
SENDER = WebPush(
    private_key=VAPID_KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
    public_key=VAPID_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
    subscriber="ops@reppu.test",
    ttl=60,
)


def vapid(
    *,
    aud: str = ORIGIN,
    exp: float | None = None,
    sub: str | None = SUBJECT,
    signing_key: ec.EllipticCurvePrivateKey = VAPID_KEY,
    k: str = VAPID_PUBLIC,
) -> str:
    claims: dict[str, Any] = {
        "aud": aud,
        "exp": int(time.time()) + 12 * 3600 if exp is None else exp,
    }
    if sub is not None:
        claims["sub"] = sub
    return f"vapid t={jwt.encode(claims, signing_key, algorithm='ES256')}, k={k}"


def encrypt(sub: Subscription, plaintext: bytes) -> tuple[bytes, dict[str, str]]:
    """Body and headers as webpush builds them (its own, port-less VAPID header included)."""
    message = SENDER.get(
        plaintext,
        WebPushSubscription(
            endpoint=sub.endpoint, keys=WebPushKeys(auth=sub.auth, p256dh=sub.p256dh)
        ),
    )
    return message.encrypted, dict(message.headers)


def good_push(sub: Subscription, plaintext: bytes = b'{"n":1}') -> tuple[bytes, dict[str, str]]:
    body, headers = encrypt(sub, plaintext)
    headers["authorization"] = vapid()
    return body, headers


@pytest.fixture
def service() -> PushService:
    return PushService(ORIGIN, VAPID_PUBLIC)


@pytest.fixture
async def client(service: PushService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as c:
        yield c


async def test_good_push_is_accepted_and_decrypts(
    service: PushService, client: httpx.AsyncClient
) -> None:
    sub = service.subscribe()
    assert sub.endpoint == f"{ORIGIN}/push/{sub.token}"
    point = _b64url_decode(sub.p256dh)
    assert len(point) == 65
    assert point[0] == 4
    assert len(_b64url_decode(sub.auth)) == 16

    body, headers = good_push(sub, "Koulu suljettu tänään".encode())
    headers |= {"urgency": "high", "topic": "closure-42"}
    response = await client.post(sub.endpoint, content=body, headers=headers)

    assert response.status_code == 201, response.text
    assert response.headers["location"].startswith(f"{ORIGIN}/m/")
    assert response.headers["ttl"] == "60"
    [got] = service.received_for(sub.token)
    assert got.plaintext == "Koulu suljettu tänään".encode()
    assert (got.ttl, got.urgency, got.topic) == (60, "high", "closure-42")
    assert service.received == [got]
    assert service.accepted == 1
    assert not service.refused
    assert service.first_accept_at == service.last_accept_at == got.received_at


async def test_vapid_header_is_verified_once_and_refused_once_expired() -> None:
    now = [time.time()]
    service = PushService(ORIGIN, VAPID_PUBLIC, clock=lambda: now[0])
    transport = httpx.ASGITransport(app=service.app)
    sub = service.subscribe()
    header = vapid(exp=int(now[0]) + 600)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as c:
        for _ in range(3):
            body, headers = encrypt(sub, b"x")
            headers["authorization"] = header
            assert (await c.post(sub.endpoint, content=body, headers=headers)).status_code == 201
        assert service.vapid_verifications == 1
        now[0] += 601
        response = await c.post(sub.endpoint, content=body, headers=headers)
    assert response.status_code == 403
    assert "expired" in response.json()["message"]


async def test_aud_without_the_port_is_refused(
    service: PushService, client: httpx.AsyncClient
) -> None:
    sub = service.subscribe()
    body, headers = encrypt(sub, b"x")  # webpush's own header: aud "http://push.test"
    response = await client.post(sub.endpoint, content=body, headers=headers)
    assert response.status_code == 403
    assert "aud" in response.json()["message"]
    assert service.refused[403] == 1
    assert service.accepted == 0
    assert service.received == []


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        # Expiry times relative to the test's clock (a number of seconds from now), never
        # read at import: collection happens before the test's clock is set.
        ({"exp": 1}, "expired"),
        ({"exp": ("from now", -5)}, "expired"),
        ({"exp": ("from now", 25 * 3600)}, "24 hours"),
        ({"sub": None}, "sub"),
        ({"sub": "ops@reppu.test"}, "sub"),
        ({"aud": ORIGIN + "/"}, "aud"),
        ({"aud": "https://push.test:8443"}, "aud"),
    ],
)
async def test_bad_claims_are_refused(
    service: PushService, client: httpx.AsyncClient, claims: dict[str, Any], reason: str
) -> None:
    sub = service.subscribe()
    body, headers = encrypt(sub, b"x")
    if isinstance(claims.get("exp"), tuple):
        claims = {**claims, "exp": int(time.time()) + claims["exp"][1]}
    headers["authorization"] = vapid(**claims)
    response = await client.post(sub.endpoint, content=body, headers=headers)
    assert response.status_code == 403
    assert reason in response.json()["message"]


async def test_bad_signature_and_foreign_key_are_refused(
    service: PushService, client: httpx.AsyncClient
) -> None:
    sub = service.subscribe()
    other = ec.generate_private_key(ec.SECP256R1())
    other_public = _b64url(
        other.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    )
    body, headers = encrypt(sub, b"x")

    headers["authorization"] = vapid(signing_key=other)  # k= is ours, signed by another key
    response = await client.post(sub.endpoint, content=body, headers=headers)
    assert response.status_code == 403
    assert "signature" in response.json()["message"]

    headers["authorization"] = vapid(signing_key=other, k=other_public)  # valid, wrong server
    assert (await client.post(sub.endpoint, content=body, headers=headers)).status_code == 403

    # Without a required key any consistent one is fine.
    open_service = PushService(ORIGIN)
    open_sub = open_service.subscribe()
    body, headers = encrypt(open_sub, b"x")
    headers["authorization"] = vapid(signing_key=other, k=other_public)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=open_service.app), base_url=ORIGIN
    ) as c:
        assert (await c.post(open_sub.endpoint, content=body, headers=headers)).status_code == 201


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer abc",
        "vapid t=abc",
        f"vapid k={VAPID_PUBLIC}",
        f"vapid t=not.a.jwt, k={VAPID_PUBLIC}",
    ],
)
async def test_missing_or_malformed_authorization_is_401(authorization: str | None) -> None:
    service = PushService(ORIGIN)
    sub = service.subscribe()
    body, headers = good_push(sub)
    del headers["authorization"]
    if authorization is not None:
        headers["authorization"] = authorization
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.app), base_url=ORIGIN
    ) as c:
        response = await c.post(sub.endpoint, content=body, headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize("ttl", [None, "", "-1", "1.5", "soon"])
async def test_missing_or_bad_ttl_is_400(
    service: PushService, client: httpx.AsyncClient, ttl: str | None
) -> None:
    sub = service.subscribe()
    body, headers = good_push(sub)
    del headers["ttl"]
    if ttl is not None:
        headers["ttl"] = ttl
    response = await client.post(sub.endpoint, content=body, headers=headers)
    assert response.status_code == 400
    assert "TTL" in response.json()["message"]


async def test_ttl_zero_is_accepted(service: PushService, client: httpx.AsyncClient) -> None:
    sub = service.subscribe()
    body, headers = good_push(sub)
    headers["ttl"] = "0"
    assert (await client.post(sub.endpoint, content=body, headers=headers)).status_code == 201
    assert service.received[0].ttl == 0


@pytest.mark.parametrize("encoding", [None, "aesgcm", "gzip"])
async def test_wrong_content_encoding_is_refused(
    service: PushService, client: httpx.AsyncClient, encoding: str | None
) -> None:
    sub = service.subscribe()
    body, headers = good_push(sub)
    del headers["content-encoding"]
    if encoding is not None:
        headers["content-encoding"] = encoding
    response = await client.post(sub.endpoint, content=body, headers=headers)
    assert response.status_code == 415


async def test_body_over_4096_bytes_is_413(service: PushService, client: httpx.AsyncClient) -> None:
    sub = service.subscribe()
    body, headers = good_push(sub, b"a" * 3993)  # 3,993 + 103 bytes of overhead = 4,096
    assert len(body) == MAX_BODY_BYTES
    assert (await client.post(sub.endpoint, content=body, headers=headers)).status_code == 201

    body, headers = good_push(sub, b"a" * 3994)
    response = await client.post(sub.endpoint, content=body, headers=headers)
    assert response.status_code == 413
    assert service.accepted == 1


async def test_streamed_oversized_body_is_413(
    service: PushService, client: httpx.AsyncClient
) -> None:
    sub = service.subscribe()
    _, headers = good_push(sub)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    response = await client.post(sub.endpoint, content=chunks(), headers=headers)
    assert response.status_code == 413


async def test_payload_that_does_not_decrypt_is_400(
    service: PushService, client: httpx.AsyncClient
) -> None:
    sub, other = service.subscribe(), service.subscribe()
    body, headers = good_push(other)  # encrypted for another device
    response = await client.post(sub.endpoint, content=body, headers=headers)
    assert response.status_code == 400
    assert "decrypt" in response.json()["message"]

    body, headers = good_push(sub)
    tampered = body[:-1] + bytes([body[-1] ^ 1])
    assert (await client.post(sub.endpoint, content=tampered, headers=headers)).status_code == 400
    assert (await client.post(sub.endpoint, content=b"", headers=headers)).status_code == 400
    assert service.received == []


@pytest.mark.parametrize(
    ("name", "value"),
    [("urgency", "urgent"), ("topic", "x" * 33), ("topic", "has space"), ("topic", "a.b")],
)
async def test_bad_urgency_or_topic_is_400(
    service: PushService, client: httpx.AsyncClient, name: str, value: str
) -> None:
    sub = service.subscribe()
    body, headers = good_push(sub)
    headers[name] = value
    assert (await client.post(sub.endpoint, content=body, headers=headers)).status_code == 400


async def test_unknown_token_is_404_and_unsubscribed_is_410(
    service: PushService, client: httpx.AsyncClient
) -> None:
    sub = service.subscribe()
    body, headers = good_push(sub)
    assert (
        await client.post(f"{ORIGIN}/push/nope", content=body, headers=headers)
    ).status_code == 404

    service.unsubscribe(sub.token)
    response = await client.post(sub.endpoint, content=body, headers=headers)
    assert response.status_code == 410
    assert service.refused == {404: 1, 410: 1}
    with pytest.raises(KeyError):
        service.unsubscribe("nope")


async def test_fail_next_injects_answers_without_recording(
    service: PushService, client: httpx.AsyncClient
) -> None:
    sub, other = service.subscribe(), service.subscribe()
    service.fail_next(sub.token, 429, retry_after=30)
    service.fail_next(None, 503, count=2)

    body, headers = good_push(sub)
    response = await client.post(sub.endpoint, content=body, headers=headers)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "30"
    for _ in range(2):  # then the two for any token
        response = await client.post(sub.endpoint, content=body, headers=headers)
        assert response.status_code == 503
        assert "retry-after" not in response.headers
    assert (await client.post(sub.endpoint, content=body, headers=headers)).status_code == 201

    service.fail_next(sub.token, 410)
    body, headers = good_push(other)
    assert (await client.post(other.endpoint, content=body, headers=headers)).status_code == 201
    assert service.injected == {429: 1, 503: 2}
    assert service.refused == {429: 1, 503: 2}
    assert [r.token for r in service.received] == [sub.token, other.token]


def test_fail_next_checks_its_arguments(service: PushService) -> None:
    with pytest.raises(ValueError, match="status"):
        service.fail_next(None, 201)
    with pytest.raises(ValueError, match="count"):
        service.fail_next(None, 500, count=0)


async def test_subscribe_many_shares_keys_not_secrets(
    service: PushService, client: httpx.AsyncClient
) -> None:
    subs = service.subscribe_many(100)
    assert len({s.token for s in subs}) == 100
    assert len({s.auth for s in subs}) == 100
    assert 1 < len({s.p256dh for s in subs}) <= 32
    for sub in (subs[0], subs[-1]):
        body, headers = good_push(sub, sub.token.encode())
        assert (await client.post(sub.endpoint, content=body, headers=headers)).status_code == 201
        assert service.received_for(sub.token)[0].plaintext == sub.token.encode()
    # The same key pair but another token's auth secret does not decrypt.
    twin = next(s for s in subs[1:] if s.p256dh == subs[0].p256dh)
    body, headers = good_push(subs[0])
    assert (await client.post(twin.endpoint, content=body, headers=headers)).status_code == 400


def test_seeded_services_make_the_same_subscriptions() -> None:
    a, b = PushService(ORIGIN, seed=7), PushService(ORIGIN, seed=7)
    assert a.subscribe_many(5) == b.subscribe_many(5)
    assert a.subscribe() == b.subscribe()
    assert PushService(ORIGIN, seed=8).subscribe_many(5) != a.subscribe_many(5)


def test_origin_must_be_an_origin() -> None:
    with pytest.raises(ValueError, match="origin"):
        PushService("push.test:8443")
    assert PushService("http://push.test:8443/").origin == ORIGIN


async def test_admin_endpoints(service: PushService, client: httpx.AsyncClient) -> None:
    response = await client.post("/_admin/subscribe", params={"n": 3})
    assert response.status_code == 200
    subs = [Subscription(**s) for s in response.json()]
    assert len(subs) == 3
    assert all(s.endpoint == f"{ORIGIN}/push/{s.token}" for s in subs)

    body, headers = good_push(subs[0], b"hello")
    assert (await client.post(subs[0].endpoint, content=body, headers=headers)).status_code == 201

    fail = {"token": None, "status": 429, "count": 1, "retry_after": 5}
    assert (await client.post("/_admin/fail", json=fail)).status_code == 200
    response = await client.post(subs[1].endpoint, content=body, headers=headers)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "5"

    assert (await client.post("/_admin/unsubscribe", json={"token": subs[2].token})).is_success
    body, headers = good_push(subs[2])
    assert (await client.post(subs[2].endpoint, content=body, headers=headers)).status_code == 410

    stats = (await client.get("/_admin/stats")).json()
    assert stats["accepted"] == 1
    assert stats["refused"] == {"410": 1, "429": 1}
    assert stats["injected"] == {"429": 1}
    assert stats["first_accept_at"] == stats["last_accept_at"] == service.last_accept_at
    assert stats["subscriptions"] == 2

    received = (await client.get("/_admin/received", params={"token": subs[0].token})).json()
    assert [r["text"] for r in received] == ["hello"]

    assert (await client.post("/_admin/reset")).is_success
    assert (await client.get("/_admin/stats")).json()["accepted"] == 0

    assert (await client.post("/_admin/fail", json={"status": "x"})).status_code == 400
    assert (await client.post("/_admin/unsubscribe", json={"token": "nope"})).status_code == 404
    assert (await client.get("/_admin/nothing")).status_code == 404
    assert (await client.get(subs[0].endpoint)).status_code == 405
