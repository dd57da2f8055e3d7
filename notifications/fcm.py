"""Firebase Cloud Messaging (HTTP v1): the OAuth assertion, the message and the verdict.

No HTTP here (``server/native_push.py`` sends). Google's documented flow:

1. The service account signs a JWT (RS256) with ``iss`` its e-mail address, ``scope``
   firebase.messaging, ``aud`` the token URI, ``iat`` now and ``exp`` at most an hour on;
   ``POST token_uri`` with ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and the
   assertion answers an access token with ``expires_in``.
2. ``POST {url}/v1/projects/{project}/messages:send`` with ``Authorization: Bearer <token>``
   and ``{"message": {...}}`` sends to one registration token.
3. Errors are JSON ``{"error": {"code", "status", "details": [{"errorCode": ...}]}}``:
   ``UNREGISTERED`` (404) means the app was uninstalled or the token replaced: delete it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any

import jwt

from notifications.native import retry_judgement
from notifications.webpush import (
    Judgement,
    Verdict,
    backoff_delay,
    retry_after_seconds,
)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
"""Google refuses an assertion whose ``exp`` is more than an hour after its ``iat``."""
TOKEN_MARGIN = 300
"""An access token is renewed this many seconds before it expires, so none runs out in flight."""
GONE_CODES = frozenset({"UNREGISTERED"})
RETRY_CODES = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"})


def assertion(*, client_email: str, private_key: str, token_uri: str, now: dt.datetime) -> str:
    """The signed JWT a service account exchanges for an access token."""
    issued = int(now.timestamp())
    claims = {
        "iss": client_email,
        "scope": SCOPE,
        "aud": token_uri,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
    }
    return jwt.encode(claims, private_key, algorithm="RS256")


def message(
    *, token: str, payload: bytes, title: str, body: str, collapse: str, ttl: int, urgent: bool
) -> bytes:
    """The ``messages:send`` body for one device.

    ``payload`` (Reppu's push payload JSON, ``notifications.payload``) goes in ``data`` for the
    app, which pulls the rest; the title and body are shown by Android itself when the app is
    in the background. ``collapse`` is the item's topic: a repeat replaces, not adds.
    """
    android: dict[str, Any] = {
        "priority": "HIGH" if urgent else "NORMAL",
        "ttl": f"{max(ttl, 0)}s",
        "collapse_key": collapse,
    }
    msg: dict[str, Any] = {"token": token, "data": {"reppu": payload.decode()}, "android": android}
    if title or body:
        msg["notification"] = {"title": title, "body": body}
    return json.dumps({"message": msg}, ensure_ascii=False, separators=(",", ":")).encode()


def error_code(body: bytes) -> str:
    """The FCM error code (``UNREGISTERED``...) of an error answer, or its status, or ''."""
    try:
        error = json.loads(body)["error"]
        for detail in error.get("details", []):
            if isinstance(detail, dict) and detail.get("errorCode"):
                return str(detail["errorCode"])
        return str(error.get("status", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""


def judge(
    status: int | None,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: dt.datetime,
    attempt: int,
    expires_at: dt.datetime,
    rand: Callable[[], float] | None = None,
) -> Judgement:
    """Classify FCM's answer. 200: delivered; 404 or ``UNREGISTERED``: gone; 429 and 503:
    retry after Retry-After (else the backoff); other 5xx: backoff; other 4xx: not retried."""
    if status is not None and 200 <= status < 300:
        return Judgement(Verdict.DELIVERED, detail=f"HTTP {status}")
    code = error_code(body) if status is not None else ""
    if status == 404 or code in GONE_CODES:
        return Judgement(Verdict.GONE, detail=f"HTTP {status} {code}".strip())
    if status is None or status >= 500 or status == 429 or code in RETRY_CODES:
        delay = retry_after_seconds(headers, now) if status in (429, 503) else None
        if delay is None:
            delay = backoff_delay(attempt) if rand is None else backoff_delay(attempt, rand)
        verdict = Verdict.RETRY_AT if status == 429 else Verdict.BACKOFF
        detail = "no answer" if status is None else f"HTTP {status} {code}".strip()
        return retry_judgement(verdict, now, delay, expires_at, detail)
    return Judgement(Verdict.CONFIG_ERROR, detail=f"HTTP {status} {code}: not retried".strip())
