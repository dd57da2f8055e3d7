"""A local push service speaking the real Web Push protocol, for tests and benchmarks.

It plays the part of a browser vendor's push service (RFC 8030 delivery, RFC 8291 message
encryption, RFC 8292 VAPID) and of the browsers subscribed to it:

* ``PushService.subscribe()`` makes a subscription as a browser would: a fresh P-256 key pair
  and a 16-byte auth secret, with an endpoint ``{origin}/push/{token}``. The service keeps the
  private key, so it can decrypt what is pushed to that endpoint.
* ``POST /push/{token}`` is checked the way real services check it (VAPID header, JWT
  signature and claims, TTL, Content-Encoding, size, subscription state), and the body is
  decrypted with ``http_ece`` -- an implementation independent of the sender's -- so an
  accepted push proves the payload was encrypted for that device.
* Failures can be injected (``fail_next``, ``unsubscribe``) to exercise the sender's retry
  and clean-up paths.

Checks, in this order: an injected failure; unknown token 404, unsubscribed 410;
Authorization missing or malformed 401, VAPID refused 403 (signature, ``k=``, ``aud``,
``exp``, ``sub``); TTL 400; Content-Encoding 415; body over 4,096 bytes 413; empty body,
Urgency or Topic 400; payload that does not decrypt 400. Success: 201 with ``Location`` and
``TTL``. A verified Authorization header is cached until its ``exp``.

Plain ASGI, no framework: its own work is about 15 us a push, decryption (an ECDH exchange
each) about 95 us; under uvicorn one process accepts about 4,000 pushes/s on one core. Run it
standalone with ``python -m tests.push_service --host 127.0.0.1 --port 8443``. Admin endpoints
(for a benchmark in another process) live under ``/_admin/``: ``POST subscribe?n=N``,
``GET stats``, ``POST fail`` ``{"token", "status", "count", "retry_after"}``,
``POST unsubscribe`` ``{"token"}``, ``GET received[?token=T]``, ``POST reset``. A process
that is not the emulator gets subscriptions either from ``POST /_admin/subscribe?n=...`` or by
building ``PushService(origin, seed=S)`` with the same seed and the same sequence of
``subscribe``/``subscribe_many`` calls as the server process (``--seed S --subscribe N``).

Shortcut, on purpose: ``subscribe_many`` does not make one key pair per device. It hands out
key pairs from a small pool made when the service is built (``key_pool_size``), each token
with its own auth secret. Encryption stays per device (the auth secret and the sender's
ephemeral key differ for every message), and 300,000 subscriptions take under two seconds
instead of minutes. ``subscribe`` always makes a fresh key pair.

Stricter than real services, on purpose: a push without a body is refused (400), as are an
``Urgency`` other than the four of RFC 8030 and a ``Topic`` that is not at most 32 characters
of the base64url alphabet. The injected failures are answered before any other check.
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import http_ece  # type: ignore[import-untyped]
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = ["MAX_BODY_BYTES", "PushService", "Received", "Subscription"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY_BYTES = 4096
"""Push services refuse a body over 4,096 bytes (RFC 8291 section 4 expects them to)."""
MAX_VAPID_LIFETIME = 24 * 60 * 60
"""RFC 8292 section 2: ``exp`` no more than 24 hours after the request."""
URGENCIES = frozenset({"very-low", "low", "normal", "high"})
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
_P256_ORDER = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
_VAPID_CACHE_LIMIT = 10_000
_JSON = (b"content-type", b"application/json")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    text = text.rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _public_point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a browser's ``PushSubscription`` tells the application server."""

    token: str
    endpoint: str
    p256dh: str
    """The device's public key: base64url without padding of the 65-byte uncompressed point."""
    auth: str
    """The 16-byte auth secret, base64url without padding."""

    def to_json(self) -> dict[str, Any]:
        """The shape of ``PushSubscription.toJSON()`` in a browser."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
        }


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted push, decrypted."""

    token: str
    plaintext: bytes
    ttl: int
    urgency: str | None
    topic: str | None
    received_at: float
    """``time.monotonic()`` when it was accepted (system-wide on Linux, so comparable across
    processes on one machine)."""


@dataclass(slots=True)
class _Device:
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes


@dataclass(slots=True)
class _Injection:
    status: int
    remaining: int
    retry_after: int | None


class _Refusal(Exception):  # noqa: N818 -- an answer to send, not an error of ours
    def __init__(
        self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class PushService:
    """The emulator. ``app`` is the ASGI application; everything else is for the test.

    :param origin: scheme, host and port the senders reach it at, e.g.
        ``"http://127.0.0.1:8443"``; the VAPID ``aud`` claim must equal it exactly.
    :param vapid_public_key: if given (base64url uncompressed point), the ``k=`` of every
        Authorization header must be this application server key.
    :param seed: makes tokens, keys and auth secrets deterministic: two services built with the
        same seed and making the same sequence of ``subscribe``/``subscribe_many`` calls hold
        the same subscriptions. Test use only; the keys are predictable.
    :param key_pool_size: how many key pairs ``subscribe_many`` shares out.
    :param keep_received: ``False`` keeps only the counters (long benchmarks).
    :param clock: wall clock for VAPID ``exp`` (seconds since the epoch); tests may move it.
    """

    def __init__(
        self,
        origin: str,
        vapid_public_key: str | None = None,
        *,
        seed: int | None = None,
        key_pool_size: int = 32,
        keep_received: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
            raise ValueError(f"origin must be scheme://host[:port], not {origin!r}")
        if key_pool_size < 1:
            raise ValueError("key_pool_size must be at least 1")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.vapid_public_key = vapid_public_key.rstrip("=") if vapid_public_key else None
        self.keep_received = keep_received
        self.clock = clock

        self.received: list[Received] = []
        self.accepted = 0
        self.refused: collections.Counter[int] = collections.Counter()
        """Every answer other than 201, by status, injected ones included."""
        self.injected: collections.Counter[int] = collections.Counter()
        """The answers that came from ``fail_next``, by status."""
        self.first_accept_at: float | None = None
        self.last_accept_at: float | None = None
        self.vapid_verifications = 0
        """How many Authorization headers were verified in full (the rest hit the cache)."""

        self._rng = random.Random(seed) if seed is not None else None
        self._devices: dict[str, _Device] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._gone: set[str] = set()
        self._accepted_tokens: set[str] = set()
        self._injections: dict[str | None, collections.deque[_Injection]] = {}
        self._vapid_ok: dict[bytes, float] = {}
        self._message_ids = 0
        self._pool = [self._new_key() for _ in range(key_pool_size)]
        self._pool_points = [_b64url(_public_point(key)) for key in self._pool]
        self._pool_next = 0

    # -- subscriptions ---------------------------------------------------------------------

    def _random_bytes(self, n: int) -> bytes:
        return self._rng.randbytes(n) if self._rng is not None else os.urandom(n)

    def _new_key(self) -> ec.EllipticCurvePrivateKey:
        if self._rng is None:
            return ec.generate_private_key(ec.SECP256R1())
        scalar = self._rng.randrange(1, _P256_ORDER)
        return ec.derive_private_key(scalar, ec.SECP256R1())

    def _add(self, key: ec.EllipticCurvePrivateKey, p256dh: str) -> Subscription:
        token = _b64url(self._random_bytes(18))
        while token in self._devices or token in self._gone:
            token = _b64url(self._random_bytes(18))
        auth = self._random_bytes(16)
        sub = Subscription(token, f"{self.origin}/push/{token}", p256dh, _b64url(auth))
        self._devices[token] = _Device(key, auth)
        self._subscriptions[token] = sub
        return sub

    def subscribe(self) -> Subscription:
        """A new subscription with its own fresh key pair, as a browser makes one."""
        key = self._new_key()
        return self._add(key, _b64url(_public_point(key)))

    def subscribe_many(self, n: int) -> list[Subscription]:
        """``n`` new subscriptions, fast: key pairs come from the pool, auth secrets are new."""
        subs: list[Subscription] = []
        pool, points, size = self._pool, self._pool_points, len(self._pool)
        for _ in range(n):
            i = self._pool_next
            self._pool_next = (i + 1) % size
            subs.append(self._add(pool[i], points[i]))
        return subs

    def subscription(self, token: str) -> Subscription:
        """The subscription with that token (also after ``unsubscribe``); KeyError if none."""
        return self._subscriptions[token]

    def unsubscribe(self, token: str) -> None:
        """From now on that token answers 410 Gone, as after the user revoked permission."""
        if token not in self._subscriptions:
            raise KeyError(token)
        self._devices.pop(token, None)
        self._gone.add(token)

    # -- failure injection and introspection ----------------------------------------------

    def fail_next(
        self, token: str | None, status: int, count: int = 1, retry_after: int | None = None
    ) -> None:
        """The next ``count`` pushes to ``token`` (to any token if ``None``) answer ``status``.

        They are not decrypted, not recorded, and counted in ``refused`` and ``injected``.
        ``retry_after`` (seconds) is sent as ``Retry-After``, for 429 and 503. Injections for
        one token come before those for any token; several queue up in order.
        """
        if not 400 <= status <= 599:
            raise ValueError("status must be 4xx or 5xx")
        if count < 1:
            raise ValueError("count must be at least 1")
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must not be negative")
        self._injections.setdefault(token, collections.deque()).append(
            _Injection(status, count, retry_after)
        )

    def received_for(self, token: str) -> list[Received]:
        return [r for r in self.received if r.token == token]

    def stats(self) -> dict[str, Any]:
        """Counters as plain JSON-able data (what ``GET /_admin/stats`` answers)."""
        return {
            "accepted": self.accepted,
            "refused": {str(k): v for k, v in sorted(self.refused.items())},
            "injected": {str(k): v for k, v in sorted(self.injected.items())},
            "first_accept_at": self.first_accept_at,
            "last_accept_at": self.last_accept_at,
            "distinct_tokens_accepted": len(self._accepted_tokens),
            "subscriptions": len(self._devices),
            "gone": len(self._gone),
            "received_kept": len(self.received),
            "vapid_verifications": self.vapid_verifications,
        }

    def reset_counters(self) -> None:
        """Forget received pushes, counters and pending injections; keep the subscriptions."""
        self.received.clear()
        self.accepted = 0
        self.refused.clear()
        self.injected.clear()
        self.first_accept_at = self.last_accept_at = None
        self.vapid_verifications = 0
        self._accepted_tokens.clear()
        self._injections.clear()
        self._vapid_ok.clear()

    # -- ASGI ------------------------------------------------------------------------------

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path: str = scope["path"]
            if path.startswith("/push/"):
                await self._push(scope, receive, send, path[6:])
            elif path.startswith("/_admin/"):
                await self._admin(scope, receive, send, path[8:])
            else:
                await _answer(send, 404, "no such resource")
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    def _take_injection(self, token: str) -> _Injection | None:
        for key in (token, None):
            queue = self._injections.get(key)
            if queue:
                injection = queue[0]
                injection.remaining -= 1
                if injection.remaining <= 0:
                    queue.popleft()
                    if not queue:
                        del self._injections[key]
                return injection
        return None

    async def _push(self, scope: Scope, receive: Receive, send: Send, token: str) -> None:
        if scope["method"] != "POST":
            await _answer(send, 405, "push with POST", [(b"allow", b"POST")])
            return
        body = await _read_body(receive)
        if body is None:  # the client went away
            return
        try:
            if self._injections:
                injection = self._take_injection(token)
                if injection is not None:
                    self.injected[injection.status] += 1
                    extra = []
                    if injection.retry_after is not None:
                        extra.append((b"retry-after", str(injection.retry_after).encode()))
                    raise _Refusal(injection.status, "injected failure", extra)
            ttl = self._deliver(scope, token, body)
        except _Refusal as refusal:
            self.refused[refusal.status] += 1
            await _answer(send, refusal.status, refusal.message, refusal.headers)
            return
        self._message_ids += 1
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [
                    (b"location", f"{self.origin}/m/{self._message_ids}".encode()),
                    (b"ttl", ttl),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    def _deliver(self, scope: Scope, token: str, body: bytes) -> bytes:
        """Check one push and record it (returns its TTL), or raise the refusal to answer."""
        device = self._devices.get(token)
        if device is None:
            if token in self._gone:
                raise _Refusal(410, "subscription expired or unsubscribed")
            raise _Refusal(404, "no such subscription")

        authorization: bytes | None = None
        ttl: bytes | None = None
        encoding: bytes | None = None
        urgency: bytes | None = None
        topic: bytes | None = None
        name: bytes
        value: bytes
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"ttl":
                ttl = value
            elif name == b"content-encoding":
                encoding = value
            elif name == b"urgency":
                urgency = value
            elif name == b"topic":
                topic = value

        if authorization is None:
            raise _Refusal(401, "Authorization: vapid t=..., k=... required")
        self._check_vapid(authorization)
        if ttl is None or not ttl.strip().isdigit():
            raise _Refusal(400, "TTL header required: a non-negative integer")
        if encoding is None or encoding.strip().lower() != b"aes128gcm":
            raise _Refusal(415, "Content-Encoding must be aes128gcm")
        if len(body) > MAX_BODY_BYTES:
            raise _Refusal(413, f"body over {MAX_BODY_BYTES} bytes")
        if not body:
            raise _Refusal(400, "empty body")
        urgency_text = topic_text = None
        if urgency is not None:
            urgency_text = urgency.decode("latin-1").strip().lower()
            if urgency_text not in URGENCIES:
                raise _Refusal(400, "Urgency must be very-low, low, normal or high")
        if topic is not None:
            topic_text = topic.decode("latin-1").strip()
            if not _TOPIC.fullmatch(topic_text):
                raise _Refusal(400, "Topic must be 1-32 characters of base64url")
        try:
            plaintext: bytes = http_ece.decrypt(
                body, private_key=device.private_key, auth_secret=device.auth, version="aes128gcm"
            )
        except Exception as exc:
            raise _Refusal(400, f"payload does not decrypt: {exc}") from None

        now = time.monotonic()
        ttl = ttl.strip()
        self.accepted += 1
        if self.first_accept_at is None:
            self.first_accept_at = now
        self.last_accept_at = now
        self._accepted_tokens.add(token)
        if self.keep_received:
            self.received.append(
                Received(token, plaintext, int(ttl), urgency_text, topic_text, now)
            )
        return ttl

    def _check_vapid(self, header: bytes) -> None:
        now = self.clock()
        exp = self._vapid_ok.get(header)
        if exp is not None:
            if exp > now:
                return
            del self._vapid_ok[header]
            raise _Refusal(403, "VAPID JWT expired")

        scheme, _, params = header.decode("latin-1").strip().partition(" ")
        if scheme.lower() != "vapid":
            raise _Refusal(401, "Authorization scheme must be vapid")
        fields: dict[str, str] = {}
        for part in params.split(","):
            name, eq, value = part.strip().partition("=")
            if not eq:
                raise _Refusal(401, "malformed vapid parameters")
            fields[name.strip().lower()] = value.strip()
        token, k = fields.get("t"), fields.get("k")
        if not token or not k:
            raise _Refusal(401, "vapid t= and k= required")
        k = k.rstrip("=")
        if self.vapid_public_key is not None and k != self.vapid_public_key:
            raise _Refusal(403, "k= is not the application server key of this subscription")
        try:
            point = _b64url_decode(k)
            if len(point) != 65 or point[0] != 4:
                raise ValueError("not an uncompressed point")
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except ValueError as exc:
            raise _Refusal(401, f"k= is not a P-256 public key: {exc}") from None

        try:
            decoded = jwt.api_jws.decode_complete(token, key=public_key, algorithms=["ES256"])
        except jwt.InvalidSignatureError:
            raise _Refusal(403, "VAPID JWT signature does not verify against k=") from None
        except jwt.InvalidAlgorithmError:
            raise _Refusal(403, "VAPID JWT must be ES256") from None
        except jwt.DecodeError as exc:
            raise _Refusal(401, f"malformed VAPID JWT: {exc}") from None
        except jwt.PyJWTError as exc:
            raise _Refusal(403, f"VAPID JWT refused: {exc}") from None
        try:
            claims = json.loads(decoded["payload"])
        except ValueError:
            raise _Refusal(403, "VAPID JWT claims are not JSON") from None
        if not isinstance(claims, dict):
            raise _Refusal(403, "VAPID JWT claims are not an object")

        aud = claims.get("aud")
        if aud != self.origin:
            raise _Refusal(403, f"VAPID aud {aud!r} is not this push service, {self.origin!r}")
        exp_claim = claims.get("exp")
        if not isinstance(exp_claim, int | float) or isinstance(exp_claim, bool):
            raise _Refusal(403, "VAPID exp missing or not a number")
        if exp_claim <= now:
            raise _Refusal(403, "VAPID JWT expired")
        if exp_claim > now + MAX_VAPID_LIFETIME:
            raise _Refusal(403, "VAPID exp more than 24 hours ahead")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
            raise _Refusal(403, "VAPID sub must be a mailto: or https: URI")

        self.vapid_verifications += 1
        if len(self._vapid_ok) >= _VAPID_CACHE_LIMIT:
            self._vapid_ok.clear()
        self._vapid_ok[header] = float(exp_claim)

    # -- admin (HTTP access to the test-side methods, for another process) ----------------

    async def _admin(self, scope: Scope, receive: Receive, send: Send, action: str) -> None:
        method: str = scope["method"]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        body = await _read_body(receive, limit=1 << 20)
        if body is None:
            return
        try:
            result = self._admin_action(method, action, query, body)
        except _Refusal as refusal:
            await _answer(send, refusal.status, refusal.message)
            return
        data = json.dumps(result, separators=(",", ":")).encode()
        await _send(send, 200, [_JSON, (b"content-length", str(len(data)).encode())], data)

    def _admin_action(
        self, method: str, action: str, query: dict[str, list[str]], body: bytes
    ) -> Any:
        route = (method, action)
        if route == ("GET", "stats"):
            return self.stats()
        if route == ("POST", "subscribe"):
            try:
                n = int(query.get("n", ["1"])[0])
            except ValueError:
                raise _Refusal(400, "n must be an integer") from None
            if not 1 <= n <= 1_000_000:
                raise _Refusal(400, "n must be 1..1000000")
            return [
                {"token": s.token, "endpoint": s.endpoint, "p256dh": s.p256dh, "auth": s.auth}
                for s in self.subscribe_many(n)
            ]
        if route == ("POST", "fail"):
            spec = _json_object(body)
            try:
                self.fail_next(
                    spec.get("token"),
                    int(spec["status"]),
                    int(spec.get("count", 1)),
                    None if spec.get("retry_after") is None else int(spec["retry_after"]),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise _Refusal(400, f"bad failure spec: {exc!r}") from None
            return {"ok": True}
        if route == ("POST", "unsubscribe"):
            try:
                self.unsubscribe(str(_json_object(body)["token"]))
            except KeyError as exc:
                raise _Refusal(404, f"no such subscription: {exc}") from None
            return {"ok": True}
        if route == ("GET", "received"):
            token = query.get("token", [None])[0]
            items = self.received if token is None else self.received_for(token)
            return [_received_json(r) for r in items]
        if route == ("POST", "reset"):
            self.reset_counters()
            return {"ok": True}
        raise _Refusal(404, f"no admin action {method} {action}")


def _received_json(r: Received) -> dict[str, Any]:
    try:
        text: str | None = r.plaintext.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {
        "token": r.token,
        "text": text,
        "plaintext_b64": base64.b64encode(r.plaintext).decode("ascii"),
        "ttl": r.ttl,
        "urgency": r.urgency,
        "topic": r.topic,
        "received_at": r.received_at,
    }


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise _Refusal(400, "body must be JSON") from None
    if not isinstance(value, dict):
        raise _Refusal(400, "body must be a JSON object")
    return value


async def _read_body(receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The request body, cut off just past ``limit`` (enough to tell it was too long)."""
    message = await receive()
    if message["type"] == "http.disconnect":
        return None
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        if size <= limit:
            chunks.append(chunk)
            size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)[: limit + 1]


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _answer(
    send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """An error answer in the shape Mozilla's autopush uses."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = json.dumps(
        {"code": status, "errno": status, "error": phrase, "message": message}
    ).encode()
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await _send(send, status, headers, body)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--origin", help="what VAPID aud must be (default http://HOST:PORT)")
    parser.add_argument("--vapid-public-key", help="require this k= (base64url)")
    parser.add_argument("--seed", type=int, help="deterministic tokens and keys")
    parser.add_argument("--subscribe", type=int, default=0, help="make N subscriptions at start")
    parser.add_argument("--key-pool-size", type=int, default=32)
    parser.add_argument(
        "--no-keep-received", action="store_true", help="count pushes, keep no payloads"
    )
    args = parser.parse_args(argv)
    service = PushService(
        args.origin or f"http://{args.host}:{args.port}",
        args.vapid_public_key,
        seed=args.seed,
        key_pool_size=args.key_pool_size,
        keep_received=not args.no_keep_received,
    )
    if args.subscribe:
        service.subscribe_many(args.subscribe)
    uvicorn.run(
        service.app,
        host=args.host,
        port=args.port,
        interface="asgi3",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
