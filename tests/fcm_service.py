"""A local Firebase Cloud Messaging (HTTP v1) for tests: checks what Google checks.

* ``POST /token`` (the service account's ``token_uri``) is Google's OAuth 2.0 token
  endpoint for service accounts: ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``
  and an ``assertion`` JWT, which must be RS256-signed by the service account's key, with
  ``iss`` its e-mail address, ``aud`` the token URI, ``scope`` firebase.messaging, and
  ``exp`` in the future and at most an hour after ``iat``. Refusals are OAuth's JSON
  (``{"error": "invalid_grant", "error_description": ...}``); success is
  ``{"access_token", "expires_in": 3599, "token_type": "Bearer"}``.
* ``POST /v1/projects/{project}/messages:send`` needs ``Authorization: Bearer`` with a token
  it issued and not expired (else 401 ``UNAUTHENTICATED``), the service account's project
  (else 403 ``PERMISSION_DENIED``), and ``{"message": {"token", ...}}`` with a ``data`` of
  strings only (else 400 ``INVALID_ARGUMENT``). A token it never handed out is 400
  ``INVALID_ARGUMENT``; an uninstalled app's token is 404 ``UNREGISTERED``, as FCM answers.
  Errors are Google's JSON ``{"error": {"code", "message", "status", "details": [{"@type":
  ".../google.firebase.fcm.v1.FcmError", "errorCode"}]}}``. Success: 200 ``{"name"}``.
* ``fail_next(token, status, count, retry_after)`` answers the next sends to ``token`` with a
  429 ``QUOTA_EXCEEDED`` or 503 ``UNAVAILABLE`` (and ``Retry-After``), before other checks.

Plain ASGI, no network: tests reach it through ``httpx.ASGITransport``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.emulator_http import Receive, Scope, Send, answer_json, read_request

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ACCESS_TOKEN_LIFETIME = 3599
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
           404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}  # fmt: skip


@dataclass(slots=True)
class _Injection:
    status: int
    count: int
    retry_after: int | None


@dataclass(slots=True)
class FcmService:
    """The emulator; ``app`` is its ASGI application."""

    origin: str = "http://fcm.test"
    project_id: str = "reppu-test"
    clock: Callable[[], float] = time.time
    client_email: str = "reppu-push@reppu-test.iam.gserviceaccount.com"
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """The accepted messages, per device token."""
    keep_received: bool = True
    """False: count the accepted messages (``accepted``) but keep none (a benchmark's
    100,000 would only fill memory)."""
    accepted: int = 0
    exchanges: int = 0
    """Access tokens issued (a sender that caches asks once an hour)."""
    _key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    _issued: dict[str, float] = field(default_factory=dict)
    _devices: dict[str, bool] = field(default_factory=dict)
    """Token -> installed."""
    _failures: dict[str, _Injection] = field(default_factory=dict)

    @property
    def token_uri(self) -> str:
        return f"{self.origin}/token"

    def service_account(self) -> dict[str, str]:
        """The service-account JSON an operator downloads from the Firebase console."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": "test-key",
            "private_key": pem,
            "client_email": self.client_email,
            "token_uri": self.token_uri,
        }

    def install(self, token: str | None = None) -> str:
        """A new app install's registration token (FCM's shape: an id, ``:``, base64url), or
        ``token`` when given (a benchmark makes its own in another process)."""
        if token is None:
            token = f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(100)}"
        self._devices[token] = True
        return token

    def uninstall(self, token: str) -> None:
        self._devices[token] = False

    def fail_next(
        self, token: str, status: int, count: int = 1, retry_after: int | None = None
    ) -> None:
        self._failures[token] = _Injection(status, count, retry_after)

    def revoke_access_tokens(self) -> None:
        self._issued.clear()

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = await read_request(scope, receive)
        if request.method == "POST" and request.path == "/token":
            await self._token(send, request.body)
        elif request.method == "POST" and request.path.startswith("/v1/projects/"):
            await self._send(send, request.path, request.headers, request.body)
        else:
            await self._error(send, 404, "Not found.")

    async def _token(self, send: Send, body: bytes) -> None:
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        if form.get("grant_type") != GRANT_TYPE:
            await answer_json(send, 400, {"error": "unsupported_grant_type"})
            return
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self._key.public_key(),
                algorithms=["RS256"],
                audience=self.token_uri,
                issuer=self.client_email,
                options={"require": ["iss", "aud", "iat", "exp"], "verify_iat": False},
                leeway=0,
            )
        except jwt.PyJWTError as exc:
            await answer_json(
                send, 400, {"error": "invalid_grant", "error_description": type(exc).__name__}
            )
            return
        if int(claims["exp"]) - int(claims["iat"]) > 3600 or SCOPE not in str(
            claims.get("scope", "")
        ).split(" "):
            await answer_json(
                send, 400, {"error": "invalid_scope", "error_description": "Invalid JWT."}
            )
            return
        access = f"ya29.{secrets.token_urlsafe(32)}"
        self._issued[access] = self.clock() + ACCESS_TOKEN_LIFETIME
        self.exchanges += 1
        await answer_json(
            send,
            200,
            {"access_token": access, "expires_in": ACCESS_TOKEN_LIFETIME, "token_type": "Bearer"},
        )

    async def _send(self, send: Send, path: str, headers: dict[str, str], body: bytes) -> None:
        bearer = headers.get("authorization", "")
        expiry = self._issued.get(bearer.removeprefix("Bearer "))
        if not bearer.startswith("Bearer ") or expiry is None or expiry <= self.clock():
            await self._error(send, 401, "Request had invalid authentication credentials.")
            return
        if path != f"/v1/projects/{self.project_id}/messages:send":
            await self._error(send, 403, "Permission denied on the project.")
            return
        try:
            message = json.loads(body)["message"]
            token = message["token"]
            data = message.get("data", {})
            valid = isinstance(token, str) and all(isinstance(v, str) for v in data.values())
        except (ValueError, KeyError, TypeError, AttributeError):
            valid, token = False, ""
        if not valid:
            await self._error(send, 400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
            return
        injected = self._failures.get(token)
        if injected is not None:
            injected.count -= 1
            if injected.count <= 0:
                del self._failures[token]
            code = "QUOTA_EXCEEDED" if injected.status == 429 else "UNAVAILABLE"
            extra = (
                {} if injected.retry_after is None else {"retry-after": str(injected.retry_after)}
            )
            await self._error(send, injected.status, "Try again later.", code, extra)
            return
        installed = self._devices.get(token)
        if installed is None:
            await self._error(
                send, 400, "The registration token is not a valid FCM registration token",
                "INVALID_ARGUMENT",
            )  # fmt: skip
            return
        if not installed:
            await self._error(send, 404, "Requested entity was not found.", "UNREGISTERED")
            return
        if self.keep_received:
            self.received.setdefault(token, []).append(message)
        self.accepted += 1
        name = f"projects/{self.project_id}/messages/0:{self.accepted}"
        await answer_json(send, 200, {"name": name})

    async def _error(
        self,
        send: Send,
        status: int,
        text: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        error: dict[str, Any] = {"code": status, "message": text, "status": _STATUS[status]}
        if code is not None:
            error["details"] = [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
            ]
        await answer_json(send, status, {"error": error}, headers)
