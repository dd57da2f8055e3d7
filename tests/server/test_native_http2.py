"""APNs over real HTTP/2 frames on loopback: the emulator refuses anything else. Over TLS
(a certificate authority made in the test), the client insists on ALPN ``h2`` and on a
certificate it trusts, and sends nothing otherwise."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import httpx
import pytest

from notifications.webpush import Kind, Verdict
from server.native_push import NativeSender, NativeText, apns_client
from server.settings import ApnsKey, Settings, load_settings
from tests.apns_service import ApnsService
from tests.h2_server import loopback_tls, serve_h2


def _settings(tmp_path: Any, apns: ApnsService, url: str) -> Settings:
    base = load_settings({"REPPU_DATA_DIR": str(tmp_path / "var")})
    key = ApnsKey(
        private_key=apns.key_pem(),
        key_id=apns.key_id,
        team_id=apns.team_id,
        topic=apns.topic,
        url=url,
    )
    return dataclasses.replace(base, apns=key)


def _row(token: str) -> dict[str, Any]:
    return {
        "channel": "apns",
        "device_token": token,
        "urgent": True,
        "attempts": 1,
        "expires_at": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        "item_count": 1,
    }


async def test_apns_is_reached_over_http2(tmp_path: Any) -> None:
    apns = ApnsService(require_http2=True)
    text = NativeText(Kind.URGENT, 7, "Koulu suljettu", "Myrsky", "b7")
    token, gone = apns.install(), apns.install()
    apns.uninstall(gone)
    async with serve_h2(apns.app) as origin:
        # Prior knowledge: HTTP/2 without TLS (Apple's is over TLS, chosen by ALPN).
        client = httpx.AsyncClient(http1=False, http2=True)
        sender = NativeSender(_settings(tmp_path, apns, origin), client)
        try:
            sent = await sender.send(_row(token), text)
            refused = await sender.send(_row(gone), text)
        finally:
            await sender.close()
    assert (sent.status, sent.judgement.verdict) == (200, Verdict.DELIVERED)
    assert (refused.status, refused.judgement.verdict) == (410, Verdict.GONE)
    (received,) = apns.received_for(token)
    assert received.payload["aps"]["alert"] == {"title": "Koulu suljettu", "body": "Myrsky"}


async def test_the_emulator_refuses_http1(tmp_path: Any) -> None:
    apns = ApnsService(require_http2=True)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=apns.app))
    sender = NativeSender(_settings(tmp_path, apns, "http://apns.test"), client)
    try:
        answer = await sender.send(_row(apns.install()), NativeText(Kind.URGENT, 1, "t", "b", "x"))
    finally:
        await sender.close()
    assert answer.status == 505
    assert apns.received == []


# --- over TLS, as Apple serves it ----------------------------------------------------------


def _counting(app: Any) -> tuple[Any, list[str]]:
    """``app``, noting each request's path: a refused connection must reach no request."""
    seen: list[str] = []

    async def counted(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await app(scope, receive, send)

    return counted, seen


async def test_apns_is_reached_over_tls_with_alpn_h2(tmp_path: Any) -> None:
    apns, tls = ApnsService(require_http2=True), loopback_tls()
    token = apns.install()
    async with serve_h2(apns.app, tls.server_context(alpn=("h2",))) as origin:
        settings = _settings(tmp_path, apns, origin)
        sender = NativeSender(settings, apns=apns_client(settings, verify=tls.client_context()))
        try:
            answer = await sender.send(_row(token), NativeText(Kind.URGENT, 3, "t", "b", "x"))
            # The connection is kept: a second push reuses it (no new handshake to check).
            again = await sender.send(_row(token), NativeText(Kind.URGENT, 4, "t", "b", "y"))
        finally:
            await sender.close()
    assert origin.startswith("https://")
    assert (answer.status, answer.judgement.verdict) == (200, Verdict.DELIVERED)
    assert again.status == 200
    assert len(apns.received_for(token)) == 2


@pytest.mark.parametrize("alpn", [("http/1.1",), ()], ids=["http1-only", "no-alpn"])
async def test_apns_refuses_a_server_that_does_not_negotiate_h2(
    tmp_path: Any, alpn: tuple[str, ...], caplog: pytest.LogCaptureFixture
) -> None:
    apns, tls = ApnsService(require_http2=False), loopback_tls()
    app, seen = _counting(apns.app)
    token = apns.install()
    async with serve_h2(app, tls.server_context(alpn=alpn)) as origin:
        settings = _settings(tmp_path, apns, origin)
        sender = NativeSender(settings, apns=apns_client(settings, verify=tls.client_context()))
        try:
            answer = await sender.send(_row(token), NativeText(Kind.URGENT, 3, "t", "b", "x"))
        finally:
            await sender.close()
    assert answer.status is None
    assert answer.judgement.verdict is Verdict.CONFIG_ERROR  # not retried: ours to fix
    assert "ALPN h2" in answer.judgement.detail
    assert seen == []  # refused after the handshake, before the request (and its token)
    assert "did not negotiate HTTP/2" in caplog.text


@pytest.mark.parametrize("trusted", ["public-roots", "another-ca"])
async def test_apns_refuses_an_untrusted_certificate(tmp_path: Any, trusted: str) -> None:
    apns, tls = ApnsService(require_http2=True), loopback_tls()
    app, seen = _counting(apns.app)
    token = apns.install()
    async with serve_h2(app, tls.server_context()) as origin:
        settings = _settings(tmp_path, apns, origin)
        # The default client trusts the public roots only; the other trusts a CA of its own.
        verify = loopback_tls().client_context() if trusted == "another-ca" else True
        sender = NativeSender(settings, apns=apns_client(settings, verify=verify))
        try:
            answer = await sender.send(_row(token), NativeText(Kind.URGENT, 3, "t", "b", "x"))
        finally:
            await sender.close()
    assert answer.status is None
    assert answer.judgement.verdict is Verdict.CONFIG_ERROR
    assert "certificate is not trusted" in answer.judgement.detail
    assert seen == []
