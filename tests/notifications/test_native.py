"""The native channels' pure parts: what goes in a request and what an answer means."""

from __future__ import annotations

import datetime as dt
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from notifications import apns, fcm
from notifications.webpush import Verdict

NOW = dt.datetime(2026, 11, 24, 8, 15, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=1)


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_the_fcm_assertion_is_what_google_asks_for() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signed = fcm.assertion(
        client_email="a@p.iam.gserviceaccount.com",
        private_key=_pem(key),
        token_uri="https://oauth2.googleapis.com/token",
        now=NOW,
    )
    claims = jwt.decode(
        signed,
        key.public_key(),
        algorithms=["RS256"],
        audience="https://oauth2.googleapis.com/token",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == "a@p.iam.gserviceaccount.com"
    assert claims["scope"] == fcm.SCOPE
    assert claims["exp"] - claims["iat"] == 3600


def test_the_apns_provider_token_names_key_and_team() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signed = apns.provider_token(private_key=_pem(key), key_id="K1", team_id="T1", now=NOW)
    assert jwt.get_unverified_header(signed) == {"alg": "ES256", "kid": "K1", "typ": "JWT"}
    # Signed at the test's own NOW, not at the suite's clock: only the signature is checked.
    claims = jwt.decode(
        signed, key.public_key(), algorithms=["ES256"], options={"verify_iat": False}
    )
    # iat is the start of NOW's 30-minute period: 08:15 is in the one from 08:00.
    assert claims == {
        "iss": "T1",
        "iat": int(dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC).timestamp()),
    }


def test_every_process_signs_the_same_apns_token_in_a_period() -> None:
    # Each worker process signs on its own; Apple must see one token per key, renewed no
    # more often than every 20 minutes and never older than an hour.
    pem = _pem(ec.generate_private_key(ec.SECP256R1()))

    def sign(at: dt.datetime) -> str:
        return apns.provider_token(private_key=pem, key_id="K1", team_id="T1", now=at)

    first = sign(dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC))
    assert sign(NOW) == first
    assert sign(dt.datetime(2026, 11, 24, 8, 29, 59, tzinfo=dt.UTC)) == first
    later = sign(dt.datetime(2026, 11, 24, 8, 30, tzinfo=dt.UTC))
    assert later != first
    assert jwt.decode(later, options={"verify_signature": False})["iat"] == int(
        dt.datetime(2026, 11, 24, 8, 30, tzinfo=dt.UTC).timestamp()
    )
    # Apple's floor between renewals, and a token's longest life:
    assert dt.timedelta(minutes=20) <= apns.TOKEN_PERIOD <= dt.timedelta(minutes=60)


def test_fcm_message_carries_the_payload_as_data() -> None:
    body = json.loads(
        fcm.message(
            token="t:1",
            payload=b'{"pull":1,"kind":"digest","count":3}',
            title="",
            body="",
            collapse="digest",
            ttl=-5,
            urgent=False,
        )
    )["message"]
    assert body["data"] == {"reppu": '{"pull":1,"kind":"digest","count":3}'}
    assert "notification" not in body
    assert body["android"] == {"priority": "NORMAL", "ttl": "0s", "collapse_key": "digest"}


def test_apns_headers_keep_apples_limits() -> None:
    headers = apns.headers(topic="fi.reppu.app", collapse="ä" * 40, expires_at=LATER, urgent=True)
    assert len(headers["apns-collapse-id"].encode()) <= 64
    assert headers["apns-priority"] == "10"
    assert headers["apns-expiration"] == str(int(LATER.timestamp()))
    silent = json.loads(
        apns.body(payload=b'{"pull":1,"kind":"digest"}', title="", text="", thread="d")
    )
    assert silent["aps"] == {"thread-id": "d", "content-available": 1}


def _fcm_error(status: str, code: str | None = None) -> bytes:
    error: dict[str, object] = {"code": 0, "message": "m", "status": status}
    if code:
        error["details"] = [{"@type": "x", "errorCode": code}]
    return json.dumps({"error": error}).encode()


@pytest.mark.parametrize(
    ("status", "headers", "body", "verdict"),
    [
        (200, {}, b"{}", Verdict.DELIVERED),
        (404, {}, _fcm_error("NOT_FOUND", "UNREGISTERED"), Verdict.GONE),
        (400, {}, _fcm_error("INVALID_ARGUMENT", "UNREGISTERED"), Verdict.GONE),
        (429, {"Retry-After": "30"}, _fcm_error("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
         Verdict.RETRY_AT),
        (503, {}, _fcm_error("UNAVAILABLE", "UNAVAILABLE"), Verdict.BACKOFF),
        (500, {}, b"not json", Verdict.BACKOFF),
        (None, {}, b"", Verdict.BACKOFF),
        (400, {}, _fcm_error("INVALID_ARGUMENT", "INVALID_ARGUMENT"), Verdict.CONFIG_ERROR),
        (403, {}, _fcm_error("PERMISSION_DENIED", "SENDER_ID_MISMATCH"), Verdict.CONFIG_ERROR),
    ],
)  # fmt: skip
def test_fcm_answers(
    status: int | None, headers: dict[str, str], body: bytes, verdict: Verdict
) -> None:
    judged = fcm.judge(status, headers, body, now=NOW, attempt=1, expires_at=LATER, rand=lambda: 0)
    assert judged.verdict == verdict
    if status == 429:
        assert judged.retry_at == NOW + dt.timedelta(seconds=30)


@pytest.mark.parametrize(
    ("status", "reason", "verdict"),
    [
        (200, "", Verdict.DELIVERED),
        (410, "Unregistered", Verdict.GONE),
        (400, "BadDeviceToken", Verdict.GONE),
        (400, "DeviceTokenNotForTopic", Verdict.GONE),
        (400, "TopicDisallowed", Verdict.CONFIG_ERROR),
        (403, "ExpiredProviderToken", Verdict.CONFIG_ERROR),
        (413, "PayloadTooLarge", Verdict.TOO_LARGE),
        (429, "TooManyRequests", Verdict.RETRY_AT),
        (503, "ServiceUnavailable", Verdict.BACKOFF),
        (None, "", Verdict.BACKOFF),
    ],
)
def test_apns_answers(status: int | None, reason: str, verdict: Verdict) -> None:
    body = json.dumps({"reason": reason}).encode() if reason else b""
    judged = apns.judge(status, {}, body, now=NOW, attempt=1, expires_at=LATER, rand=lambda: 0)
    assert judged.verdict == verdict


def test_a_retry_after_the_items_end_expires() -> None:
    soon = NOW + dt.timedelta(seconds=10)
    judged = apns.judge(
        429, {"retry-after": "60"}, b'{"reason":"TooManyRequests"}', now=NOW, attempt=1,
        expires_at=soon,
    )  # fmt: skip
    assert judged.verdict == Verdict.EXPIRED
