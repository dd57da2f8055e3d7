"""Building one Web Push request and judging the push service's answer. Sends nothing.

The protocol pieces, and where each rule comes from:

* RFC 8291: the payload is encrypted per device (``aes128gcm``): a fresh ECDH key pair and
  salt per message, HKDF as single HMAC-SHA-256 blocks, one AES-128-GCM record
  (:func:`encrypt_aes128gcm`; ``tests/notifications`` decrypt it with ``http_ece``).
* RFC 8292 (VAPID): a JWT signed with the application server's P-256 key names the push
  service (``aud``), an expiry (``exp``, at most 24 h ahead) and a contact (``sub``). Signing
  costs about as much as encrypting, and the token is valid for every device behind one push
  service, so :class:`VapidSigner` signs once per push-service origin and reuses the header.
* RFC 8030: ``TTL`` (how long the service keeps the message for an offline device; never 0
  here, since 0 means "drop unless the device is online this instant"), ``Urgency`` (lets a
  phone on battery save wake-ups for what matters) and ``Topic`` (a newer message with the
  same topic replaces an undelivered older one).
* Push services refuse bodies over 4,096 bytes; with one record the encryption adds 103 bytes,
  so plaintext is capped at :data:`MAX_PLAINTEXT`.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import functools
import hashlib
import hmac
import os
import random
import re
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas.notifications import PushKind

Kind = PushKind
"""What a push is about; decides its TTL and Urgency (the wire's ``PushKind``)."""


HOUR = 3600
DAY = 24 * HOUR

TTL_SECONDS: dict[Kind, int] = {
    # "School closed today" matters for the rest of the school day; after that the app's own
    # pull shows it, and a phone that was off all day should not buzz about it at night.
    Kind.URGENT: 12 * HOUR,
    # A bulletin is news for a few days (a weekend included).
    Kind.BULLETIN: 3 * DAY,
    # A personal message is worth telling about whenever the device comes back within a week.
    Kind.MESSAGE: 7 * DAY,
    # A lesson change is about today or tomorrow.
    Kind.LESSON_CHANGE: 1 * DAY,
    # Tomorrow's digest replaces today's.
    Kind.DIGEST: 1 * DAY,
    # "Absent without explanation today" is for today: by tomorrow the app shows it anyway.
    Kind.ABSENCE: 12 * HOUR,
    # A reminder of a form due tomorrow.
    Kind.FORM_DUE: 1 * DAY,
}
"""How long a push service keeps each kind for an offline device. Never 0."""

URGENCY: dict[Kind, str] = {
    Kind.URGENT: "high",
    Kind.MESSAGE: "normal",
    Kind.LESSON_CHANGE: "normal",
    Kind.BULLETIN: "normal",
    Kind.DIGEST: "low",
    Kind.ABSENCE: "normal",
    Kind.FORM_DUE: "normal",
}
"""RFC 8030 section 5.3 ``Urgency`` per kind."""

MAX_PLAINTEXT = 3993
"""Largest plaintext that still encrypts into a 4,096-byte body (4096 - 103 bytes overhead)."""

MAX_VAPID_LIFETIME = DAY
"""RFC 8292 section 2: ``exp`` must be no more than 24 hours after the request."""

_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
_DEFAULT_PORTS = {"https": 443, "http": 80}
_MAX_CACHED_ORIGINS = 256


@dataclass(frozen=True, slots=True)
class Subscription:
    """A browser's push subscription: where to post, and the keys to encrypt for it.

    ``p256dh`` (the device's P-256 public key) and ``auth`` (its 16-byte secret) are base64url,
    padding optional, exactly as ``PushSubscription.toJSON()`` gives them.
    """

    endpoint: str
    p256dh: str
    auth: str


class InvalidSubscriptionError(ValueError):
    """The subscription's keys cannot be used: delete it, the device must subscribe again."""


def origin_of(endpoint: str) -> str:
    """``scheme://host:port`` of ``endpoint``, always with the port, host lower-cased.

    The normalised key for everything that is per push service (the VAPID cache here, a
    connection limit in the sender), so ``https://x`` and ``https://X:443/`` are one origin.
    Raises ValueError for anything but an http(s) URL with a host.
    """
    parts = urlsplit(endpoint)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"not an http(s) URL: {endpoint!r}")
    host = parts.hostname  # lower-cased, brackets of an IPv6 literal removed
    if not host:
        raise ValueError(f"URL without a host: {endpoint!r}")
    port = parts.port  # raises ValueError for a port out of range or not a number
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{_DEFAULT_PORTS[scheme] if port is None else port}"


def audience_of(endpoint: str) -> str:
    """The VAPID ``aud`` for ``endpoint``: its origin serialised as RFC 6454 section 6.

    RFC 8292 asks for exactly that serialisation, which keeps a non-default port
    (``https://push.example:8443``; the ``webpush`` package drops it, so its tokens fail there)
    and leaves the default one out (``https://fcm.googleapis.com``). Mozilla's service parses
    ``aud`` as a URL, so ``:443`` would pass there, but a service that compares strings (Apple
    documents only "the origin of the push service") would refuse it.
    """
    origin = origin_of(endpoint)
    scheme = origin.split(":", 1)[0]
    default_suffix = f":{_DEFAULT_PORTS[scheme]}"
    return origin.removesuffix(default_suffix)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class VapidSigner:
    """Signs VAPID headers, one per push-service origin, reused until close to expiry.

    ``private_key_b64`` is the base64url raw 32-byte P-256 private scalar, as Reppu stores it
    (``server.settings.generate_vapid_keys``). ``clock`` returns Unix seconds; tests inject one.
    Not thread-safe: use one signer per event loop (or per worker process).
    """

    def __init__(
        self,
        private_key_b64: str,
        subject: str,
        *,
        lifetime: int = 12 * HOUR,
        renew_before: int = HOUR,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < lifetime <= MAX_VAPID_LIFETIME:
            raise ValueError(f"lifetime must be 1..{MAX_VAPID_LIFETIME} s (RFC 8292)")
        if not 0 <= renew_before < lifetime:
            raise ValueError("renew_before must be at least 0 and less than lifetime")
        # Apple's push service refuses a token whose sub is neither a mailto: nor an https: URL.
        if not subject.startswith(("mailto:", "https://")):
            raise ValueError("subject must be a mailto: or https:// URL")
        raw = _b64url_decode(private_key_b64)
        if len(raw) != 32:
            raise ValueError("the VAPID private key must be 32 bytes (base64url)")
        self._key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        self.public_key = _b64url(
            self._key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )
        """The application server key (base64url uncompressed point) browsers subscribe with."""
        self.subject = subject
        self.lifetime = lifetime
        self.renew_before = renew_before
        self._clock = clock
        self._cache: dict[str, tuple[str, int]] = {}  # origin -> (header, exp)

    def header(self, endpoint: str, origin: str | None = None) -> str:
        """The ``Authorization`` value for a push to ``endpoint``: ``vapid t=<jwt>, k=<key>``.

        ``origin``: ``origin_of(endpoint)`` when the caller has it already (it is per push, and
        parsing the URL again costs more than the cache lookup)."""
        if origin is None:
            origin = origin_of(endpoint)
        now = self._clock()
        cached = self._cache.get(origin)
        if cached is not None and cached[1] - now >= self.renew_before:
            return cached[0]
        exp = int(now) + self.lifetime
        token = jwt.encode(
            {"aud": audience_of(endpoint), "exp": exp, "sub": self.subject},
            self._key,
            algorithm="ES256",
        )
        value = f"vapid t={token}, k={self.public_key}"
        if len(self._cache) >= _MAX_CACHED_ORIGINS:
            # Endpoints come from clients; a flood of made-up origins must not grow memory.
            # Dropping everything costs one signature per real origin, a few at most.
            self._cache.clear()
        self._cache[origin] = (value, exp)
        return value


@dataclass(frozen=True, slots=True)
class OutgoingPush:
    """One ready request: POST ``body`` with ``headers`` to ``endpoint``."""

    endpoint: str
    headers: dict[str, str]
    body: bytes


@functools.lru_cache(maxsize=4096)
def topic_header(topic: str) -> str:
    """``topic`` made a valid RFC 8030 Topic: 1-32 characters of the base64url alphabet.

    A valid topic is kept as it is (readable in logs); any other is replaced by the first 32
    characters of the base64url SHA-256 of its UTF-8, so the same topic always collapses with
    itself and two different ones practically never do.
    """
    if _TOPIC.fullmatch(topic):
        return topic
    return _b64url(hashlib.sha256(topic.encode("utf-8")).digest())[:32]


class PushBuilder:
    """Encrypts a payload for one subscription and puts the request together."""

    def __init__(self, signer: VapidSigner) -> None:
        self._signer = signer

    def build(
        self,
        subscription: Subscription,
        plaintext: bytes,
        kind: Kind,
        *,
        topic: str | None = None,
        ttl: int | None = None,
        origin: str | None = None,
    ) -> OutgoingPush:
        """The request that delivers ``plaintext`` to ``subscription``.

        Raises ValueError for a plaintext over :data:`MAX_PLAINTEXT` (shrink it with
        ``notifications.payload`` first) or a ``ttl`` below 1, and :class:`InvalidSubscriptionError`
        when the subscription's keys are malformed. ``origin``: the endpoint's
        :func:`origin_of`, when the caller has it already.
        """
        if len(plaintext) > MAX_PLAINTEXT:
            raise ValueError(f"plaintext is {len(plaintext)} bytes, over {MAX_PLAINTEXT}")
        if ttl is None:
            ttl = TTL_SECONDS[kind]
        elif ttl <= 0:
            raise ValueError("ttl must be at least 1 s: 0 drops the push for an offline device")
        headers = {
            "Authorization": self._signer.header(subscription.endpoint, origin),
            "TTL": str(ttl),
            "Urgency": URGENCY[kind],
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
        }
        if topic is not None:
            headers["Topic"] = topic_header(topic)
        body = encrypt_aes128gcm(subscription, plaintext)
        return OutgoingPush(subscription.endpoint, headers, body)


_CURVE = ec.SECP256R1()
_ECDH = ec.ECDH()
RECORD_SIZE = 4096
_KEY_INFO = b"WebPush: info\x00"
_CEK_INFO = b"Content-Encoding: aes128gcm\x00\x01"
_NONCE_INFO = b"Content-Encoding: nonce\x00\x01"


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def encrypt_aes128gcm(subscription: Subscription, plaintext: bytes) -> bytes:
    """RFC 8291 ``aes128gcm`` body of ``plaintext`` for ``subscription`` (one record).

    Every HKDF here asks for at most one hash's worth of output, so each is two HMACs
    (RFC 5869: extract, then one expand block), done with ``hmac.digest`` rather than a
    ``cryptography`` HKDF object per step: with the key pair and ECDH this is about half what
    the ``webpush`` package's encryption cost per push (``docs/benchmarks.md``, storm).
    Raises :class:`InvalidSubscriptionError` for unusable keys.
    """
    auth = _b64url_decode_checked(subscription.auth, "auth")
    ua_public = _b64url_decode_checked(subscription.p256dh, "p256dh")
    if len(auth) != 16:
        raise InvalidSubscriptionError(f"auth secret is {len(auth)} bytes, not 16")
    if len(ua_public) != 65 or ua_public[0] != 4:
        raise InvalidSubscriptionError("p256dh is not an uncompressed P-256 point")
    try:
        receiver = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, ua_public)
    except ValueError as exc:  # 65 bytes that are not a point on the curve
        raise InvalidSubscriptionError(f"p256dh is not a valid P-256 public key: {exc}") from exc
    ephemeral = ec.generate_private_key(_CURVE)  # a new key pair for every message
    as_public = ephemeral.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    shared = ephemeral.exchange(_ECDH, receiver)
    ikm = _hmac(_hmac(auth, shared), _KEY_INFO + ua_public + as_public + b"\x01")
    salt = os.urandom(16)
    prk = _hmac(salt, ikm)
    key = _hmac(prk, _CEK_INFO)[:16]
    nonce = _hmac(prk, _NONCE_INFO)[:12]
    # One record, so it is the last: its padding delimiter is 0x02.
    sealed = AESGCM(key).encrypt(nonce, plaintext + b"\x02", None)
    return salt + struct.pack("!LB", RECORD_SIZE, len(as_public)) + as_public + sealed


def _b64url_decode_checked(text: str, name: str) -> bytes:
    try:
        return _b64url_decode(text)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise InvalidSubscriptionError(f"{name} is not base64url") from exc


class Verdict(StrEnum):
    """What to do after one delivery attempt."""

    DELIVERED = "delivered"
    """2xx: the push service accepted it (it delivers to the device on its own)."""
    GONE = "gone"
    """404/410: the subscription expired or was revoked; delete it."""
    TOO_LARGE = "too_large"
    """413: resend a shorter payload (``notifications.payload.shorter``)."""
    RETRY_AT = "retry_at"
    """429: too many requests; retry at ``retry_at`` (from Retry-After)."""
    BACKOFF = "backoff"
    """5xx, 408, time-out or connection error: retry at ``retry_at``."""
    EXPIRED = "expired"
    """Would retry, but not before the message's TTL runs out: give up on this device."""
    CONFIG_ERROR = "config_error"
    """Other 4xx (400, 401, 403, ...): our request or keys are wrong; report, do not retry."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verdict; ``retry_at`` (UTC) is set exactly for RETRY_AT and BACKOFF."""

    verdict: Verdict
    retry_at: dt.datetime | None = None
    detail: str = ""


MAX_RETRY_AFTER = HOUR
"""A Retry-After longer than this is cut down: a push service asking for a day is not one we
want to sit out with a bulletin, and a later 429 simply asks again."""

BACKOFF_BASE = 2.0
BACKOFF_CAP = 600.0


def judge(
    status: int | None,
    headers: Mapping[str, str],
    *,
    now: dt.datetime,
    attempt: int,
    expires_at: dt.datetime,
    rand: Callable[[], float] = random.random,
) -> Judgement:
    """Classify the push service's answer to attempt number ``attempt`` (1 for the first).

    ``status`` None means no answer (time-out, connection error). ``expires_at`` is when the
    message's TTL runs out, measured from its first attempt: a retry after that would be
    refused or delivered stale, so it becomes :attr:`Verdict.EXPIRED` (a verdict of its own
    rather than a BACKOFF without a time, so no caller can mistake it for "retry now").
    ``rand`` is the jitter source of :func:`backoff_delay`.
    """
    _require_aware(now, "now")
    _require_aware(expires_at, "expires_at")
    if status is None:
        return _retry(Verdict.BACKOFF, now, backoff_delay(attempt, rand), expires_at, "no answer")
    if 200 <= status < 300:
        return Judgement(Verdict.DELIVERED, detail=f"HTTP {status}")
    if status in (404, 410):
        return Judgement(Verdict.GONE, detail=f"HTTP {status}: subscription gone")
    if status == 413:
        return Judgement(Verdict.TOO_LARGE, detail="HTTP 413: payload too large")
    if status == 429:
        delay = retry_after_seconds(headers, now)
        if delay is None:
            delay = backoff_delay(attempt, rand)
        return _retry(Verdict.RETRY_AT, now, delay, expires_at, "HTTP 429")
    # 408 is the service timing out our request: as transient as a time-out on our side.
    if status >= 500 or status == 408:
        return _retry(
            Verdict.BACKOFF, now, backoff_delay(attempt, rand), expires_at, f"HTTP {status}"
        )
    return Judgement(Verdict.CONFIG_ERROR, detail=f"HTTP {status}: not retried")


def retry_after_seconds(headers: Mapping[str, str], now: dt.datetime) -> float | None:
    """Seconds to wait by the ``Retry-After`` header (RFC 9110 section 10.2.3), at most 1 h.

    Either delta-seconds or an HTTP-date; a date in the past means now (0). None when the
    header is missing or garbled, so the caller falls back to its backoff schedule.
    """
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit() and value.isascii():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (ValueError, TypeError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # asctime form; HTTP dates are always GMT
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), float(MAX_RETRY_AFTER))


def backoff_delay(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first).

    Exponential from 2 s, doubling, capped at 10 min, with "equal jitter": half the step
    fixed, half random. When a push service hiccups during a storm bulletin, hundreds of
    thousands of retries must not come back at the same second (hence jitter), yet none may
    come back at once either, as "full jitter" allows (hence the fixed half). ``rand`` returns
    a float in [0, 1); tests pass a constant.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    step = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** min(attempt - 1, 32))
    return step / 2 + rand() * step / 2


def _retry(
    verdict: Verdict, now: dt.datetime, delay: float, expires_at: dt.datetime, detail: str
) -> Judgement:
    retry_at = (now + dt.timedelta(seconds=delay)).astimezone(dt.UTC)
    if retry_at > expires_at:
        return Judgement(Verdict.EXPIRED, detail=f"{detail}; TTL runs out before a retry")
    return Judgement(verdict, retry_at, detail)


def _require_aware(moment: dt.datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (UTC)")
