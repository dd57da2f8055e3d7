"""Every demo login works, and every one of them is refused another family's data."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from piccolo.engine.base import Engine

from schemas.core import GroupKind, MembershipRole, OrganisationKind
from server.access import load_access_facts
from server.clock import school_today
from server.db.tables import Account, Membership, Organisation, Person, SchoolGroup
from server.demo import DEMO_LOGINS, DEMO_PASSWORD, load_demo_city
from sync.policy import Action, decide


@pytest.fixture
async def fx_demo(fx_db: Engine[Any]) -> dict[str, int]:
    """A small demo city, plus one pupil in a city of its own; person ids by demo login."""
    await load_demo_city(fx_db, pupils=500, seed=3, today=school_today())
    rows = await Account.select(Account.username, Account.person).where(
        Account.username.is_in(list(DEMO_LOGINS))
    )
    people = {r["username"]: r["person"] for r in rows}
    city = Organisation(kind=OrganisationKind.MUNICIPALITY, name="Muu kaupunki")
    await city.save()
    school = Organisation(kind=OrganisationKind.SCHOOL, name="Muu koulu", parent=city.id)
    await school.save()
    group = SchoolGroup(school=school.id, name="1A", kind=GroupKind.HOME_CLASS)
    await group.save()
    stranger = Person(given_name="Vieras", family_name="Oppilas", email="v@example.fi")
    await stranger.save()
    await Membership(
        group=group.id,
        person=stranger.id,
        role=MembershipRole.PUPIL,
        valid_from=school_today() - dt.timedelta(days=30),
    ).save()
    people["stranger"] = int(stranger.id)
    return people


async def _someone_refused(viewer: int, candidates: list[int]) -> int:
    """A person the policy does not let ``viewer`` see: another family's."""
    facts = await load_access_facts([viewer, *candidates])
    for candidate in candidates:
        if candidate != viewer and not decide(
            facts[viewer], Action.READ_PERSON, facts[candidate], school_today()
        ):
            return candidate
    raise AssertionError("every candidate is visible to this viewer")


@pytest.mark.parametrize("login", list(DEMO_LOGINS))
async def test_each_demo_login_is_refused_another_familys_data(
    fx_client: httpx.AsyncClient, fx_demo: dict[str, int], login: str
) -> None:
    answer = await fx_client.post(
        "/auth/login",
        json={"username": login, "password": DEMO_PASSWORD, "device_name": "test"},
    )
    assert answer.status_code == 200, answer.text
    headers = {"Authorization": f"Bearer {answer.json()['token']}"}
    me = (await fx_client.get("/me", headers=headers)).json()
    assert me["person"]["id"] == fx_demo[login]
    assert me["roles"], f"{login} has no role today"

    pupils = [
        r["person"]
        for r in await Membership.select(Membership.person)
        .where(Membership.role == MembershipRole.PUPIL)
        .order_by(Membership.id, ascending=False)
        .limit(60)
    ]
    other = await _someone_refused(fx_demo[login], [fx_demo["stranger"], *pupils])
    refused = await fx_client.get(f"/people/{other}", headers=headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "auth.forbidden")

    # Through sync too: no other pupil's own partition reaches the device.
    pulled = await fx_client.post("/sync/pull", json={"schema_version": 1}, headers=headers)
    assert pulled.status_code == 200
    own = {f"person:{fx_demo[login]}", *(f"person:{c['person']['id']}" for c in me["children"])}
    assert {p for p in pulled.json().get("added", []) if p.startswith("person:")} <= own
