"""The storm benchmark's device mix (``scripts/storm_native.py``) and its emulator processes'
apps (``tests/native_emulators.py``): the channels are drawn in the proportions asked, and
the counters the benchmark stops on count what the emulators accepted, and only that."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifications.webpush import Kind, Verdict
from server.native_push import NativeSender, NativeText, apns_client
from server.settings import ApnsKey, FcmAccount, Settings, load_settings
from tests.apns_service import ApnsService
from tests.fcm_service import FcmService
from tests.h2_server import serve_h2
from tests.native_emulators import build

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from storm_native import assign_channels, describe_mix, parse_mix

TEXT = NativeText(Kind.URGENT, 5, "Myrsky", "Koulut kiinni", "b5")


def _row(channel: str, token: str) -> dict[str, Any]:
    return {
        "channel": channel,
        "device_token": token,
        "urgent": True,
        "attempts": 1,
        "expires_at": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        "item_count": 1,
    }


def _base(tmp_path: Path) -> Settings:
    return load_settings({"REPPU_DATA_DIR": str(tmp_path / "var")})


def test_the_mix_is_drawn_in_the_proportions_asked() -> None:
    weights = parse_mix("webpush=1,fcm=1,apns=1")
    channels = assign_channels(3001, weights, seed=1)
    assert {c: channels.count(c) for c in set(channels)} == {
        "webpush": 1000,
        "fcm": 1000,
        "apns": 1001,
    }
    assert channels == assign_channels(3001, weights, seed=1)  # the seed decides the order
    assert channels != assign_channels(3001, weights, seed=2)
    only_web = parse_mix("webpush=1")
    assert set(assign_channels(10, only_web, seed=1)) == {"webpush"}
    assert describe_mix(weights) == "webpush=1,fcm=1,apns=1"
    assert describe_mix(parse_mix("fcm=2,webpush=1")) == "webpush=1,fcm=2"
    for bad in ("sms=1", "webpush", "webpush=0", "webpush=1,fcm=-1"):
        with pytest.raises(ValueError, match="--mix"):
            parse_mix(bad)


async def test_the_apns_process_app_counts_over_http2(tmp_path: Path) -> None:
    maker = ApnsService()  # the benchmark makes the key and tokens in its own process
    tokens = [maker.install() for _ in range(2)]
    state = {"private_key": maker.key_pem(), "tokens": tokens}
    app, counters = build("apns", "http://apns.test", json.loads(json.dumps(state)))
    async with serve_h2(app) as origin:
        key = ApnsKey(
            private_key=maker.key_pem(),
            key_id=maker.key_id,
            team_id=maker.team_id,
            topic=maker.topic,
            url=origin,
        )
        settings = dataclasses.replace(_base(tmp_path), apns=key)
        sender = NativeSender(settings, apns=apns_client(settings))
        try:
            answers = [await sender.send(_row("apns", t), TEXT) for t in [*tokens, tokens[0]]]
            unknown = await sender.send(_row("apns", "ab" * 32), TEXT)
        finally:
            await sender.close()
        async with httpx.AsyncClient(http1=False, http2=True) as http:
            stats = (await http.get(f"{origin}/_admin/stats")).json()
    assert [a.judgement.verdict for a in answers] == [Verdict.DELIVERED] * 3
    assert unknown.status == 400
    assert stats["accepted"] == 3
    assert stats["distinct_tokens_accepted"] == 2
    assert stats["refused"] == {"400": 1}
    assert stats["first_accept_at"] <= stats["last_accept_at"]
    assert counters.accepted == 3


async def test_the_fcm_process_app_counts(tmp_path: Path) -> None:
    maker = FcmService()
    token = maker.install()
    account = maker.service_account()
    app, _ = build("fcm", maker.origin, {"private_key": account["private_key"], "tokens": [token]})
    fcm = FcmAccount(
        project_id=account["project_id"],
        client_email=account["client_email"],
        private_key=account["private_key"],
        token_uri=account["token_uri"],
        app_id="fi.reppu.bench",
        url=maker.origin,
    )
    settings = dataclasses.replace(_base(tmp_path), fcm=fcm)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    sender = NativeSender(settings, client)
    try:
        sent = await sender.send(_row("fcm", token), TEXT)
        gone = await sender.send(_row("fcm", "not:a-token-it-gave"), TEXT)
        stats = (await client.get(f"{maker.origin}/_admin/stats")).json()
    finally:
        await sender.close()
    assert sent.judgement.verdict is Verdict.DELIVERED
    assert gone.status == 400
    # The OAuth token exchange is not a send: only the message counts.
    assert (stats["accepted"], stats["distinct_tokens_accepted"]) == (1, 1)
    assert stats["refused"] == {"400": 1}
