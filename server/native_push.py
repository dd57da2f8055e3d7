"""Native push on the wire: Firebase Cloud Messaging and the Apple Push Notification service.

The delivery worker's ``fcm`` and ``apns`` lanes call :meth:`NativeSender.send` for each
delivery; what goes in a request and what an answer means are ``notifications/fcm.py`` and
``notifications/apns.py``. One ``httpx.AsyncClient`` with HTTP/2 carries both (APNs speaks
only HTTP/2; FCM takes either), at most ``push_connections_per_origin`` requests at once per
service. Credentials are kept in memory only as long as they are good:

* FCM's OAuth access token is fetched when first needed and kept until
  :data:`notifications.fcm.TOKEN_MARGIN` seconds before it expires; one fetch at a time, so a
  storm's first batch asks Google once, not 200 times. A 401 from FCM drops it.
* The APNs provider token is signed when first needed and again when its 30-minute period
  (:data:`notifications.apns.TOKEN_PERIOD`) ends: Apple refuses one older than an hour and
  one renewed more often than every 20 minutes, and every worker process signs the very same
  token in the same period (deterministic signature), so Apple sees one token per key
  however many workers send. ``ExpiredProviderToken`` drops it.

APNs gets a client of its own that speaks only HTTP/2 (:func:`apns_client`), and each APNs
request carries a ``trace`` hook that checks, right after the TLS handshake and before a byte
of the request goes out, that the server chose ``h2`` by ALPN: a server that did not (a proxy,
a wrong ``REPPU_APNS_URL``) never sees the provider token. That, and a certificate the client
does not trust, is a configuration error: reported once, not retried.

Neither token, nor a device token, nor a message body is ever logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpcore
import httpx

from notifications import apns, fcm
from notifications.native import retry_judgement
from notifications.payload import encode_payload
from notifications.webpush import Judgement, Kind, Verdict, backoff_delay
from server.clock import utc_now
from server.settings import ApnsKey, FcmAccount, Settings

log = logging.getLogger("reppu.native_push")

NATIVE_TIMEOUT = 10.0
PREVIEW_BYTES = 1024
"""Reppu's payload inside a native push (ids and a short preview; the app pulls the rest). The
title and body shown by the phone are the payload's, so they are cut alike, and an APNs body
stays well under Apple's 4,096 bytes."""


@dataclass(frozen=True, slots=True)
class NativeText:
    """What one notification says (``server.deliver.Text``'s fields the native channels use)."""

    kind: Kind
    item_id: int | None
    title: str
    body: str
    topic: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class Answer:
    """The service's HTTP status (None: no answer) and what it means."""

    status: int | None
    judgement: Judgement


class _Unavailable(Exception):  # noqa: N818 -- an answer to give, not an error of ours
    def __init__(self, judgement: Judgement) -> None:
        super().__init__(judgement.detail)
        self.judgement = judgement


class _NotHttp2(httpcore.ConnectError):
    """The APNs server did not choose HTTP/2 by ALPN: nothing was sent to it."""


async def _require_h2(event: str, info: dict[str, Any]) -> None:
    """httpcore's ``trace`` hook for APNs requests: refuse the connection when the TLS
    handshake did not settle on ``h2``. Called before the request is written, so an HTTP/1.1
    server is never sent the provider token."""
    if event != "connection.start_tls.complete":
        return
    stream = info.get("return_value")
    ssl_object = None if stream is None else stream.get_extra_info("ssl_object")
    if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
        # httpcore drops the stream it just made when this hook raises: close it here.
        if stream is not None:
            await stream.aclose()
        raise _NotHttp2("the server did not negotiate HTTP/2 (ALPN h2)")


def apns_client(settings: Settings, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """The client for APNs: HTTP/2 only (Apple speaks nothing else), at most
    ``push_connections_per_origin`` connections. ``verify``: the trusted certificates
    (``True``: the usual public roots; tests pass a context trusting their own)."""
    return httpx.AsyncClient(
        http1=False,
        http2=True,
        verify=verify,
        timeout=NATIVE_TIMEOUT,
        limits=httpx.Limits(max_connections=settings.push_connections_per_origin),
    )


def _refused_connection(exc: BaseException) -> str | None:
    """Why a failed connection is our configuration's fault, not the network's (None: it may
    be the network's, retry). Walks the exception's causes: httpx wraps httpcore's, which
    wraps the ``ssl`` error."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _NotHttp2):
            return "the server did not negotiate HTTP/2 (ALPN h2); check REPPU_APNS_URL"
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"its TLS certificate is not trusted ({seen.verify_message})"
        seen = seen.__cause__ or seen.__context__
    return None


class NativeSender:
    """Sends to FCM and APNs over HTTP/2; see the module's docstring. ``client`` carries both
    services when given (tests); by default FCM gets one that may fall back to HTTP/1.1 and
    APNs :func:`apns_client`'s."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient | None = None,
        *,
        apns: httpx.AsyncClient | None = None,
    ) -> None:
        self._fcm: FcmAccount | None = settings.fcm
        self._apns: ApnsKey | None = settings.apns
        self.client = client or httpx.AsyncClient(
            http2=True,
            timeout=NATIVE_TIMEOUT,
            limits=httpx.Limits(max_connections=settings.push_connections_per_origin),
        )
        self.apns_client = apns or client or apns_client(settings)
        self._gates = {
            name: asyncio.Semaphore(settings.push_connections_per_origin)
            for name in ("fcm", "apns")
        }
        self._access: tuple[str, dt.datetime] | None = None
        """FCM's access token and when to stop using it."""
        self._access_lock = asyncio.Lock()
        self._provider: tuple[str, dt.datetime] | None = None
        """The APNs provider token and its ``iat`` (its period's start)."""
        self._reported: set[str] = set()

    async def close(self) -> None:
        await self.client.aclose()
        if self.apns_client is not self.client:
            await self.apns_client.aclose()

    async def send(self, row: dict[str, Any], text: NativeText) -> Answer:
        """Send one delivery (``row``: its ``channel``, ``device_token``, ``urgent``,
        ``attempts``, ``expires_at``) and judge the answer."""
        payload = encode_payload(
            text.kind,
            item_id=text.item_id,
            title=text.title,
            body=text.body,
            count=text.count,
            limit=PREVIEW_BYTES,
        )
        shown = json.loads(payload)
        title, body = str(shown.get("title", "")), str(shown.get("body", ""))
        try:
            if row["channel"] == "fcm":
                return await self._send_fcm(row, text, payload, title, body)
            return await self._send_apns(row, text, payload, title, body)
        except _Unavailable as exc:
            return Answer(None, exc.judgement)

    # --- FCM -----------------------------------------------------------------------------

    async def _send_fcm(
        self, row: dict[str, Any], text: NativeText, payload: bytes, title: str, body: str
    ) -> Answer:
        account = self._account()
        now = utc_now()
        bearer = await self._access_token(account, row)
        request = fcm.message(
            token=row["device_token"],
            payload=payload,
            title=title,
            body=body,
            collapse=text.topic,
            ttl=int((row["expires_at"] - now).total_seconds()),
            urgent=bool(row["urgent"]),
        )
        url = f"{account.url}/v1/projects/{account.project_id}/messages:send"
        status, headers, answer = await self._post(
            "fcm",
            url,
            {"authorization": f"Bearer {bearer}", "content-type": "application/json"},
            request,
        )
        if status == 401:
            self._access = None  # revoked or expired early: the next send fetches another
        judgement = fcm.judge(
            status,
            headers,
            answer,
            now=utc_now(),
            attempt=int(row["attempts"]),
            expires_at=row["expires_at"],
        )
        if status == 401 and judgement.verdict is Verdict.CONFIG_ERROR:
            judgement = self._backoff(row, "HTTP 401: access token refused; fetching another")
        self._report("fcm", status, judgement)
        return Answer(status, judgement)

    def _account(self) -> FcmAccount:
        if self._fcm is None:
            raise _Unavailable(Judgement(Verdict.CONFIG_ERROR, detail="FCM is not configured"))
        return self._fcm

    async def _access_token(self, account: FcmAccount, row: dict[str, Any]) -> str:
        async with self._access_lock:
            now = utc_now()
            if self._access is not None and now < self._access[1]:
                return self._access[0]
            form = urlencode(
                {
                    "grant_type": fcm.GRANT_TYPE,
                    "assertion": fcm.assertion(
                        client_email=account.client_email,
                        private_key=account.private_key,
                        token_uri=account.token_uri,
                        now=now,
                    ),
                }
            ).encode()
            status, _, answer = await self._post(
                "fcm",
                account.token_uri,
                {"content-type": "application/x-www-form-urlencoded"},
                form,
            )
            if status is None or status >= 500:
                raise _Unavailable(self._backoff(row, f"FCM token exchange: HTTP {status}"))
            try:
                granted = json.loads(answer)
                token, lifetime = str(granted["access_token"]), int(granted["expires_in"])
            except (ValueError, KeyError, TypeError):
                token, lifetime = "", 0
            if status != 200 or not token:
                judgement = Judgement(
                    Verdict.CONFIG_ERROR,
                    detail=f"FCM token exchange refused: HTTP {status}; check "
                    "REPPU_FCM_SERVICE_ACCOUNT",
                )
                self._report("fcm-token", status, judgement)
                raise _Unavailable(judgement)
            keep = max(lifetime - fcm.TOKEN_MARGIN, 0)
            self._access = (token, now + dt.timedelta(seconds=keep))
            return token

    # --- APNs ----------------------------------------------------------------------------

    async def _send_apns(
        self, row: dict[str, Any], text: NativeText, payload: bytes, title: str, body: str
    ) -> Answer:
        if self._apns is None:
            return Answer(None, Judgement(Verdict.CONFIG_ERROR, detail="APNs is not configured"))
        key = self._apns
        now = utc_now()
        if self._provider is None or self._provider[1] != apns.token_issued_at(now):
            signed = apns.provider_token(
                private_key=key.private_key, key_id=key.key_id, team_id=key.team_id, now=now
            )
            self._provider = (signed, apns.token_issued_at(now))
        headers = apns.headers(
            topic=key.topic,
            collapse=text.topic,
            expires_at=row["expires_at"],
            urgent=bool(row["urgent"]),
        )
        headers["authorization"] = f"bearer {self._provider[0]}"
        request = apns.body(payload=payload, title=title, text=body, thread=text.topic)
        status, answer_headers, answer = await self._post(
            "apns", f"{key.url}/3/device/{row['device_token']}", headers, request
        )
        if status == 403 and apns.reason(answer) == "ExpiredProviderToken":
            self._provider = None
        judgement = apns.judge(
            status,
            answer_headers,
            answer,
            now=utc_now(),
            attempt=int(row["attempts"]),
            expires_at=row["expires_at"],
        )
        self._report("apns", status, judgement)
        return Answer(status, judgement)

    # --- shared --------------------------------------------------------------------------

    async def _post(
        self, service: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int | None, dict[str, str], bytes]:
        client = self.apns_client if service == "apns" else self.client
        extensions = {"trace": _require_h2} if service == "apns" else {}
        async with self._gates[service]:
            try:
                answer = await client.post(
                    url,
                    headers=headers,
                    content=body,
                    follow_redirects=False,
                    extensions=extensions,
                )
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                why = _refused_connection(exc)
                if why is None:
                    return None, {}, b""
                judgement = Judgement(Verdict.CONFIG_ERROR, detail=f"{service}: {why}")
                self._report(service, None, judgement)
                raise _Unavailable(judgement) from None
        return answer.status_code, dict(answer.headers), answer.content

    def _backoff(self, row: dict[str, Any], detail: str) -> Judgement:
        delay = backoff_delay(int(row["attempts"]))
        return retry_judgement(Verdict.BACKOFF, utc_now(), delay, row["expires_at"], detail)

    def _report(self, service: str, status: int | None, judgement: Judgement) -> None:
        """Log a refusal that says our configuration is wrong, once per service and worker."""
        if judgement.verdict is not Verdict.CONFIG_ERROR or service in self._reported:
            return
        self._reported.add(service)
        log.error("%s refused our request with %s (%s)", service, status, judgement.detail)
