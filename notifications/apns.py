"""The Apple Push Notification service: the provider token, the request and the verdict.

No HTTP here (``server/native_push.py`` sends, over HTTP/2: APNs speaks nothing else).
Apple's documented rules:

* ``POST /3/device/<device token>`` with ``authorization: bearer <provider token>``: a JWT
  signed ES256 with the team's .p8 key, header ``kid`` (the key id), claims ``iss`` (the team
  id) and ``iat``. Apple refuses a token older than an hour (``ExpiredProviderToken``) and one
  renewed more often than every 20 minutes (``TooManyProviderTokenUpdates``). Every worker
  process must therefore send the *same* token: each signing its own would look to Apple like
  one key renewed many times over. :func:`provider_token` makes the token a function of the
  key and the :data:`TOKEN_PERIOD` (30 minutes) alone: ``iat`` is the period's start and the
  signature deterministic ECDSA (RFC 6979), so every process makes the same token in the same
  period without talking to the others, a new one every 30 minutes, none older than that.
* Headers: ``apns-topic`` (the bundle id), ``apns-push-type`` (``alert``), ``apns-priority``
  (10 now, 5 when power allows), ``apns-expiration`` (UNIX seconds; after it Apple stops
  trying), ``apns-collapse-id`` (at most 64 bytes; a repeat replaces the shown one).
* The body is at most 4,096 bytes. Errors are JSON ``{"reason": "BadDeviceToken"}``; 410
  ``Unregistered`` and 400 ``BadDeviceToken`` mean the token is no good: delete it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from notifications.native import retry_judgement
from notifications.webpush import Judgement, Verdict, backoff_delay, retry_after_seconds

TOKEN_PERIOD = dt.timedelta(minutes=30)
"""A provider token's life: within Apple's 20 minutes to an hour, however late in its period a
worker starts using it."""
MAX_PAYLOAD_BYTES = 4096
MAX_COLLAPSE_ID_BYTES = 64
GONE_REASONS = frozenset({"Unregistered", "BadDeviceToken", "DeviceTokenNotForTopic"})
RETRY_REASONS = frozenset(
    {"TooManyRequests", "ServiceUnavailable", "InternalServerError", "Shutdown"}
)


def token_issued_at(now: dt.datetime) -> dt.datetime:
    """The start of ``now``'s :data:`TOKEN_PERIOD` (periods counted from the UNIX epoch)."""
    period = int(TOKEN_PERIOD.total_seconds())
    return dt.datetime.fromtimestamp(int(now.timestamp()) // period * period, dt.UTC)


def _b64(data: bytes) -> bytes:
    return jwt.utils.base64url_encode(data)


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def provider_token(*, private_key: str, key_id: str, team_id: str, now: dt.datetime) -> str:
    """The provider authentication token (ES256 JWT) of ``now``'s period: the same string in
    every process that holds the key (see the module's docstring)."""
    key = serialization.load_pem_private_key(private_key.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("an APNs key is a P-256 key")
    header = {"alg": "ES256", "kid": key_id, "typ": "JWT"}
    claims = {"iss": team_id, "iat": int(token_issued_at(now).timestamp())}
    signed = _b64(_json(header)) + b"." + _b64(_json(claims))
    der = key.sign(signed, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    return (signed + b"." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))).decode()


def headers(*, topic: str, collapse: str, expires_at: dt.datetime, urgent: bool) -> dict[str, str]:
    """The request's ``apns-*`` headers (without ``authorization``)."""
    return {
        "apns-topic": topic,
        "apns-push-type": "alert",
        # 10: deliver at once (urgent); 5: iOS may hold an ordinary notice a little to save
        # power (the fan-out has already held it through quiet hours).
        "apns-priority": "10" if urgent else "5",
        "apns-expiration": str(int(expires_at.timestamp())),
        "apns-collapse-id": collapse.encode()[:MAX_COLLAPSE_ID_BYTES].decode(errors="ignore"),
        "content-type": "application/json",
    }


def body(*, payload: bytes, title: str, text: str, thread: str) -> bytes:
    """The notification: ``aps`` for iOS to show, ``reppu`` (Reppu's push payload) for the
    app, which pulls the rest."""
    aps: dict[str, Any] = {"thread-id": thread}
    if title or text:
        aps["alert"] = {"title": title, "body": text}
    else:
        aps["content-available"] = 1
    document = {"aps": aps, "reppu": json.loads(payload)}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def reason(answer: bytes) -> str:
    """Apple's ``reason`` of an error answer, or ''."""
    try:
        found = json.loads(answer).get("reason", "")
    except (ValueError, AttributeError):
        return ""
    return found if isinstance(found, str) else ""


def judge(
    status: int | None,
    answer_headers: Mapping[str, str],
    answer: bytes,
    *,
    now: dt.datetime,
    attempt: int,
    expires_at: dt.datetime,
    rand: Callable[[], float] | None = None,
) -> Judgement:
    """Classify Apple's answer. 200: delivered; 410 or a gone reason (``BadDeviceToken``...):
    gone; 429 and 503: retry after Retry-After (else the backoff); other 5xx: backoff; other
    4xx (``ExpiredProviderToken``, ``TopicDisallowed``...): not retried, reported."""
    if status == 200:
        return Judgement(Verdict.DELIVERED, detail="HTTP 200")
    why = reason(answer) if status is not None else ""
    if status == 410 or (status == 400 and why in GONE_REASONS):
        return Judgement(Verdict.GONE, detail=f"HTTP {status} {why}".strip())
    if status == 413:
        return Judgement(Verdict.TOO_LARGE, detail=f"HTTP 413 {why}".strip())
    if status is None or status >= 500 or status == 429 or why in RETRY_REASONS:
        delay = retry_after_seconds(answer_headers, now) if status in (429, 503) else None
        if delay is None:
            delay = backoff_delay(attempt) if rand is None else backoff_delay(attempt, rand)
        verdict = Verdict.RETRY_AT if status == 429 else Verdict.BACKOFF
        detail = "no answer" if status is None else f"HTTP {status} {why}".strip()
        return retry_judgement(verdict, now, delay, expires_at, detail)
    return Judgement(Verdict.CONFIG_ERROR, detail=f"HTTP {status} {why}: not retried".strip())
