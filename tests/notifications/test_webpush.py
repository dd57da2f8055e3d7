"""Building Web Push requests and judging answers, checked with independent tools.

The body is decrypted with ``http_ece`` and the VAPID token verified with PyJWT, so neither
check trusts the code under test (nor the ``webpush`` package it encrypts with).
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
from dataclasses import dataclass

import http_ece  # type: ignore[import-untyped]
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notifications.webpush import (
    MAX_PLAINTEXT,
    TTL_SECONDS,
    URGENCY,
    InvalidSubscriptionError,
    Judgement,
    Kind,
    PushBuilder,
    Subscription,
    VapidSigner,
    Verdict,
    audience_of,
    backoff_delay,
    judge,
    origin_of,
    topic_header,
)

SUBJECT = "mailto:ops@reppu.test"
ENDPOINT = "https://push.example:8443/wpush/v2/abc"
NOW = dt.datetime(2025, 6, 2, 9, 0, tzinfo=dt.UTC)
EXPIRES = NOW + dt.timedelta(days=1)
B64URL_ALPHABET = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def vapid_private_key() -> str:
    """A key as Reppu stores it: base64url of the raw 32-byte scalar."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


@dataclass
class Device:
    """A browser: its key pair and auth secret, and the subscription it hands out."""

    key: ec.EllipticCurvePrivateKey
    auth: bytes
    endpoint: str = ENDPOINT

    @classmethod
    def new(cls, endpoint: str = ENDPOINT) -> Device:
        return cls(ec.generate_private_key(ec.SECP256R1()), bytes(range(16)), endpoint)

    @property
    def subscription(self) -> Subscription:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return Subscription(self.endpoint, b64url(point), b64url(self.auth))

    def decrypt(self, body: bytes) -> bytes:
        plain: bytes = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return plain


class Clock:
    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fx_signer() -> VapidSigner:
    return VapidSigner(vapid_private_key(), SUBJECT, clock=Clock())


def token_of(header: str) -> str:
    assert header.startswith("vapid t=")
    return header.removeprefix("vapid t=").split(", k=")[0]


def public_key_of(header: str) -> ec.EllipticCurvePublicKey:
    key = header.split(", k=")[1]
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))


# ---- origins ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "origin", "audience"),
    [
        ("https://fcm.googleapis.com/fcm/send/x", "https://fcm.googleapis.com:443", None),
        ("https://FCM.googleapis.com:443/x", "https://fcm.googleapis.com:443", None),
        ("HTTPS://push.example:8443/a?b#c", "https://push.example:8443", None),
        ("http://localhost/x", "http://localhost:80", "http://localhost"),
        ("http://localhost:8080", "http://localhost:8080", None),
        ("https://user:pw@push.example/x", "https://push.example:443", None),
        ("https://[::1]:9000/x", "https://[::1]:9000", None),
    ],
)
def test_origin_of(endpoint: str, origin: str, audience: str | None) -> None:
    assert origin_of(endpoint) == origin
    # The VAPID audience is the RFC 6454 serialisation: the default port is left out.
    expected = audience or origin.removesuffix(":443")
    assert audience_of(endpoint) == expected


@pytest.mark.parametrize(
    "endpoint", ["ftp://push.example/x", "push.example/x", "https:///x", "https://h:99999/x", ""]
)
def test_origin_of_refuses(endpoint: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        origin_of(endpoint)


# ---- VAPID ------------------------------------------------------------------------------


def test_header_verifies_with_port_in_aud(fx_signer: VapidSigner) -> None:
    header = fx_signer.header(ENDPOINT)
    claims = jwt.decode(
        token_of(header),
        public_key_of(header),
        algorithms=["ES256"],
        audience="https://push.example:8443",
        options={"verify_exp": False},  # the injected clock is not the wall clock
    )
    assert claims == {
        "aud": "https://push.example:8443",
        "exp": 1_750_000_000 + 12 * 3600,
        "sub": SUBJECT,
    }
    assert header.split(", k=")[1] == fx_signer.public_key


def test_public_key_matches_the_stored_private_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    private = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    public = b64url(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )
    assert VapidSigner(private + "=", SUBJECT).public_key == public  # padding is optional


def test_signer_caches_per_origin_and_renews() -> None:
    clock = Clock()
    signer = VapidSigner(vapid_private_key(), SUBJECT, lifetime=3600, renew_before=600, clock=clock)
    first = signer.header("https://push.example:8443/device-1")
    assert signer.header("https://PUSH.example:8443/device-2") == first
    other = signer.header("https://push.example/device-3")  # port 443: another origin
    assert other != first
    assert jwt.decode(token_of(other), options={"verify_signature": False})["aud"] == (
        "https://push.example"
    )

    clock.now += 3600 - 600  # exactly renew_before left: still reused
    assert signer.header("https://push.example:8443/device-1") == first
    clock.now += 1
    renewed = signer.header("https://push.example:8443/device-1")
    assert renewed != first
    claims = jwt.decode(token_of(renewed), options={"verify_signature": False})
    assert claims["exp"] == int(clock.now) + 3600


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lifetime": 86401}, "lifetime"),
        ({"lifetime": 0}, "lifetime"),
        ({"lifetime": 3600, "renew_before": 3600}, "renew_before"),
        ({"subject": "ops@reppu.test"}, "subject"),
        ({"private_key_b64": b64url(b"short")}, "32 bytes"),
    ],
)
def test_signer_refuses(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"private_key_b64": vapid_private_key(), "subject": SUBJECT}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        VapidSigner(**args)  # type: ignore[arg-type]


def test_a_full_day_lifetime_is_allowed() -> None:
    assert VapidSigner(vapid_private_key(), SUBJECT, lifetime=86400).lifetime == 86400


# ---- building ---------------------------------------------------------------------------


def test_build_decrypts_with_http_ece(fx_signer: VapidSigner) -> None:
    device = Device.new()
    push = PushBuilder(fx_signer).build(device.subscription, b'{"pull":1}', Kind.BULLETIN)
    assert push.endpoint == ENDPOINT
    assert device.decrypt(push.body) == b'{"pull":1}'
    assert push.headers == {
        "Authorization": fx_signer.header(ENDPOINT),
        "TTL": str(3 * 24 * 3600),
        "Urgency": "normal",
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
    }


def test_each_message_is_encrypted_afresh(fx_signer: VapidSigner) -> None:
    device = Device.new()
    builder = PushBuilder(fx_signer)
    first = builder.build(device.subscription, b"same", Kind.MESSAGE)
    second = builder.build(device.subscription, b"same", Kind.MESSAGE)
    assert first.body != second.body  # new salt and sender key each time (RFC 8291)
    assert first.headers == second.headers  # but the VAPID header is reused
    assert device.decrypt(second.body) == b"same"


def test_largest_plaintext_fits_in_4096_bytes(fx_signer: VapidSigner) -> None:
    device = Device.new()
    builder = PushBuilder(fx_signer)
    plaintext = bytes(range(256)) * 15 + b"x" * (MAX_PLAINTEXT - 3840)
    push = builder.build(device.subscription, plaintext, Kind.DIGEST)
    assert len(push.body) == 4096
    assert device.decrypt(push.body) == plaintext
    with pytest.raises(ValueError, match="3994 bytes"):
        builder.build(device.subscription, plaintext + b"!", Kind.DIGEST)


@pytest.mark.parametrize("kind", list(Kind))
def test_ttl_and_urgency_per_kind(fx_signer: VapidSigner, kind: Kind) -> None:
    push = PushBuilder(fx_signer).build(Device.new().subscription, b"x", kind)
    assert int(push.headers["TTL"]) == TTL_SECONDS[kind] > 0
    assert push.headers["Urgency"] == URGENCY[kind]
    assert URGENCY[kind] in {"very-low", "low", "normal", "high"}
    assert (push.headers["Urgency"] == "high") == (kind is Kind.URGENT)


def test_ttl_override_and_zero_refused(fx_signer: VapidSigner) -> None:
    builder = PushBuilder(fx_signer)
    sub = Device.new().subscription
    assert builder.build(sub, b"x", Kind.URGENT, ttl=60).headers["TTL"] == "60"
    for ttl in (0, -1):
        with pytest.raises(ValueError, match="ttl"):
            builder.build(sub, b"x", Kind.URGENT, ttl=ttl)


@pytest.mark.parametrize(
    "topic",
    [
        "lesson-42",
        "a" * 32,
        "a" * 33,
        "bulletin:42",
        "tiedote/42 ä",
        "",
        "x" * 1000,
    ],
)
def test_topic_is_sanitised(fx_signer: VapidSigner, topic: str) -> None:
    push = PushBuilder(fx_signer).build(Device.new().subscription, b"x", Kind.BULLETIN, topic=topic)
    value = push.headers["Topic"]
    assert 1 <= len(value) <= 32
    assert set(value) <= B64URL_ALPHABET
    assert value == topic_header(topic)  # deterministic: same topic, same header
    valid = 1 <= len(topic) <= 32 and set(topic) <= B64URL_ALPHABET
    assert (value == topic) == valid


def test_distinct_topics_stay_distinct() -> None:
    assert topic_header("bulletin:42") != topic_header("bulletin:43")
    assert topic_header("a" * 33) != topic_header("a" * 34)


@pytest.mark.parametrize(
    ("p256dh", "auth"),
    [
        ("not base64!", None),
        (b64url(b"\x04" + b"\x01" * 64), None),  # 65 bytes, not a point on the curve
        (b64url(b"\x04" + b"\x01" * 30), None),
        (None, b64url(b"\x00" * 8)),
    ],
)
def test_unusable_keys_are_reported(
    fx_signer: VapidSigner, p256dh: str | None, auth: str | None
) -> None:
    good = Device.new().subscription
    sub = Subscription(good.endpoint, p256dh or good.p256dh, auth or good.auth)
    with pytest.raises(InvalidSubscriptionError):
        PushBuilder(fx_signer).build(sub, b"x", Kind.MESSAGE)


def test_padded_keys_are_accepted(fx_signer: VapidSigner) -> None:
    device = Device.new()
    sub = device.subscription
    padded = Subscription(sub.endpoint, sub.p256dh + "=", sub.auth + "==")
    assert device.decrypt(PushBuilder(fx_signer).build(padded, b"ok", Kind.MESSAGE).body) == b"ok"


# ---- judging ----------------------------------------------------------------------------


def http_date(moment: dt.datetime) -> str:
    return email.utils.format_datetime(moment, usegmt=True)


def no_jitter() -> float:
    return 0.0


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (201, {}, Judgement(Verdict.DELIVERED, detail="HTTP 201")),
        (200, {}, Judgement(Verdict.DELIVERED, detail="HTTP 200")),
        (202, {}, Judgement(Verdict.DELIVERED, detail="HTTP 202")),
        (404, {}, Judgement(Verdict.GONE, detail="HTTP 404: subscription gone")),
        (410, {}, Judgement(Verdict.GONE, detail="HTTP 410: subscription gone")),
        (413, {}, Judgement(Verdict.TOO_LARGE, detail="HTTP 413: payload too large")),
        (400, {}, Judgement(Verdict.CONFIG_ERROR, detail="HTTP 400: not retried")),
        (401, {}, Judgement(Verdict.CONFIG_ERROR, detail="HTTP 401: not retried")),
        (403, {}, Judgement(Verdict.CONFIG_ERROR, detail="HTTP 403: not retried")),
        (
            429,
            {"Retry-After": "120"},
            Judgement(Verdict.RETRY_AT, NOW + dt.timedelta(seconds=120), "HTTP 429"),
        ),
        (
            429,
            {"retry-after": http_date(NOW + dt.timedelta(minutes=5))},
            Judgement(Verdict.RETRY_AT, NOW + dt.timedelta(minutes=5), "HTTP 429"),
        ),
        (  # asctime form, still GMT
            429,
            {"Retry-After": "Mon Jun  2 09:01:00 2025"},
            Judgement(Verdict.RETRY_AT, NOW + dt.timedelta(minutes=1), "HTTP 429"),
        ),
        (  # a date in the past: now
            429,
            {"Retry-After": http_date(NOW - dt.timedelta(minutes=5))},
            Judgement(Verdict.RETRY_AT, NOW, "HTTP 429"),
        ),
        (  # clamped to an hour
            429,
            {"Retry-After": "86400"},
            Judgement(Verdict.RETRY_AT, NOW + dt.timedelta(hours=1), "HTTP 429"),
        ),
        (  # garbled: the backoff schedule (attempt 3: 8 s step, half of it with no jitter)
            429,
            {"Retry-After": "soon"},
            Judgement(Verdict.RETRY_AT, NOW + dt.timedelta(seconds=4), "HTTP 429"),
        ),
        (
            429,
            {},
            Judgement(Verdict.RETRY_AT, NOW + dt.timedelta(seconds=4), "HTTP 429"),
        ),
        (500, {}, Judgement(Verdict.BACKOFF, NOW + dt.timedelta(seconds=4), "HTTP 500")),
        (503, {}, Judgement(Verdict.BACKOFF, NOW + dt.timedelta(seconds=4), "HTTP 503")),
        (408, {}, Judgement(Verdict.BACKOFF, NOW + dt.timedelta(seconds=4), "HTTP 408")),
        (None, {}, Judgement(Verdict.BACKOFF, NOW + dt.timedelta(seconds=4), "no answer")),
    ],
)
def test_judge(status: int | None, headers: dict[str, str], expected: Judgement) -> None:
    result = judge(status, headers, now=NOW, attempt=3, expires_at=EXPIRES, rand=no_jitter)
    assert result == expected


@pytest.mark.parametrize("status", [None, 500, 503, 429])
def test_no_retry_past_expiry(status: int | None) -> None:
    headers = {"Retry-After": "600"}
    for attempt in range(1, 40):
        result = judge(
            status, headers, now=NOW, attempt=attempt, expires_at=NOW + dt.timedelta(seconds=300)
        )
        if result.retry_at is not None:
            assert result.retry_at <= NOW + dt.timedelta(seconds=300)
            assert result.verdict in (Verdict.BACKOFF, Verdict.RETRY_AT)
        else:
            assert result.verdict is Verdict.EXPIRED
    # With no time left at all, nothing is retried.
    assert judge(status, headers, now=NOW, attempt=1, expires_at=NOW).verdict is Verdict.EXPIRED


def test_retry_up_to_the_expiry_instant() -> None:
    result = judge(
        429, {"Retry-After": "60"}, now=NOW, attempt=1, expires_at=NOW + dt.timedelta(seconds=60)
    )
    assert result == Judgement(Verdict.RETRY_AT, NOW + dt.timedelta(seconds=60), "HTTP 429")


def test_backoff_schedule() -> None:
    steps = [backoff_delay(n, rand=no_jitter) * 2 for n in range(1, 12)]
    assert steps == [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]
    assert backoff_delay(1000, rand=no_jitter) == 300  # no overflow, still capped
    # Equal jitter: between half the step and (almost) the whole of it.
    assert backoff_delay(4, rand=lambda: 0.999) == pytest.approx(15.992)
    for attempt in range(1, 30):
        delay = backoff_delay(attempt)
        assert 1 <= delay <= 600
    with pytest.raises(ValueError, match="from 1"):
        backoff_delay(0)


def test_judge_wants_aware_times() -> None:
    with pytest.raises(ValueError, match="aware"):
        judge(500, {}, now=NOW.replace(tzinfo=None), attempt=1, expires_at=EXPIRES)
