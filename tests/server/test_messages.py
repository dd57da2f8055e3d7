"""Messages, bulletins and receipts: who may send what, and what syncs to whom."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import httpx
import pytest
from piccolo.engine.base import Engine

from clients.python import ReppuClient
from server.db.message_tables import Bulletin, Message, ReadReceipt, Thread
from server.db.notify_tables import NotifyChannel, Outbox, PushSubscription
from server.db.tables import Lesson
from server.settings import Settings
from tests.city import City
from tests.devices import change, device, records
from tests.notify_world import PUSH_ORIGIN, deliveries, make_worker, subscribed_device
from tests.push_service import PushService

# Tests whose pushes must go at once run on a school day in school hours: outside the default
# quiet hours (21:00-07:00), and with lessons today.
SCHOOL_DAY_MORNING = "2026-11-24T10:15:00+02:00"


@pytest.fixture
def fx_push() -> PushService:
    return PushService(PUSH_ORIGIN)


async def _synced(client: ReppuClient) -> ReppuClient:
    await client.sync()
    return client


async def test_a_staff_message_to_families_gives_each_their_own_thread(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    teacher = await device(fx_client, "teacher")
    result = await change(
        teacher,
        "message.send",
        to=[fx_city.mother, fx_city.olli_parent],
        subject="Retki",
        body="Muistakaa eväät.",
    )
    assert result["status"] == "applied", result
    mother = await _synced(await device(fx_client, "mother"))
    olli_parent = await _synced(await device(fx_client, "olli_parent"))
    (mother_thread,) = records(mother, "thread").values()
    (other_thread,) = records(olli_parent, "thread").values()
    assert mother_thread["id"] != other_thread["id"]
    assert {p["id"] for p in mother_thread["participants"]} == {fx_city.teacher, fx_city.mother}
    (message,) = records(mother, "message").values()
    assert (message["body"], message["sender_id"]) == ("Muistakaa eväät.", fx_city.teacher)
    # The mother's reply reaches the teacher, never the other family.
    reply = await change(mother, "message.send", thread_id=mother_thread["id"], body="Kiitos!")
    assert reply["status"] == "applied", reply
    await teacher.sync()
    assert "Kiitos!" in {m["body"] for m in records(teacher, "message").values()}
    await olli_parent.sync()
    assert "Kiitos!" not in {m["body"] for m in records(olli_parent, "message").values()}
    # Nor may the other family write into the mother's thread.
    intruder = await change(olli_parent, "message.send", thread_id=mother_thread["id"], body="Hei")
    assert (intruder["status"], intruder["code"]) == ("rejected", "mutation.not_found")
    assert await Message.count() == 3


async def test_families_cannot_message_each_other_and_nothing_is_stored(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    mother = await device(fx_client, "mother")
    refused = await change(mother, "message.send", to=[fx_city.olli_parent], subject="s", body="b")
    assert (refused["status"], refused["code"], refused["field"]) == (
        "rejected",
        "mutation.forbidden",
        "$.to[0]",
    )
    # The field names the recipient refused by its place in ``to`` as sent, beside one who
    # would be allowed; a person who does not exist is refused the same way, so ``field``
    # tells nothing of who exists.
    both = await change(
        mother, "message.send", to=[fx_city.teacher, fx_city.olli_parent], subject="s", body="b"
    )
    nobody = await change(mother, "message.send", to=[2**31 - 1], subject="s", body="b")
    assert [(r["code"], r["field"], r["reason"]) for r in (both, nobody)] == [
        ("mutation.forbidden", "$.to[1]", refused["reason"]),
        ("mutation.forbidden", "$.to[0]", refused["reason"]),
    ]
    assert await Thread.count() == 0
    assert await Message.count() == 0
    assert await Outbox.count() == 0
    # A guardian may write to the staff of her children's school.
    allowed = await change(mother, "message.send", to=[fx_city.teacher], subject="s", body="b")
    assert allowed["status"] == "applied", allowed
    pupil = await device(fx_client, "aino")
    refused = await change(pupil, "message.send", to=[fx_city.teacher], subject="s", body="b")
    assert (refused["status"], refused["code"]) == ("rejected", "mutation.forbidden")


@pytest.mark.parametrize(
    ("who", "audience", "target", "urgent", "code"),
    [
        ("teacher", "group", "class_5b", False, None),
        ("teacher", "group", "class_3c", False, "mutation.forbidden"),  # another school's
        ("teacher", "school", "school_a", False, "mutation.forbidden"),
        ("teacher", "group", "class_5b", True, "mutation.forbidden"),  # urgent: leaders only
        ("principal", "school", "school_a", True, None),
        ("principal", "school", "school_b", False, "mutation.forbidden"),
        ("principal", "municipality", "city", False, "mutation.forbidden"),
        ("admin", "municipality", "city", True, None),
        ("mother", "group", "class_5b", False, "mutation.forbidden"),
        ("aino", "group", "class_5b", False, "mutation.forbidden"),
        ("teacher", "group", 999_999, False, "mutation.not_found"),
    ],
)
async def test_who_may_send_bulletins(
    fx_client: httpx.AsyncClient,
    fx_city: City,
    who: str,
    audience: str,
    target: str | int,
    urgent: bool,
    code: str | None,
) -> None:
    sender = await device(fx_client, who)
    result = await change(
        sender,
        "bulletin.send",
        audience=audience,
        audience_id=target if isinstance(target, int) else getattr(fx_city, target),
        title="t",
        body="b",
        urgent=urgent,
    )
    if code is None:
        assert result["status"] == "applied", result
        assert await Bulletin.count() == 1
        assert await Outbox.count() == 1
    else:
        assert (result["status"], result["code"]) == ("rejected", code), result
        assert await Bulletin.count() == 0
        assert await Outbox.count() == 0


async def test_bulletins_and_receipts_sync_to_their_readers_only(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    teacher = await device(fx_client, "teacher")
    await change(
        teacher,
        "bulletin.send",
        audience="group",
        audience_id=fx_city.class_5b,
        title="5B:n retki",
        body="b",
    )
    (bulletin_id,) = [r["id"] for r in await Bulletin.select(Bulletin.id)]
    mother = await _synced(await device(fx_client, "mother"))
    olli_parent = await _synced(await device(fx_client, "olli_parent"))
    assert [b["title"] for b in records(mother, "bulletin").values()] == ["5B:n retki"]
    assert records(olli_parent, "bulletin") == {}
    # Another family cannot even mark it read.
    refused = await change(olli_parent, "bulletin.read", id=bulletin_id)
    assert (refused["status"], refused["code"]) == ("rejected", "mutation.not_found")
    assert await ReadReceipt.count() == 0
    for _ in range(2):  # reading twice keeps one receipt
        assert (await change(mother, "bulletin.read", id=bulletin_id))["status"] == "applied"
    assert await ReadReceipt.count() == 1
    await mother.sync()
    (receipt,) = records(mother, "receipt").values()
    assert (receipt["item_type"], receipt["item_id"]) == ("bulletin", bulletin_id)
    await olli_parent.sync()
    assert records(olli_parent, "receipt") == {}


@pytest.mark.now(SCHOOL_DAY_MORNING)
async def test_delivery_report_shows_whom_to_call(
    fx_client: httpx.AsyncClient,
    fx_city: City,
    fx_db: Engine[Any],
    fx_settings: Settings,
    fx_push: PushService,
) -> None:
    mother, _ = await subscribed_device(fx_client, fx_push, "mother")
    teacher = await device(fx_client, "teacher")
    await change(
        teacher,
        "bulletin.send",
        audience="group",
        audience_id=fx_city.class_5b,
        title="t",
        body="b",
    )
    (bulletin_id,) = [r["id"] for r in await Bulletin.select(Bulletin.id)]
    await make_worker(fx_db, fx_settings, fx_push).drain()
    await change(mother, "bulletin.read", id=bulletin_id)
    answer = await fx_client.get(f"/bulletins/{bulletin_id}/status", headers=teacher.headers)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    by_person = {p["person_id"]: p for p in report["people"]}
    assert by_person[fx_city.mother]["status"] == "read"
    assert by_person[fx_city.mother]["channels"] == {"webpush": "sent"}
    # The father has no device and no channel: staff must reach him some other way.
    assert by_person[fx_city.father]["status"] == "not_reached"
    assert report["expansion"] == "done"
    assert report["counts"]["not_reached"] == 1
    answer = await fx_client.get(
        f"/bulletins/{bulletin_id}/status?only=not_reached", headers=teacher.headers
    )
    assert [p["person_id"] for p in answer.json()["people"]] == [fx_city.father]
    # A city's report comes in pages.
    seen, after = [], 0
    while after is not None:
        answer = await fx_client.get(
            f"/bulletins/{bulletin_id}/status?limit=1&after={after}", headers=teacher.headers
        )
        assert answer.json()["counts"] == report["counts"]
        seen += [p["person_id"] for p in answer.json()["people"]]
        after = answer.json().get("next_after")
    assert seen == sorted(by_person)
    answer = await fx_client.get(
        f"/bulletins/{bulletin_id}/status?limit=0", headers=teacher.headers
    )
    assert (answer.status_code, answer.json()["code"]) == (422, "request.invalid")
    for leader in ("principal", "admin"):  # the school's and the city's
        viewer = await device(fx_client, leader)
        answer = await fx_client.get(f"/bulletins/{bulletin_id}/status", headers=viewer.headers)
        assert answer.status_code == 200, leader
    for other in ("mother", "olli_parent", "aino"):
        viewer = await device(fx_client, other)
        answer = await fx_client.get(f"/bulletins/{bulletin_id}/status", headers=viewer.headers)
        assert (answer.status_code, answer.json()["code"]) == (404, "not_found"), other


async def test_subscriptions_are_the_callers_own_and_checked(
    fx_client: httpx.AsyncClient, fx_city: City, fx_push: PushService
) -> None:
    phone, _ = await subscribed_device(fx_client, fx_push, "mother")
    tablet, _ = await subscribed_device(fx_client, fx_push, "mother")
    other, _ = await subscribed_device(fx_client, fx_push, "olli_parent")
    assert await PushSubscription.count() == 3
    bad_host = {**fx_push.subscribe().to_json(), "endpoint": "https://evil.example/push/x"}
    answer = await fx_client.post("/push/subscriptions", json=bad_host, headers=phone.headers)
    assert (answer.status_code, answer.json()["code"]) == (422, "push.endpoint_not_allowed")
    bad_keys = fx_push.subscribe().to_json()
    off_curve = base64.urlsafe_b64encode(b"\x04" + bytes(64)).rstrip(b"=").decode()
    bad_keys["keys"]["p256dh"] = off_curve
    answer = await fx_client.post("/push/subscriptions", json=bad_keys, headers=phone.headers)
    assert (answer.status_code, answer.json()["code"]) == (422, "push.invalid_keys")
    assert await PushSubscription.count() == 3
    # Unsubscribing removes this device's subscription only.
    answer = await fx_client.delete("/push/subscriptions", headers=phone.headers)
    assert answer.status_code == 204
    left = {r["person"] for r in await PushSubscription.select(PushSubscription.person)}
    assert await PushSubscription.count() == 2
    assert left == {fx_city.mother, fx_city.olli_parent}
    del tablet, other
    answer = await fx_client.get("/push/vapid-public-key", headers=phone.headers)
    assert answer.status_code == 200
    assert len(answer.json()["public_key"]) == 87


async def test_channels_are_the_callers_own(fx_client: httpx.AsyncClient, fx_city: City) -> None:
    mother = await device(fx_client, "mother")
    other = await device(fx_client, "olli_parent")
    answer = await fx_client.post(
        "/me/channels",
        json={"kind": "email", "address": "aino.aiti@koti.fi", "label": "koti"},
        headers=mother.headers,
    )
    assert answer.status_code == 201, answer.text
    channel_id = answer.json()["id"]
    for address in ("nope://x", "slack://a/b/c"):  # a URL is never an address
        body = {"kind": "email", "address": address}
        answer = await fx_client.post("/me/channels", json=body, headers=mother.headers)
        assert (answer.status_code, answer.json()["code"]) == (422, "channel.invalid_address")
    answer = await fx_client.get("/me/channels", headers=other.headers)
    assert answer.json() == []
    answer = await fx_client.delete(f"/me/channels/{channel_id}", headers=other.headers)
    assert answer.status_code == 404
    assert await NotifyChannel.count() == 1
    answer = await fx_client.delete(f"/me/channels/{channel_id}", headers=mother.headers)
    assert answer.status_code == 204
    assert await NotifyChannel.count() == 0


async def test_preferences_round_trip_and_refuse_half_quiet_hours(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    mother = await device(fx_client, "mother")
    answer = await fx_client.get("/me/notifications", headers=mother.headers)
    assert answer.json()["webpush"] == "instant"
    assert answer.json()["quiet_start"] == "21:00"
    wanted = {
        "webpush": "digest",
        "apprise": "off",
        "quiet_start": "22:00",
        "quiet_end": "06:30",
        "digest_at": "17:00",
    }
    answer = await fx_client.put("/me/notifications", json=wanted, headers=mother.headers)
    assert answer.status_code == 200, answer.text
    answer = await fx_client.get("/me/notifications", headers=mother.headers)
    assert answer.json() == wanted
    half = {"quiet_start": "22:00:00", "quiet_end": None}
    answer = await fx_client.put("/me/notifications", json=half, headers=mother.headers)
    assert (answer.status_code, answer.json()["code"]) == (422, "request.invalid")
    other = await device(fx_client, "olli_parent")
    answer = await fx_client.get("/me/notifications", headers=other.headers)
    assert answer.json()["webpush"] == "instant"  # the mother's choice is hers alone


@pytest.mark.now(SCHOOL_DAY_MORNING)
async def test_todays_lesson_change_notifies_the_group(
    fx_client: httpx.AsyncClient,
    fx_city: City,
    fx_db: Engine[Any],
    fx_settings: Settings,
    fx_push: PushService,
) -> None:
    _, token = await subscribed_device(fx_client, fx_push, "mother")
    today = fx_city.today
    lesson = Lesson(
        group=fx_city.class_5b,
        subject="Music",
        teacher=fx_city.teacher,
        weekday=today.isoweekday(),
        starts_at=dt.time(12),
        ends_at=dt.time(13),
        valid_from=today - dt.timedelta(days=30),
    )
    await lesson.save()
    teacher = await device(fx_client, "teacher")
    next_week = today + dt.timedelta(days=7)
    result = await change(
        teacher, "lesson.change", lesson_id=lesson.id, on_date=next_week, cancelled=True
    )
    assert result["status"] == "applied", result
    assert await Outbox.count() == 0  # next week's change is not news yet: it syncs
    result = await change(
        teacher, "lesson.change", lesson_id=lesson.id, on_date=today, cancelled=True
    )
    assert result["status"] == "applied", result
    assert await Outbox.count() == 1
    await make_worker(fx_db, fx_settings, fx_push).drain()
    (payload,) = [json.loads(r.plaintext) for r in fx_push.received_for(token)]
    # In the guardian's language: the city's roster says Finnish (server/language.py).
    assert (payload["kind"], payload["title"]) == ("lesson_change", "Lukujärjestysmuutos")
    assert "Music" in payload["body"]
    assert "peruttu" in payload["body"]
    assert {r["person"] for r in await deliveries()} == {
        fx_city.mother,
        fx_city.father,
        fx_city.aino,
    }


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://evil.example/push/x",  # not a push service of ours
        f"{PUSH_ORIGIN}/push/x\x01y",  # a control character
        "http://push.test:99999/push/x",  # no such port
        "http://push.test:abc/push/x",
        "http://push.test:8444/push/x",  # another port of an allowed host
        "http://user:pw@push.test:8443/push/x",
    ],
)
async def test_push_endpoints_are_checked(
    fx_client: httpx.AsyncClient, fx_city: City, fx_push: PushService, endpoint: str
) -> None:
    mother = await device(fx_client, "mother")
    body = {**fx_push.subscribe().to_json(), "endpoint": endpoint}
    answer = await fx_client.post("/push/subscriptions", json=body, headers=mother.headers)
    assert (answer.status_code, answer.json()["code"]) == (422, "push.endpoint_not_allowed")
    assert await PushSubscription.count() == 0


async def test_a_shared_browser_reaches_only_whoever_subscribed_last(
    fx_client: httpx.AsyncClient, fx_city: City, fx_push: PushService
) -> None:
    browser = fx_push.subscribe().to_json()
    for who in ("mother", "olli_parent"):
        person = await device(fx_client, who)
        answer = await fx_client.post("/push/subscriptions", json=browser, headers=person.headers)
        assert answer.status_code == 201
    (row,) = await PushSubscription.select(PushSubscription.person)
    assert row["person"] == fx_city.olli_parent


async def test_preferences_refuse_times_with_an_offset(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    mother = await device(fx_client, "mother")
    aware = {"quiet_start": "21:00:00+02:00", "quiet_end": "07:00:00"}
    answer = await fx_client.put("/me/notifications", json=aware, headers=mother.headers)
    assert (answer.status_code, answer.json()["code"], answer.json()["field"]) == (
        422,
        "request.invalid",
        "$.quiet_start",
    )


async def test_a_staff_bulletin_stays_with_the_staff(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    principal = await device(fx_client, "principal")
    result = await change(
        principal,
        "bulletin.send",
        audience="school",
        audience_id=fx_city.school_a,
        roles=["staff"],
        title="Staff meeting about a pupil",
        body="b",
    )
    assert result["status"] == "applied", result
    teacher = await _synced(await device(fx_client, "teacher"))
    assert [b["title"] for b in records(teacher, "bulletin").values()] == [
        "Staff meeting about a pupil"
    ]
    for who in ("aino", "mother", "olli_parent"):
        reader = await _synced(await device(fx_client, who))
        assert records(reader, "bulletin") == {}, who
    admin = await device(fx_client, "admin")
    refused = await change(
        admin,
        "bulletin.send",
        audience="municipality",
        audience_id=fx_city.city,
        roles=["staff"],
        title="t",
        body="b",
    )
    assert (refused["status"], refused["code"], refused["field"]) == (
        "rejected",
        "mutation.invalid_args",
        "$.roles",
    )


async def test_a_bulletin_for_guardians_is_not_read_by_the_pupils(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    """A bulletin whose roles leave out pupils (the default: guardians) lives where the
    community's guardians and staff read it and its pupils do not, at every level."""
    c = fx_city
    sent = [
        ("teacher", "group", c.class_5b, None, "5B guardians"),
        ("teacher", "group", c.class_5b, ["guardians", "pupils"], "5B everyone"),
        ("principal", "school", c.school_a, ["guardians", "staff"], "School A guardians"),
        ("admin", "municipality", c.city, None, "City guardians"),
    ]
    for who, audience, audience_id, roles, title in sent:
        sender = await device(fx_client, who)
        extra = {} if roles is None else {"roles": roles}
        result = await change(
            sender,
            "bulletin.send",
            audience=audience,
            audience_id=audience_id,
            title=title,
            body="b",
            **extra,
        )
        assert result["status"] == "applied", result
    everything = {title for *_, title in sent}
    seen = {}
    for who in ("aino", "mother", "teacher", "principal", "olli_parent"):
        reader = await _synced(await device(fx_client, who))
        seen[who] = {b["title"] for b in records(reader, "bulletin").values()}
    assert seen["aino"] == {"5B everyone"}
    assert seen["mother"] == everything
    assert seen["teacher"] == everything  # teaches 5B, on school A's staff
    # A principal does not read a group's partitions; the school's and the city's, yes.
    assert seen["principal"] == {"School A guardians", "City guardians"}
    # Olli's class is 5A: the school's and the city's guardians' bulletins, not 5B's.
    assert seen["olli_parent"] == {"School A guardians", "City guardians"}
    # The pupil cannot mark what she may not read.
    (for_guardians,) = [
        r["id"] for r in await Bulletin.select(Bulletin.id).where(Bulletin.title == "5B guardians")
    ]
    aino = await device(fx_client, "aino")
    refused = await change(aino, "bulletin.read", id=for_guardians)
    assert (refused["status"], refused["code"]) == ("rejected", "mutation.not_found")


async def test_a_conversation_ends_with_the_tie(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    teacher = await device(fx_client, "teacher")
    await change(teacher, "message.send", to=[fx_city.olli_parent], subject="s", body="b")
    (thread,) = await Thread.select(Thread.id)
    from server.db.tables import Guardianship

    await Guardianship.update({Guardianship.valid_to: fx_city.today - dt.timedelta(days=1)}).where(
        Guardianship.guardian == fx_city.olli_parent
    )
    parent = await device(fx_client, "olli_parent")
    refused = await change(parent, "message.send", thread_id=thread["id"], body="Hei")
    assert (refused["status"], refused["code"]) == ("rejected", "mutation.forbidden")
    refused = await change(teacher, "message.send", thread_id=thread["id"], body="Hei")
    assert (refused["status"], refused["code"]) == ("rejected", "mutation.forbidden")
    assert await Message.count() == 1


async def test_pupils_start_conversations_with_staff_only_where_their_school_allows(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    olli = await device(fx_client, "olli")
    eero = await device(fx_client, "eero")
    ask = {"subject": "Läksyt", "body": "Mitkä olivat läksyt?"}
    refused = await change(olli, "message.send", to=[fx_city.teacher], **ask)
    # Refused for who the sender is, not whom they wrote to: no field names a recipient.
    assert (refused["status"], refused["code"], refused.get("field")) == (
        "rejected",
        "mutation.forbidden",
        None,
    )
    # The app learns from /me where a pupil may start one (and so whether to offer it).
    me = (await fx_client.get("/me", headers=olli.headers)).json()
    assert me["pupil_conversation_schools"] == []
    principal = await device(fx_client, "principal")
    rules = {"pupils_explain_from_age": None, "pupils_start_conversations": True}
    answer = await fx_client.put(
        f"/schools/{fx_city.school_a}/rules", json=rules, headers=principal.headers
    )
    assert answer.status_code == 200, answer.text
    me = (await fx_client.get("/me", headers=olli.headers)).json()
    assert me["pupil_conversation_schools"] == [fx_city.school_a]
    # Guardians and staff need no rule; eero's school has none.
    for other in ("mother", "teacher", "eero"):
        seen = await fx_client.get("/me", headers=(await device(fx_client, other)).headers)
        assert seen.json()["pupil_conversation_schools"] == [], other
    allowed = await change(olli, "message.send", to=[fx_city.teacher], **ask)
    assert allowed["status"] == "applied", allowed
    teacher = await _synced(await device(fx_client, "teacher"))
    assert "Mitkä olivat läksyt?" in {m["body"] for m in records(teacher, "message").values()}
    # Never with another family, and not from a school whose rules do not allow it.
    # Another family's guardian or pupil is named as the recipient refused (docs/messages.md).
    for pupil, to, field in (
        (olli, fx_city.mother, "$.to[0]"),
        (olli, fx_city.aino, "$.to[0]"),
        (eero, fx_city.teacher, None),
    ):
        result = await change(pupil, "message.send", to=[to], **ask)
        assert (result["status"], result["code"], result.get("field")) == (
            "rejected",
            "mutation.forbidden",
            field,
        ), to
    assert await Thread.count() == 1
