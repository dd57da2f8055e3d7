"""Access that outlives its reason (issue 14, item 4): whoever's ties have ended sees nothing
that only those ties let them see, on every GET route of the app. Runs on SQLite and PostgreSQL.

For each route someone who had access reads it (a teacher, a principal, a guardian), their
staff roles, memberships and guardianships then end yesterday, as a OneRoster delta ends them
(``valid_to`` the day before the import), they log in afresh and must get exactly what a
stranger gets: the same status and the same body, a refusal. Authorship is the trap this
guards: the teacher sent the form request and the bulletin, and must still be refused.

The routes are read from the app itself (``test_every_get_route_is_covered``): a new GET route
fails here until it gets a case below or a commented place among the routes that need no tie.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar
from piccolo.engine.base import Engine
from piccolo.table import Table

from server.clock import school_today, utc_now
from server.db.bulk import run_sql
from server.db.engine import write_transaction
from server.db.form_tables import FormRequest
from server.db.message_tables import Bulletin
from server.db.tables import Account, Guardianship, Membership, Person, StaffRole
from server.identity import hash_password
from tests.city import PASSWORD, City
from tests.conftest import log_in_as
from tests.devices import change, device
from tests.sync.test_forms import GOOD, every_kind


@dataclass(frozen=True)
class World:
    """What the people of ``tests/city.py`` made before their ties ended."""

    city: City
    request_id: int
    definition_id: int
    bulletin_id: int
    feeds: dict[str, str]
    """Calendar feed paths by their maker: the mother's of Aino, the teacher's own."""
    headers: dict[str, dict[str, str]]
    """The logins made on the way, kept: each one costs an argon2 check."""
    import_id: int
    """A roster import in the history (its upload is not needed to read it)."""


@dataclass(frozen=True)
class Case:
    who: str
    """The user who had access, whose ties then end."""
    path: Callable[[World], str]


# Each GET route, the person who could read it, and what they read. Their ties then end.
CASES: dict[str, list[Case]] = {
    "/me": [
        Case("teacher", lambda w: "/me"),
        Case("mother", lambda w: "/me"),
    ],
    "/people/{person_id:int}": [
        Case("teacher", lambda w: f"/people/{w.city.olli}"),  # a pupil of her 5A
        Case("mother", lambda w: f"/people/{w.city.aino}"),  # her daughter
        Case("mother", lambda w: f"/people/{w.city.teacher}"),  # her daughter's teacher
    ],
    "/forms/requests/{request_id:int}/status": [
        Case("teacher", lambda w: f"/forms/requests/{w.request_id}/status"),  # she sent it
        Case("principal", lambda w: f"/forms/requests/{w.request_id}/status"),
    ],
    "/forms/requests/{request_id:int}/responses.csv": [
        Case("teacher", lambda w: f"/forms/requests/{w.request_id}/responses.csv"),
        Case("principal", lambda w: f"/forms/requests/{w.request_id}/responses.csv"),
    ],
    "/forms/definitions": [
        Case("teacher", lambda w: f"/forms/definitions?organisation_id={w.city.school_a}"),
    ],
    "/forms/definitions/{definition_id:int}": [
        Case("teacher", lambda w: f"/forms/definitions/{w.definition_id}"),
        Case("principal", lambda w: f"/forms/definitions/{w.definition_id}"),  # who made it
    ],
    "/bulletins/{bulletin_id:int}/status": [
        Case("teacher", lambda w: f"/bulletins/{w.bulletin_id}/status"),  # she wrote it
        Case("principal", lambda w: f"/bulletins/{w.bulletin_id}/status"),
    ],
    "/groups/{group_id:int}/absences": [
        Case("teacher", lambda w: f"/groups/{w.city.class_5a}/absences"),
    ],
    "/schools/{school_id:int}/absences": [
        Case("principal", lambda w: f"/schools/{w.city.school_a}/absences"),
    ],
    "/pupils/{pupil_id:int}/absence-events": [
        Case("principal", lambda w: f"/pupils/{w.city.olli}/absence-events"),
    ],
    "/schools/{school_id:int}/rules": [
        Case("principal", lambda w: f"/schools/{w.city.school_a}/rules"),
    ],
    "/calendar/{name:str}": [
        Case("mother", lambda w: w.feeds["mother"]),  # Aino's timetable
        Case("teacher", lambda w: w.feeds["teacher"]),  # the lessons she taught
    ],
    # The city's admin, whose admin role ends.
    "/admin/people": [
        Case("admin", lambda w: f"/admin/people?school={w.city.school_a}&role=pupil"),
    ],
    "/admin/people/{person_id:int}/devices": [
        Case("admin", lambda w: f"/admin/people/{w.city.mother}/devices"),
    ],
    "/admin/sync-health": [Case("admin", lambda w: "/admin/sync-health")],
    "/admin/roster-imports": [Case("admin", lambda w: "/admin/roster-imports")],
    "/admin/roster-imports/{import_id:int}": [
        Case("admin", lambda w: f"/admin/roster-imports/{w.import_id}"),
    ],
}

NEEDS_NO_TIE = {
    # Public, or the same for everyone: nothing in them comes from a tie.
    "/health",
    "/health/ready",
    "/push/vapid-public-key",
    "/",
    "/{file_path:path}",  # the PWA's static files
    "/schema",
    "/schema/openapi.json",
    "/schema/scalar",
    "/schema/{path:str}",
    "/auth/providers",
    "/auth/oidc/{provider:str}/start",
    "/auth/oidc/{provider:str}/callback",
    # The caller's own settings and the feeds they made (listed so they can revoke them;
    # never their URLs, and a feed whose reason ended serves nothing: the case above).
    "/me/channels",
    "/me/notifications",
    "/calendar/feeds",
    # Only "pull now" pokes, for the partitions the policy lets the caller read today
    # (recomputed while the stream runs); the data itself comes by /sync/pull, checked below.
    "/sync/live",
}


def _get_routes(app: Litestar) -> set[str]:
    return {route.path for route in app.routes if "GET" in route.methods}


async def test_every_get_route_is_covered(fx_app: Litestar) -> None:
    routes = _get_routes(fx_app)
    assert routes - CASES.keys() - NEEDS_NO_TIE == set(), (
        "a GET route without a case here: add who may read it and what (or, if no tie "
        "grants it, say why among NEEDS_NO_TIE)"
    )
    assert CASES.keys() <= routes  # no case for a route that is gone


@functools.cache
def _password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is slow on purpose: once per process


async def _account(username: str) -> int:
    row = Person(given_name=username.capitalize(), family_name="Vieras")
    await row.save()
    await Account(person=row.id, username=username, password_hash=_password_hash()).save()
    return int(row.id)


async def _made(client: httpx.AsyncClient, c: City) -> World:
    """A principal's form definition, sent by the teacher to 5A and answered by Olli's
    guardian; the teacher's bulletin to 5A; calendar feeds; a stranger's account."""
    await _account("stranger")
    headers = {"principal": await log_in_as(client, "principal")}
    made = await client.post(
        "/forms/definitions",
        json={"organisation_id": c.school_a, "definition": every_kind()},
        headers=headers["principal"],
    )
    assert made.status_code == 201, made.text
    definition_id = int(made.json()["id"])
    teacher = await device(client, "teacher")
    headers["teacher"] = teacher.headers
    headers["mother"] = await log_in_as(client, "mother")
    sent = await change(
        teacher,
        "form.request",
        definition_id=definition_id,
        group_id=c.class_5a,
        due_on=c.today + dt.timedelta(days=7),
    )
    assert sent["status"] == "applied", sent
    (request_id,) = [r["id"] for r in await FormRequest.select(FormRequest.id)]
    parent = await device(client, "olli_parent")
    answer = {"request_id": request_id, "pupil_id": c.olli, "definition_version": 1}
    submitted = await change(parent, "form.submit", **answer, answers=GOOD)
    assert submitted["status"] == "applied", submitted
    told = await change(
        teacher, "bulletin.send", audience="group", audience_id=c.class_5a, title="Retki",
        body="Huomenna retki Nuuksioon.",
    )  # fmt: skip
    assert told["status"] == "applied", told
    (bulletin_id,) = [r["id"] for r in await Bulletin.select(Bulletin.id)]
    feeds = {}
    for who, subject in (("mother", c.aino), ("teacher", c.teacher)):
        feed = await client.post(
            "/calendar/feeds", json={"person_id": subject}, headers=headers[who]
        )
        assert feed.status_code == 201, feed.text
        feeds[who] = feed.json()["url"].removeprefix(str(client.base_url))
    headers["admin"] = await log_in_as(client, "admin")
    async with write_transaction(Bulletin._meta.db):
        (made_import,) = await run_sql(
            "INSERT INTO roster_import (uploaded_by, uploaded_at, file_name, file_sha256, "
            "file_bytes, status, report) VALUES ({}, {}, 'set.zip', {}, 1, 'refused', {}) "
            "RETURNING id",
            c.admin,
            utc_now(),
            "0" * 64,
            "{}",
        )
    return World(c, request_id, definition_id, bulletin_id, feeds, headers, int(made_import["id"]))


async def end_every_tie(engine: Engine[Any], person: int, today: dt.date) -> None:
    """End the person's staff roles, memberships and guardianships yesterday, as a OneRoster
    delta ends them (``docs/oneroster.md``: ended is not deleted). Nothing synced is about
    these ties themselves (rosters list pupils), so no record changes with them."""
    yesterday = today - dt.timedelta(days=1)
    ties: list[tuple[type[Table], Any]] = [
        (StaffRole, StaffRole.person),
        (Membership, Membership.person),
        (Guardianship, Guardianship.guardian),
    ]
    async with write_transaction(engine):
        for table, holder in ties:
            valid_to = table._meta.get_column_by_name("valid_to")
            await table.update({valid_to: yesterday}).where(
                (holder == person) & (valid_to.is_null() | (valid_to >= today))
            )


def _answer(response: httpx.Response) -> tuple[int, object]:
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.status_code, response.json()
    return response.status_code, response.text


_CASES = [(route, case) for route, cases in CASES.items() for case in cases]


@pytest.mark.parametrize(
    ("route", "case"),
    _CASES,
    ids=[f"{route}-{case.who}" for route, case in _CASES],
)
async def test_ended_ties_see_what_a_stranger_sees(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int], fx_db: Engine[Any],
    route: str, case: Case,
) -> None:  # fmt: skip
    world = await _made(fx_client, fx_city)
    path = case.path(world)
    before = await fx_client.get(path, headers=world.headers[case.who])
    assert before.status_code == 200, (path, before.text)

    person = getattr(fx_city, case.who)
    await end_every_tie(fx_db, person, school_today())
    after = await fx_client.get(path, headers=await log_in_as(fx_client, case.who))
    stranger = await fx_client.get(path, headers=await log_in_as(fx_client, "stranger"))

    if route == "/me":
        # Themselves still (their card and language), and nothing else: no roles, no
        # children, their inbox only.
        mine, theirs = after.json(), stranger.json()
        assert mine["person"]["id"] == person
        assert {k: v for k, v in mine.items() if k not in ("person", "language")} == {
            "roles": [],
            "children": [],
            "partitions": [f"inbox:{person}"],
            "pupil_conversation_schools": [],
        }
        assert theirs["roles"] == theirs["children"] == []
        return
    if route == "/calendar/{name:str}" and case.who == "teacher":
        # Her own feed stays hers, but shows none of the lessons her job gave her.
        assert after.status_code == 200, after.text
        assert "BEGIN:VEVENT" in before.text
        assert "BEGIN:VEVENT" not in after.text
        return
    if route == "/calendar/{name:str}":
        # The feed's URL is its credential: compare with a URL nobody made.
        stranger = await fx_client.get("/calendar/" + "x" * 43 + ".ics")
    assert after.status_code in (403, 404), (path, after.text)
    assert _answer(after) == _answer(stranger), path
    for secret in ("Aino", "Olli", "Retki", "Virtanen", "Korhonen"):
        assert secret not in after.text, (path, secret)


@pytest.mark.parametrize("who", ["teacher", "mother"])
async def test_ended_ties_sync_nothing_of_them(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int], fx_db: Engine[Any],
    who: str,
) -> None:  # fmt: skip
    """``/sync/pull`` (a POST that reads): a fresh device of someone whose ties ended gets
    their inbox and nothing of the groups, pupils and forms they had."""
    world = await _made(fx_client, fx_city)
    had = await device(fx_client, who)
    await had.sync()
    had_kinds = {record_type for record_type, _ in had.store.records()}
    assert "lesson" in had_kinds
    if who == "teacher":
        assert {"bulletin", "form_request", "roster"} <= had_kinds
    person = getattr(fx_city, who)
    await end_every_tie(fx_db, person, school_today())
    fresh = await device(fx_client, who)
    await fresh.sync()
    assert fresh.store.partitions() == {f"inbox:{person}"}
    kinds = {record_type for record_type, _ in fresh.store.records()}
    assert kinds <= {"thread", "message", "receipt"}, kinds
    assert world.request_id  # made, and not theirs to see
