"""A local Apple Push Notification service for tests: checks what Apple checks.

``POST /3/device/<token>`` is refused, in this order, the way Apple documents it (JSON
``{"reason": ...}``, 410 with a ``timestamp`` too; success is 200 with an ``apns-id``):

1. An injected failure (``fail_next``): 429 ``TooManyRequests`` or 503 ``ServiceUnavailable``,
   with ``Retry-After`` when asked.
2. The provider token: no ``authorization: bearer`` 403 ``MissingProviderToken``; a JWT that
   is not ES256, names an unknown ``kid``, does not verify against that key, or whose ``iss``
   is not the key's team 403 ``InvalidProviderToken``; ``iat`` more than an hour ago (or in
   the future) 403 ``ExpiredProviderToken``; a new token for the same key sooner than 20
   minutes after the last new one 429 ``TooManyProviderTokenUpdates``.
3. Headers: no ``apns-topic`` 400 ``MissingTopic``, another app's 400 ``TopicDisallowed``;
   ``apns-push-type`` not one of Apple's 400 ``InvalidPushType``; ``apns-priority`` not 1, 5
   or 10 400 ``BadPriority``; ``apns-expiration`` not a number 400 ``BadExpirationDate``;
   ``apns-collapse-id`` over 64 bytes 400 ``BadCollapseId``.
4. The body: over 4,096 bytes 413 ``PayloadTooLarge``; not a JSON object with ``aps`` 400
   ``PayloadEmpty``.
5. The device token: not hexadecimal or never handed out 400 ``BadDeviceToken``;
   uninstalled 410 ``Unregistered``.

``require_http2``: refuse a request that did not come over HTTP/2 (Apple does). The fan-out
tests reach it through ``httpx.ASGITransport`` (HTTP/1.1) and leave it off;
``tests/server/test_native_http2.py`` serves it over HTTP/2 on loopback
(``tests/h2_server.py``) with it on. Plain ASGI.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.emulator_http import Receive, Request, Scope, Send, answer_json, read_request

PUSH_TYPES = frozenset(
    {
        "alert",
        "background",
        "location",
        "voip",
        "complication",
        "fileprovider",
        "mdm",
        "liveactivity",
    }
)
TOKEN_MAX_AGE = 3600
TOKEN_MIN_REFRESH = 20 * 60
_HEX = re.compile(r"(?:[0-9a-f]{2}){32,100}")


@dataclass(slots=True)
class _Injection:
    status: int
    count: int
    retry_after: int | None


@dataclass(frozen=True, slots=True)
class Received:
    token: str
    headers: dict[str, str]
    payload: dict[str, Any]


class _Refusal(Exception):  # noqa: N818 -- an answer to send
    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers or {}


@dataclass(slots=True)
class ApnsService:
    """The emulator; ``app`` is its ASGI application."""

    origin: str = "http://apns.test"
    team_id: str = "TEAM123456"
    key_id: str = "KEY1234567"
    topic: str = "fi.reppu.app"
    clock: Callable[[], float] = time.time
    require_http2: bool = False
    received: list[Received] = field(default_factory=list)
    keep_received: bool = True
    """False: keep no accepted notification (a benchmark's 100,000 would only fill memory)."""
    provider_tokens: int = 0
    """New provider tokens seen (a sender that reuses its token shows one an hour)."""
    _key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    _devices: dict[str, bool] = field(default_factory=dict)
    _failures: dict[str, _Injection] = field(default_factory=dict)
    _last_token: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Per key id: the newest provider token and when it was first seen."""

    def key_pem(self) -> str:
        """The team's .p8 file (a PKCS#8 PEM of the P-256 key)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def install(self, token: str | None = None) -> str:
        """A new app install's device token (32 bytes, hex), or ``token`` when given (a
        benchmark makes its own in another process)."""
        if token is None:
            token = secrets.token_hex(32)
        self._devices[token] = True
        return token

    def uninstall(self, token: str) -> None:
        self._devices[token] = False

    def fail_next(
        self, token: str, status: int, count: int = 1, retry_after: int | None = None
    ) -> None:
        self._failures[token] = _Injection(status, count, retry_after)

    def received_for(self, token: str) -> list[Received]:
        return [r for r in self.received if r.token == token]

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = await read_request(scope, receive, limit=4096)
        try:
            if self.require_http2 and request.http_version != "2":
                raise _Refusal(505, "HTTP/2 required")  # Apple closes the connection
            if request.method != "POST":
                raise _Refusal(405, "MethodNotAllowed")
            if not request.path.startswith("/3/device/"):
                raise _Refusal(404, "BadPath")
            token = request.path.removeprefix("/3/device/")
            self._inject(token)
            self._check_provider_token(request.headers.get("authorization", ""))
            self._check_headers(request.headers)
            payload = self._payload(request)
            self._check_device(token)
        except _Refusal as refusal:
            document: dict[str, Any] = {"reason": refusal.reason}
            if refusal.status == 410:
                document["timestamp"] = int(self.clock() * 1000)
            await answer_json(send, refusal.status, document, refusal.headers)
            return
        if self.keep_received:
            self.received.append(Received(token, request.headers, payload))
        apns_id = request.headers.get("apns-id") or _uuid()
        await answer_json(send, 200, {}, {"apns-id": apns_id})

    def _inject(self, token: str) -> None:
        injected = self._failures.get(token)
        if injected is None:
            return
        injected.count -= 1
        if injected.count <= 0:
            del self._failures[token]
        reason = "TooManyRequests" if injected.status == 429 else "ServiceUnavailable"
        extra = {} if injected.retry_after is None else {"retry-after": str(injected.retry_after)}
        raise _Refusal(injected.status, reason, extra)

    def _check_provider_token(self, authorization: str) -> None:
        if not authorization.lower().startswith("bearer "):
            raise _Refusal(403, "MissingProviderToken")
        token = authorization[7:]
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "ES256" or header.get("kid") != self.key_id:
                raise _Refusal(403, "InvalidProviderToken")
            claims = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["ES256"],
                issuer=self.team_id,
                options={"require": ["iss", "iat"], "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise _Refusal(403, "InvalidProviderToken") from None
        age = self.clock() - int(claims["iat"])
        if age > TOKEN_MAX_AGE or age < -60:
            raise _Refusal(403, "ExpiredProviderToken")
        last = self._last_token.get(self.key_id)
        if last is None or last[0] != token:
            if last is not None and self.clock() - last[1] < TOKEN_MIN_REFRESH:
                raise _Refusal(429, "TooManyProviderTokenUpdates")
            self._last_token[self.key_id] = (token, self.clock())
            self.provider_tokens += 1

    def _check_headers(self, headers: dict[str, str]) -> None:
        topic = headers.get("apns-topic")
        if not topic:
            raise _Refusal(400, "MissingTopic")
        if topic != self.topic:
            raise _Refusal(400, "TopicDisallowed")
        push_type = headers.get("apns-push-type", "alert")
        if push_type not in PUSH_TYPES:
            raise _Refusal(400, "InvalidPushType")
        if headers.get("apns-priority", "10") not in ("1", "5", "10"):
            raise _Refusal(400, "BadPriority")
        if not headers.get("apns-expiration", "0").isdigit():
            raise _Refusal(400, "BadExpirationDate")
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            raise _Refusal(400, "BadCollapseId")

    def _payload(self, request: Request) -> dict[str, Any]:
        if len(request.body) > 4096:
            raise _Refusal(413, "PayloadTooLarge")
        try:
            payload = json.loads(request.body)
        except ValueError:
            raise _Refusal(400, "PayloadEmpty") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            raise _Refusal(400, "PayloadEmpty")
        return payload

    def _check_device(self, token: str) -> None:
        installed = self._devices.get(token) if _HEX.fullmatch(token) else None
        if installed is None:
            raise _Refusal(400, "BadDeviceToken")
        if not installed:
            raise _Refusal(410, "Unregistered")


def _uuid() -> str:
    raw = secrets.token_hex(16).upper()
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
