"""Native push (FCM and APNs) end to end, against local emulators, on both backends."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import time_machine
from piccolo.engine.base import Engine

from notifications.schedule import HELSINKI
from server.clock import utc_now
from server.db.message_tables import Bulletin
from server.db.notify_tables import Delivery, NativeDevice
from server.deliver import Worker
from server.push_transport import HttpxTransport
from server.settings import ApnsKey, FcmAccount, Settings
from tests.apns_service import ApnsService
from tests.city import City
from tests.conftest import AppMaker
from tests.devices import change, device
from tests.fcm_service import FcmService
from tests.notify_world import PUSH_ORIGIN, deliveries, time_passes
from tests.push_service import PushService

# A school day in school hours, outside the default quiet hours (21:00-07:00).
pytestmark = pytest.mark.now("2026-11-24T10:15:00+02:00")

ANDROID_APP = "fi.reppu.android"


@pytest.fixture
def fx_fcm() -> FcmService:
    return FcmService()


@pytest.fixture
def fx_apns() -> ApnsService:
    return ApnsService()


@pytest.fixture
def fx_native_settings(fx_settings: Settings, fx_fcm: FcmService, fx_apns: ApnsService) -> Settings:
    account = fx_fcm.service_account()
    return dataclasses.replace(
        fx_settings,
        fcm=FcmAccount(
            project_id=account["project_id"],
            client_email=account["client_email"],
            private_key=account["private_key"],
            token_uri=account["token_uri"],
            app_id=ANDROID_APP,
            url=fx_fcm.origin,
        ),
        apns=ApnsKey(
            private_key=fx_apns.key_pem(),
            key_id=fx_apns.key_id,
            team_id=fx_apns.team_id,
            topic=fx_apns.topic,
            url=fx_apns.origin,
        ),
    )


@pytest_asyncio.fixture
async def fx_native_client(
    fx_native_settings: Settings, fx_db: Engine[Any], fx_make_app: AppMaker
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with FCM and APNs configured, in-process."""
    app = fx_make_app(fx_native_settings, fx_db)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://reppu.test") as client:
        yield client


def native_worker(
    engine: Engine[Any], settings: Settings, fcm: FcmService, apns: ApnsService
) -> Worker:
    """A worker whose FCM and APNs requests reach the emulators in-process (no network)."""
    native = httpx.AsyncClient(
        mounts={
            fcm.origin: httpx.ASGITransport(app=fcm.app),
            apns.origin: httpx.ASGITransport(app=apns.app),
        }
    )
    push = httpx.AsyncClient(transport=httpx.ASGITransport(app=PushService(PUSH_ORIGIN).app))
    return Worker(
        engine,
        settings,
        transport=HttpxTransport(push),
        native_client=native,
        idle_poll=0.05,
    )


async def _register(
    http: httpx.AsyncClient, headers: dict[str, str], platform: str, token: str, app_id: str
) -> httpx.Response:
    return await http.post(
        "/push/devices",
        json={"platform": platform, "token": token, "app_id": app_id},
        headers=headers,
    )


async def _phone(
    http: httpx.AsyncClient, username: str, platform: str, token: str, app_id: str
) -> int:
    client = await device(http, username)
    answer = await _register(http, client.headers, platform, token, app_id)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


async def _bulletin(http: httpx.AsyncClient, who: str, **args: Any) -> dict[str, Any]:
    sender = await device(http, who)
    result = await change(sender, "bulletin.send", **args)
    assert result["status"] == "applied", result
    return result


# --- registration ------------------------------------------------------------------------


async def test_registration_is_validated_and_idempotent(
    fx_native_client: httpx.AsyncClient,
    fx_city: City,
    fx_fcm: FcmService,
    fx_apns: ApnsService,
) -> None:
    http = fx_native_client
    mother = await device(http, "mother")
    token = fx_fcm.install()
    cases: list[tuple[dict[str, str], int, str]] = [
        ({"platform": "sms", "token": token, "app_id": ANDROID_APP}, 422, "request.invalid"),
        ({"platform": "fcm", "token": token, "app_id": "com.evil"}, 422, "push.unknown_app"),
        ({"platform": "apns", "token": token, "app_id": fx_apns.topic}, 422,
         "push.invalid_device_token"),
        ({"platform": "apns", "token": "ab" * 31, "app_id": fx_apns.topic}, 422,
         "push.invalid_device_token"),
        # Hex digits, long enough, but not whole bytes: no token Apple hands out.
        ({"platform": "apns", "token": "a" * 65, "app_id": fx_apns.topic}, 422,
         "push.invalid_device_token"),
        ({"platform": "apns", "token": "a" * 199, "app_id": fx_apns.topic}, 422,
         "push.invalid_device_token"),
        ({"platform": "fcm", "token": "has space", "app_id": ANDROID_APP}, 422,
         "push.invalid_device_token"),
        ({"platform": "fcm", "token": "x" * 4097, "app_id": ANDROID_APP}, 422, "request.invalid"),
    ]  # fmt: skip
    for body, status, code in cases:
        answer = await http.post("/push/devices", json=body, headers=mother.headers)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["code"] == code
    first = await _register(http, mother.headers, "fcm", token, ANDROID_APP)
    again = await _register(http, mother.headers, "fcm", token, ANDROID_APP)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["platform"] == "fcm"
    # APNs tokens are stored in lower case: the same token in capitals is the same device.
    hex_token = fx_apns.install()
    upper = await _register(http, mother.headers, "apns", hex_token.upper(), fx_apns.topic)
    lower = await _register(http, mother.headers, "apns", hex_token, fx_apns.topic)
    assert upper.json()["id"] == lower.json()["id"]
    assert await NativeDevice.count().where(NativeDevice.person == fx_city.mother) == 2
    # A rotated FCM token replaces this login's earlier one, in place: a delivery waiting
    # for the phone (quiet hours, a retry) goes to the new token.
    now = utc_now()
    await Delivery.insert(
        Delivery(
            key="waiting",
            person=fx_city.mother,
            channel="fcm",
            target=first.json()["id"],
            status="queued",
            not_before=now + dt.timedelta(hours=8),
            expires_at=now + dt.timedelta(days=1),
            updated_at=now,
        )
    )
    new_token = fx_fcm.install()
    rotated = await _register(http, mother.headers, "fcm", new_token, ANDROID_APP)
    assert rotated.status_code == 201
    assert rotated.json()["id"] == first.json()["id"]
    rows = await NativeDevice.select().where(NativeDevice.platform == "fcm")
    assert [(r["id"], r["token"]) for r in rows] == [(rotated.json()["id"], new_token)]
    (waiting,) = await Delivery.select(Delivery.status, Delivery.target).where(
        Delivery.key == "waiting"
    )
    assert waiting == {"status": "queued", "target": rotated.json()["id"]}
    # An unknown field is refused, as everywhere.
    extra = {"platform": "fcm", "token": new_token, "app_id": ANDROID_APP, "x": 1}
    refused = await http.post("/push/devices", json=extra, headers=mother.headers)
    assert (refused.status_code, refused.json()["code"]) == (422, "request.invalid")


async def test_another_persons_device_cannot_be_removed(
    fx_native_client: httpx.AsyncClient, fx_city: City, fx_fcm: FcmService
) -> None:
    http = fx_native_client
    mine = await _phone(http, "mother", "fcm", fx_fcm.install(), ANDROID_APP)
    stranger = await device(http, "olli_parent")
    answer = await http.delete(f"/push/devices/{mine}", headers=stranger.headers)
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
    assert await NativeDevice.exists().where(NativeDevice.id == mine)
    anonymous = await http.delete(f"/push/devices/{mine}")
    assert anonymous.status_code == 401
    owner = await device(http, "mother")
    assert (await http.delete(f"/push/devices/{mine}", headers=owner.headers)).status_code == 204
    assert not await NativeDevice.exists().where(NativeDevice.id == mine)


async def test_a_platform_without_credentials_is_refused(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    mother = await device(fx_client, "mother")
    answer = await _register(fx_client, mother.headers, "apns", "ab" * 32, "fi.reppu.app")
    assert answer.status_code == 422
    assert answer.json()["code"] == "push.native_unavailable"


async def test_signing_out_removes_the_device(
    fx_native_client: httpx.AsyncClient, fx_city: City, fx_fcm: FcmService
) -> None:
    http = fx_native_client
    mother = await device(http, "mother")
    answer = await _register(http, mother.headers, "fcm", fx_fcm.install(), ANDROID_APP)
    assert answer.status_code == 201
    assert (await http.post("/auth/logout", headers=mother.headers)).status_code in (200, 204)
    assert await NativeDevice.count() == 0


# --- delivery ----------------------------------------------------------------------------


async def test_a_bulletin_reaches_fcm_and_apns_devices_once(
    fx_native_client: httpx.AsyncClient,
    fx_city: City,
    fx_db: Engine[Any],
    fx_native_settings: Settings,
    fx_fcm: FcmService,
    fx_apns: ApnsService,
) -> None:
    http = fx_native_client
    android, iphone, other = fx_fcm.install(), fx_apns.install(), fx_fcm.install()
    await _phone(http, "mother", "fcm", android, ANDROID_APP)
    await _phone(http, "father", "apns", iphone, fx_apns.topic)
    await _phone(http, "olli_parent", "fcm", other, ANDROID_APP)  # 5A: not in the audience
    await _bulletin(
        http, "teacher", audience="group", audience_id=fx_city.class_5b,
        title="Retkipäivä", body="Huomenna retki Nuuksioon.",
    )  # fmt: skip
    worker = native_worker(fx_db, fx_native_settings, fx_fcm, fx_apns)
    stats = await worker.drain()
    assert stats.by_status == {"sent": 2}
    (message,) = fx_fcm.received[android]
    assert message["notification"] == {"title": "Retkipäivä", "body": "Huomenna retki Nuuksioon."}
    payload = json.loads(message["data"]["reppu"])
    assert (payload["kind"], payload["pull"]) == ("bulletin", 1)
    assert message["android"]["priority"] == "NORMAL"
    assert other not in fx_fcm.received
    (received,) = fx_apns.received_for(iphone)
    assert received.headers["apns-topic"] == fx_apns.topic
    assert received.headers["apns-push-type"] == "alert"
    assert received.headers["apns-priority"] == "5"
    assert received.headers["apns-collapse-id"] == message["android"]["collapse_key"]
    assert int(received.headers["apns-expiration"]) > dt.datetime.now(dt.UTC).timestamp()
    assert received.payload["aps"]["alert"]["title"] == "Retkipäivä"
    assert received.payload["reppu"]["kind"] == "bulletin"
    # Running again (a second worker, a retry) sends nothing more.
    await native_worker(fx_db, fx_native_settings, fx_fcm, fx_apns).drain()
    assert sum(len(v) for v in fx_fcm.received.values()) == 1
    assert len(fx_apns.received) == 1
    # The delivery report shows the channels.
    (bulletin_id,) = [r["id"] for r in await Bulletin.select(Bulletin.id)]
    teacher = await device(http, "teacher")
    report = (await http.get(f"/bulletins/{bulletin_id}/status", headers=teacher.headers)).json()
    by_person = {p["person_id"]: p for p in report["people"]}
    assert by_person[fx_city.mother]["channels"] == {"fcm": "sent"}
    assert by_person[fx_city.father]["channels"] == {"apns": "sent"}
    assert report["counts"]["reached"] == 2


async def test_credentials_are_reused_until_they_must_be_renewed(
    fx_native_client: httpx.AsyncClient,
    fx_city: City,
    fx_db: Engine[Any],
    fx_native_settings: Settings,
    fx_fcm: FcmService,
    fx_apns: ApnsService,
    fx_frozen_clock: time_machine.Coordinates,
) -> None:
    http = fx_native_client
    android, iphone = fx_fcm.install(), fx_apns.install()
    await _phone(http, "mother", "fcm", android, ANDROID_APP)
    await _phone(http, "father", "apns", iphone, fx_apns.topic)
    worker = native_worker(fx_db, fx_native_settings, fx_fcm, fx_apns)
    for title in ("one", "two"):
        await _bulletin(
            http, "teacher", audience="group", audience_id=fx_city.class_5b, title=title, body="b"
        )
        await worker.drain()
    assert (fx_fcm.exchanges, fx_apns.provider_tokens) == (1, 1)
    # 56 minutes on: FCM's access token (an hour, renewed 5 minutes early) and the provider
    # token (reused 50 minutes; Apple refuses one older than an hour) are both renewed.
    fx_frozen_clock.shift(dt.timedelta(minutes=56))
    await _bulletin(
        http, "teacher", audience="group", audience_id=fx_city.class_5b, title="three", body="b"
    )
    await worker.drain()
    assert (fx_fcm.exchanges, fx_apns.provider_tokens) == (2, 2)
    assert len(fx_fcm.received[android]) == 3
    assert len(fx_apns.received_for(iphone)) == 3
    assert {r["status"] for r in await deliveries()} == {"sent"}


async def test_gone_tokens_remove_the_device(
    fx_native_client: httpx.AsyncClient,
    fx_city: City,
    fx_db: Engine[Any],
    fx_native_settings: Settings,
    fx_fcm: FcmService,
    fx_apns: ApnsService,
) -> None:
    http = fx_native_client
    android, iphone = fx_fcm.install(), fx_apns.install()
    unknown = "0123456789abcdef" * 4  # well-formed, but APNs never handed it out
    await _phone(http, "mother", "fcm", android, ANDROID_APP)
    await _phone(http, "father", "apns", iphone, fx_apns.topic)
    await _phone(http, "mother", "apns", unknown, fx_apns.topic)
    fx_fcm.uninstall(android)
    fx_apns.uninstall(iphone)
    await _bulletin(
        http, "teacher", audience="group", audience_id=fx_city.class_5b, title="t", body="b"
    )
    await native_worker(fx_db, fx_native_settings, fx_fcm, fx_apns).drain()
    assert await NativeDevice.count() == 0
    outcomes = {
        (r["channel"], r["status"], r["last_status"], r["detail"])
        for r in await deliveries()
        if r["channel"] != "none"
    }
    assert outcomes == {
        ("fcm", "gone", 404, "HTTP 404 UNREGISTERED"),
        ("apns", "gone", 410, "HTTP 410 Unregistered"),
        ("apns", "gone", 400, "HTTP 400 BadDeviceToken"),
    }


async def test_429_and_503_are_retried_after_retry_after(
    fx_native_client: httpx.AsyncClient,
    fx_city: City,
    fx_db: Engine[Any],
    fx_native_settings: Settings,
    fx_fcm: FcmService,
    fx_apns: ApnsService,
) -> None:
    http = fx_native_client
    android, iphone = fx_fcm.install(), fx_apns.install()
    await _phone(http, "mother", "fcm", android, ANDROID_APP)
    await _phone(http, "father", "apns", iphone, fx_apns.topic)
    fx_fcm.fail_next(android, 429, retry_after=120)
    fx_apns.fail_next(iphone, 503, retry_after=300)
    await _bulletin(
        http, "teacher", audience="group", audience_id=fx_city.class_5b, title="t", body="b"
    )
    worker = native_worker(fx_db, fx_native_settings, fx_fcm, fx_apns)
    await worker.drain()
    now = dt.datetime.now(dt.UTC)
    (fcm_row,) = await deliveries(channel="fcm")
    (apns_row,) = await deliveries(channel="apns")
    assert (fcm_row["status"], fcm_row["last_status"]) == ("queued", 429)
    assert (apns_row["status"], apns_row["last_status"]) == ("queued", 503)
    assert (
        now + dt.timedelta(seconds=100) < fcm_row["not_before"] <= now + dt.timedelta(seconds=121)
    )
    assert (
        now + dt.timedelta(seconds=280) < apns_row["not_before"] <= now + dt.timedelta(seconds=301)
    )
    assert fx_fcm.received == {}
    assert fx_apns.received == []
    await time_passes()
    await worker.drain()
    assert len(fx_fcm.received[android]) == 1
    assert len(fx_apns.received_for(iphone)) == 1
    assert {r["status"] for r in await deliveries() if r["channel"] != "none"} == {"sent"}


def _quiet_now() -> dict[str, Any]:
    now = dt.datetime.now(HELSINKI)
    start = (now - dt.timedelta(hours=1)).time().replace(microsecond=0)
    end = (now + dt.timedelta(hours=1)).time().replace(microsecond=0)
    return {"quiet_start": start.isoformat(), "quiet_end": end.isoformat()}


async def test_quiet_hours_hold_native_push_and_urgent_breaks_through(
    fx_native_client: httpx.AsyncClient,
    fx_city: City,
    fx_db: Engine[Any],
    fx_native_settings: Settings,
    fx_fcm: FcmService,
    fx_apns: ApnsService,
) -> None:
    http = fx_native_client
    android, iphone = fx_fcm.install(), fx_apns.install()
    mother = await device(http, "mother")
    assert (await _register(http, mother.headers, "fcm", android, ANDROID_APP)).status_code == 201
    assert (await _register(http, mother.headers, "apns", iphone, fx_apns.topic)).status_code == 201
    answer = await http.put("/me/notifications", json=_quiet_now(), headers=mother.headers)
    assert answer.status_code == 200, answer.text
    await _bulletin(
        http, "teacher", audience="group", audience_id=fx_city.class_5b, title="Ordinary", body="b"
    )
    worker = native_worker(fx_db, fx_native_settings, fx_fcm, fx_apns)
    await worker.drain()
    assert fx_fcm.received == {}
    assert fx_apns.received == []
    for row in await deliveries(person=fx_city.mother):
        assert row["status"] == "queued"
        assert row["not_before"] > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=50)
    await _bulletin(
        http, "principal", audience="school", audience_id=fx_city.school_a,
        title="Koulu suljettu", body="Myrsky", urgent=True,
    )  # fmt: skip
    await worker.drain()
    (message,) = fx_fcm.received[android]
    assert message["notification"]["title"] == "Koulu suljettu"
    assert message["android"]["priority"] == "HIGH"
    (received,) = fx_apns.received_for(iphone)
    assert received.headers["apns-priority"] == "10"
    assert received.payload["reppu"]["kind"] == "urgent"
    await time_passes()
    await worker.drain()
    assert [m["notification"]["title"] for m in fx_fcm.received[android]] == [
        "Koulu suljettu",
        "Ordinary",
    ]
    assert len(fx_apns.received_for(iphone)) == 2


async def test_native_push_follows_the_webpush_preference(
    fx_native_client: httpx.AsyncClient,
    fx_city: City,
    fx_db: Engine[Any],
    fx_native_settings: Settings,
    fx_fcm: FcmService,
    fx_apns: ApnsService,
) -> None:
    http = fx_native_client
    android = fx_fcm.install()
    mother = await device(http, "mother")
    assert (await _register(http, mother.headers, "fcm", android, ANDROID_APP)).status_code == 201
    answer = await http.put(
        "/me/notifications",
        json={"webpush": "off", "quiet_start": None, "quiet_end": None},
        headers=mother.headers,
    )
    assert answer.status_code == 200, answer.text
    await _bulletin(
        http, "teacher", audience="group", audience_id=fx_city.class_5b, title="t", body="b"
    )
    await native_worker(fx_db, fx_native_settings, fx_fcm, fx_apns).drain()
    assert fx_fcm.received == {}
    (row,) = await deliveries(person=fx_city.mother, channel="fcm")
    assert row["status"] == "off"


async def test_an_admin_signing_devices_out_removes_them(
    fx_native_client: httpx.AsyncClient,
    fx_city: City,
    fx_fcm: FcmService,
    fx_apns: ApnsService,
) -> None:
    http = fx_native_client
    android = await device(http, "mother")
    iphone = await device(http, "mother")
    answer = await _register(http, android.headers, "fcm", fx_fcm.install(), ANDROID_APP)
    assert answer.status_code == 201
    kept = await _register(http, iphone.headers, "apns", fx_apns.install(), fx_apns.topic)
    assert kept.status_code == 201
    admin = await device(http, "admin")
    (android_login,) = [
        r["device"]
        for r in await NativeDevice.select(NativeDevice.device).where(
            NativeDevice.platform == "fcm"
        )
    ]
    answer = await http.delete(
        f"/admin/people/{fx_city.mother}/devices/{android_login}", headers=admin.headers
    )
    assert answer.status_code == 204, answer.text
    assert [r["id"] for r in await NativeDevice.select(NativeDevice.id)] == [kept.json()["id"]]
    answer = await http.post(f"/people/{fx_city.mother}/account/sign-out", headers=admin.headers)
    assert answer.status_code == 204, answer.text
    assert await NativeDevice.count() == 0


async def test_a_digest_reaches_an_apns_device_once_with_its_count(
    fx_native_client: httpx.AsyncClient,
    fx_city: City,
    fx_db: Engine[Any],
    fx_native_settings: Settings,
    fx_fcm: FcmService,
    fx_apns: ApnsService,
) -> None:
    http = fx_native_client
    iphone = fx_apns.install()
    mother = await device(http, "mother")
    assert (await _register(http, mother.headers, "apns", iphone, fx_apns.topic)).status_code == 201
    answer = await http.put(
        "/me/notifications",
        json={"webpush": "digest", "quiet_start": None, "quiet_end": None},
        headers=mother.headers,
    )
    assert answer.status_code == 200, answer.text
    for ident in (fx_city.class_5b, fx_city.math_a):
        await _bulletin(http, "teacher", audience="group", audience_id=ident, title="t", body="b")
    worker = native_worker(fx_db, fx_native_settings, fx_fcm, fx_apns)
    await worker.drain()
    assert fx_apns.received == []
    assert len(await deliveries(person=fx_city.mother, status="digest")) == 2
    await time_passes()
    await worker.drain()
    (received,) = fx_apns.received_for(iphone)
    assert (received.payload["reppu"]["kind"], received.payload["reppu"]["count"]) == ("digest", 2)
    assert len(await deliveries(person=fx_city.mother, status="digested")) == 2
