"""APNs over real HTTP/2 frames on loopback: the emulator refuses anything else."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import httpx

from notifications.webpush import Kind, Verdict
from server.native_push import NativeSender, NativeText
from server.settings import ApnsKey, Settings, load_settings
from tests.apns_service import ApnsService
from tests.h2_server import serve_h2


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
