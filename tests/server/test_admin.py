"""Admin over HTTP (``docs/admin.md``) on both databases: a school's people by role, a
person's devices and the sign-out of one, and sync health; for the city's admins only."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

import httpx
import pytest
import pytest_asyncio
from litestar import Litestar
from piccolo.engine.base import Engine

from schemas.core import OrganisationKind, StaffRoleKind
from server.app import create_app
from server.clock import utc_now
from server.compaction import compact
from server.db.message_tables import Bulletin
from server.db.notify_tables import Delivery, Outbox
from server.db.signin_tables import AccountEvent
from server.db.tables import Account, AuthToken, Organisation, Person, StaffRole
from server.identity import hash_password
from server.settings import Settings
from tests.city import PASSWORD, City
from tests.conftest import log_in_as

NOT_ADMINS = ["principal", "teacher", "mother", "aino", "admin_espoo"]
"""Everyone refused: a principal, a teacher, a guardian, a pupil, and another city's admin."""


@dataclasses.dataclass(frozen=True)
class Espoo:
    city: int
    school: int
    admin: int


async def _other_city(c: City) -> Espoo:
    """A second municipality with a school and an admin of its own (``admin_espoo``)."""
    city = Organisation(kind=OrganisationKind.MUNICIPALITY, name="Espoo")
    await city.save()
    school = Organisation(kind=OrganisationKind.SCHOOL, name="Tapiolan koulu", parent=city.id)
    await school.save()
    admin = Person(given_name="Eila", family_name="Espoolainen")
    await admin.save()
    await StaffRole(
        person=admin.id,
        organisation=city.id,
        role=StaffRoleKind.ADMIN,
        valid_from=c.today - dt.timedelta(days=30),
    ).save()
    await Account(
        person=admin.id, username="admin_espoo", password_hash=hash_password(PASSWORD)
    ).save()
    return Espoo(city=int(city.id), school=int(school.id), admin=int(admin.id))


@pytest_asyncio.fixture
async def fx_espoo(fx_city: City) -> Espoo:
    return await _other_city(fx_city)


async def _people(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> httpx.Response:
    return await client.get("/admin/people", params=params, headers=headers)


async def _ids(
    client: httpx.AsyncClient, headers: dict[str, str], school: int, role: str
) -> list[int]:
    answer = await _people(client, headers, school=school, role=role)
    assert answer.status_code == 200, answer.text
    return [p["id"] for p in answer.json()["people"]]


async def test_an_admin_lists_a_schools_people_by_role(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city
    admin = await log_in_as(fx_client, "admin")
    assert await _ids(fx_client, admin, c.school_a, "pupil") == sorted([c.aino, c.olli])
    assert await _ids(fx_client, admin, c.school_b, "pupil") == [c.eero]
    # The former guardian's tie ended yesterday.
    assert await _ids(fx_client, admin, c.school_a, "guardian") == sorted(
        [c.mother, c.father, c.olli_parent]
    )
    assert await _ids(fx_client, admin, c.school_a, "teacher") == [c.teacher]
    assert await _ids(fx_client, admin, c.school_b, "teacher") == []
    assert await _ids(fx_client, admin, c.school_a, "principal") == [c.principal]
    assert await _ids(fx_client, admin, c.school_a, "admin") == [c.admin]

    await log_in_as(fx_client, "mother")  # a second device of the mother's
    await Account.update({Account.disabled: True}).where(Account.person == c.father)
    await Account.delete().where(Account.person == c.olli_parent)
    answer = await _people(fx_client, admin, school=c.school_a, role="guardian")
    people = {p["id"]: p for p in answer.json()["people"]}
    assert people[c.mother] == {
        "id": c.mother,
        "given_name": "Maria",
        "family_name": "Virtanen",
        "roles": ["guardian"],
        "account": "active",
        "devices": 1,
    }
    assert people[c.father]["account"] == "disabled"
    assert (people[c.olli_parent]["account"], people[c.olli_parent]["devices"]) == ("none", 0)
    assert answer.json()["next_cursor"] is None
    # Contact details never appear here.
    assert "email" not in answer.text
    assert "phone" not in answer.text
    # Every read of a page is audited, with the admin as the actor.
    listed = (
        await AccountEvent.select()
        .where(AccountEvent.kind == "admin.people_listed")
        .order_by(AccountEvent.id)
    )
    assert len(listed) == 8
    assert {e["actor"] for e in listed} == {c.admin}
    assert listed[-1]["detail"] == f"school {c.school_a}, role guardian, after 0"


async def test_people_come_a_page_at_a_time_in_id_order(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city
    admin = await log_in_as(fx_client, "admin")
    expected = sorted([c.mother, c.father, c.olli_parent])
    seen: list[int] = []
    cursor = 0
    for _ in range(5):
        page = (
            await _people(
                fx_client, admin, school=c.school_a, role="guardian", cursor=cursor, limit=2
            )
        ).json()
        seen += [p["id"] for p in page["people"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert seen == expected
    last = await _people(fx_client, admin, school=c.school_a, role="guardian", cursor=expected[-1])
    assert last.json()["people"] == []


async def test_only_the_schools_city_admins_list_its_people(
    fx_client: httpx.AsyncClient, fx_city: City, fx_espoo: Espoo
) -> None:
    c = fx_city
    for who in NOT_ADMINS:
        answer = await _people(
            fx_client, await log_in_as(fx_client, who), school=c.school_a, role="pupil"
        )
        assert answer.status_code == 403, who
        assert answer.json()["code"] == "auth.forbidden"
    # Each city's admin sees its own schools only; a municipality or an unknown id is no
    # school, refused as another city's school is (no existence oracle).
    espoo = await log_in_as(fx_client, "admin_espoo")
    assert await _ids(fx_client, espoo, fx_espoo.school, "pupil") == []
    admin = await log_in_as(fx_client, "admin")
    for school in (fx_espoo.school, c.city, 2**31 - 1):
        answer = await _people(fx_client, admin, school=school, role="pupil")
        assert answer.status_code == 403, school
        assert answer.json()["code"] == "auth.forbidden"
    assert (await fx_client.get(f"/admin/people?school={c.school_a}&role=pupil")).status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"role": "pupil"},
        {"school": "1"},
        {"school": "1", "role": "janitor"},
        {"school": "1", "role": "pupil", "limit": "0"},
        {"school": "1", "role": "pupil", "limit": "501"},
        {"school": "1", "role": "pupil", "cursor": "-1"},
        {"school": "1", "role": "pupil", "cursor": str(2**31)},
        {"school": "0", "role": "pupil"},
        {"school": str(2**31), "role": "pupil"},
        {"school": "x", "role": "pupil"},
    ],
)
async def test_bad_people_queries_are_refused_with_a_stable_code(
    fx_client: httpx.AsyncClient, fx_city: City, params: dict[str, str]
) -> None:
    admin = await log_in_as(fx_client, "admin")
    answer = await _people(fx_client, admin, **params)
    assert (answer.status_code, answer.json()["code"]) == (422, "request.invalid"), answer.text


async def test_a_missing_query_parameter_is_named_in_field(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    admin = await log_in_as(fx_client, "admin")
    answer = await fx_client.get(
        "/admin/people", params={"school": str(fx_city.school_a)}, headers=admin
    )
    assert answer.status_code == 422
    body = answer.json()
    assert (body["code"], body["field"]) == ("request.invalid", "role")
    assert body["message"] == "The query parameter 'role' is required."  # no query echoed


async def _devices(
    client: httpx.AsyncClient, headers: dict[str, str], person: int
) -> httpx.Response:
    return await client.get(f"/admin/people/{person}/devices", headers=headers)


async def _token_works(client: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    answer = await client.get("/me", headers=headers)
    assert answer.status_code in (200, 401), answer.text
    return answer.status_code == 200


async def test_an_admin_signs_one_device_out_and_the_others_stay(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city
    phone = await log_in_as(fx_client, "mother")
    laptop = await log_in_as(fx_client, "mother")
    admin = await log_in_as(fx_client, "admin")
    listed = await _devices(fx_client, admin, c.mother)
    assert listed.status_code == 200, listed.text
    devices = listed.json()["devices"]
    assert [d["name"] for d in devices] == ["test", "test"]
    assert set(devices[0]) == {"id", "name", "created_at", "expires_at"}
    for token in (phone, laptop):  # neither the token nor its hash is ever shown
        assert token["Authorization"].split()[1] not in listed.text
    for row in await AuthToken.select(AuthToken.token_hash):
        assert row["token_hash"] not in listed.text
    newest, oldest = devices[0]["id"], devices[1]["id"]  # newest first: the laptop
    read = await AccountEvent.select().where(AccountEvent.kind == "admin.devices_listed")
    assert [(e["person"], e["actor"]) for e in read] == [(c.mother, c.admin)]
    assert newest > oldest

    gone = await fx_client.delete(f"/admin/people/{c.mother}/devices/{newest}", headers=admin)
    assert gone.status_code == 204, gone.text
    assert not await _token_works(fx_client, laptop)
    assert await _token_works(fx_client, phone)
    assert [d["id"] for d in (await _devices(fx_client, admin, c.mother)).json()["devices"]] == [
        oldest
    ]
    events = await AccountEvent.select().where(AccountEvent.kind == "account.device_signed_out")
    assert [(e["person"], e["actor"]) for e in events] == [(c.mother, c.admin)]
    assert str(newest) in events[0]["detail"]

    # Again, or a device of another person, or none at all: a stable 404, nothing revoked.
    for person, device in ((c.mother, newest), (c.father, oldest), (c.mother, 2**31 - 1)):
        answer = await fx_client.delete(f"/admin/people/{person}/devices/{device}", headers=admin)
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == "account.device_not_found"
    assert await _token_works(fx_client, phone)
    assert (
        len(await AccountEvent.select().where(AccountEvent.kind == "account.device_signed_out"))
        == 1
    )

    # A person without an account has no devices.
    await Account.delete().where(Account.person == c.olli)
    none = await _devices(fx_client, admin, c.olli)
    assert (none.status_code, none.json()["code"]) == (404, "account.not_found")


async def test_only_the_persons_city_admins_see_and_sign_out_devices(
    fx_client: httpx.AsyncClient, fx_city: City, fx_espoo: Espoo
) -> None:
    c = fx_city
    phone = await log_in_as(fx_client, "aino")
    admin = await log_in_as(fx_client, "admin")
    device = (await _devices(fx_client, admin, c.aino)).json()["devices"][0]["id"]
    for who in NOT_ADMINS:
        headers = await log_in_as(fx_client, who)
        listed = await _devices(fx_client, headers, c.aino)
        assert (listed.status_code, listed.json()["code"]) == (403, "auth.forbidden"), who
        gone = await fx_client.delete(f"/admin/people/{c.aino}/devices/{device}", headers=headers)
        assert (gone.status_code, gone.json()["code"]) == (403, "auth.forbidden"), who
    assert await _token_works(fx_client, phone)
    # A refusal reads nothing, so records no read (the one read is the admin's above).
    assert await AccountEvent.count().where(AccountEvent.kind == "admin.devices_listed") == 1
    # An unknown person is refused as another city's person is.
    assert (await _devices(fx_client, admin, 2**31 - 1)).status_code == 403
    # Ids out of range are refused before anything is looked up.
    for path in (
        "/admin/people/0/devices",
        f"/admin/people/{2**31}/devices",
        f"/admin/people/{c.aino}/devices/0",
        f"/admin/people/{c.aino}/devices/{2**31}",
    ):
        method = fx_client.delete if path.count("/") == 5 else fx_client.get
        answer = await method(path, headers=admin)
        assert (answer.status_code, answer.json()["code"]) == (422, "request.invalid"), path


def _client(app: Litestar) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://reppu.test")


async def test_a_signed_out_device_fails_at_once_where_tokens_are_kept(
    fx_settings: Settings, fx_db: Engine[Any], fx_city: City
) -> None:
    # The acting process keeps access lookups for a minute: it must forget the device's
    # token at once all the same, and keep the person's other device.
    acting = create_app(dataclasses.replace(fx_settings, access_cache_seconds=60), engine=fx_db)
    try:
        async with _client(acting) as client:
            phone = await log_in_as(client, "teacher")
            laptop = await log_in_as(client, "teacher")
            assert await _token_works(client, phone)
            assert await _token_works(client, laptop)
            admin = await log_in_as(client, "admin")
            devices = (await _devices(client, admin, fx_city.teacher)).json()["devices"]
            answer = await client.delete(
                f"/admin/people/{fx_city.teacher}/devices/{devices[0]['id']}", headers=admin
            )
            assert answer.status_code == 204, answer.text
            assert not await _token_works(client, laptop)
            assert await _token_works(client, phone)
    finally:
        await acting.state["reppu"].live.stop()


async def _bulletin(
    organisation: int, author: int, title: str, statuses: dict[int, list[str]]
) -> int:
    """A bulletin whose outbox entry was expanded into deliveries of ``statuses`` per person."""
    now = utc_now()
    bulletin = Bulletin(
        author=author,
        organisation=organisation,
        audience="school",
        roles="guardian",
        title=title,
        body="The body is private to its readers.",
        sent_at=now,
    )
    await bulletin.save()
    outbox = Outbox(
        kind="bulletin",
        item_id=bulletin.id,
        created_at=now,
        expires_at=now + dt.timedelta(days=1),
        done_at=now,
    )
    await outbox.save()
    for person, kinds in statuses.items():
        for n, status in enumerate(kinds):
            await Delivery(
                key=f"{outbox.id}:{person}:{n}",
                outbox=outbox.id,
                person=person,
                channel="webpush",
                target=n,
                status=status,
                not_before=now,
                expires_at=now + dt.timedelta(days=1),
            ).save()
    return int(bulletin.id)


async def test_an_admin_sees_sync_health(
    fx_client: httpx.AsyncClient, fx_db: Engine[Any], fx_city: City, fx_espoo: Espoo
) -> None:
    c = fx_city
    admin = await log_in_as(fx_client, "admin")
    empty = await fx_client.get("/admin/sync-health", headers=admin)
    assert empty.status_code == 200, empty.text
    assert empty.json()["bulletins"] == []
    assert empty.json()["last_compaction"] is None
    lanes = {lane["name"]: lane for lane in empty.json()["lanes"]}
    assert "expand" in lanes
    assert all(lane["depth"] == 0 for lane in lanes.values())

    city_wide = await _bulletin(
        c.city,
        c.admin,
        "Snow day",
        {
            c.mother: ["sent", "gone"],
            c.father: ["failed", "expired"],
            c.olli_parent: ["queued"],
            c.teacher: ["unreachable"],
        },
    )
    school = await _bulletin(c.school_a, c.principal, "Sports day", {c.mother: ["off"]})
    await _bulletin(fx_espoo.school, fx_espoo.admin, "Not yours", {fx_espoo.admin: ["sent"]})
    await compact(fx_db)

    health = (await fx_client.get("/admin/sync-health", headers=admin)).json()
    assert [b["bulletin_id"] for b in health["bulletins"]] == [school, city_wide]
    report = health["bulletins"][1]
    assert {k: v for k, v in report.items() if k not in ("sent_at",)} == {
        "bulletin_id": city_wide,
        "title": "Snow day",
        "organisation_id": c.city,
        "expanded": True,
        "recipients": 4,
        "sent": 1,
        "queued": 1,
        "failed": 2,
        "gone": 1,
        "unreached": 2,  # the father (all failed) and the teacher (no device)
    }
    assert health["bulletins"][0]["unreached"] == 1
    assert "body" not in str(health)
    assert "private" not in str(health)
    assert health["last_compaction"]["rows_left"] >= 0
    assert health["last_compaction"]["finished_at"]
    queued = {lane["name"]: lane["depth"] for lane in health["lanes"]}
    assert sum(queued.values()) == 1  # the one queued delivery

    limited = await fx_client.get("/admin/sync-health?bulletins=1", headers=admin)
    assert [b["bulletin_id"] for b in limited.json()["bulletins"]] == [school]
    for bad in ("0", "101", "x"):
        answer = await fx_client.get(f"/admin/sync-health?bulletins={bad}", headers=admin)
        assert (answer.status_code, answer.json()["code"]) == (422, "request.invalid"), bad


async def test_only_city_admins_see_sync_health(
    fx_client: httpx.AsyncClient, fx_city: City, fx_espoo: Espoo
) -> None:
    for who in NOT_ADMINS[:-1]:
        answer = await fx_client.get("/admin/sync-health", headers=await log_in_as(fx_client, who))
        assert (answer.status_code, answer.json()["code"]) == (403, "auth.forbidden"), who
    # Espoo's admin sees the lanes, but none of Vantaa's bulletins.
    await _bulletin(fx_city.city, fx_city.admin, "Vantaa only", {fx_city.mother: ["sent"]})
    espoo = await fx_client.get(
        "/admin/sync-health", headers=await log_in_as(fx_client, "admin_espoo")
    )
    assert espoo.status_code == 200
    assert espoo.json()["bulletins"] == []
    assert (await fx_client.get("/admin/sync-health")).status_code == 401


async def _refused_soon(client: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    """Whether the token stops working within ten seconds: another process hears of a
    revocation through the database (a NOTIFY on PostgreSQL, the polled audit trail on
    SQLite), not at once. A bounded wait, not a timing."""
    for _ in range(100):
        if not await _token_works(client, headers):
            return True
        await asyncio.sleep(0.1)
    return False


async def test_every_process_that_keeps_tokens_forgets_a_signed_out_device(
    fx_settings: Settings, fx_db: Engine[Any], fx_city: City
) -> None:
    # Two apps on one database stand for two server processes, both keeping access lookups
    # for a minute. The other one has both of the teacher's tokens in hand when the admin acts.
    keeping = dataclasses.replace(fx_settings, access_cache_seconds=60)
    acting, other = create_app(keeping, engine=fx_db), create_app(keeping, engine=fx_db)
    try:
        async with _client(acting) as a, _client(other) as b:
            phone = await log_in_as(b, "teacher")
            laptop = await log_in_as(b, "teacher")
            assert await _token_works(b, phone)
            assert await _token_works(b, laptop)
            admin = await log_in_as(a, "admin")
            devices = (await _devices(a, admin, fx_city.teacher)).json()["devices"]
            answer = await a.delete(
                f"/admin/people/{fx_city.teacher}/devices/{devices[0]['id']}", headers=admin
            )
            assert answer.status_code == 204, answer.text
            assert await _refused_soon(b, laptop)
            assert await _token_works(b, phone)  # refetched from the database: still live
    finally:
        for app in (acting, other):
            await app.state["reppu"].live.stop()
