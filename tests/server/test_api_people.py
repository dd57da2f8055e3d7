"""``GET /me`` and ``GET /people/{id}``: each person sees what the policy allows, no more."""

from __future__ import annotations

import httpx
import pytest

from server.db.tables import Person
from tests.city import City
from tests.conftest import log_in_as


async def test_me_lists_children_in_two_schools(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city
    me = (await fx_client.get("/me", headers=await log_in_as(fx_client, "mother"))).json()
    assert me["person"]["id"] == c.mother
    assert me["roles"] == ["guardian"]
    assert [(k["person"]["id"], k["guardianship"]) for k in me["children"]] == [
        (c.aino, "custodial"),
        (c.eero, "custodial"),
    ]
    assert {f"school:{c.school_a}", f"school:{c.school_b}"} <= set(me["partitions"])
    assert f"person:{c.olli}" not in me["partitions"]


async def test_me_of_an_information_only_guardian(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    me = (await fx_client.get("/me", headers=await log_in_as(fx_client, "father"))).json()
    assert [(k["person"]["id"], k["guardianship"]) for k in me["children"]] == [
        (fx_city.aino, "information_only")
    ]


async def test_me_after_a_guardianship_ended(fx_client: httpx.AsyncClient, fx_city: City) -> None:
    me = (await fx_client.get("/me", headers=await log_in_as(fx_client, "former_guardian"))).json()
    assert me["children"] == []
    assert me["roles"] == []
    assert me["partitions"] == [f"inbox:{fx_city.former_guardian}"]


@pytest.mark.parametrize(
    ("viewer", "target", "status", "with_contact"),
    [
        ("mother", "aino", 200, True),  # own child
        ("mother", "olli", 403, None),  # another family's child
        ("mother", "olli_parent", 403, None),  # another family's parent
        ("father", "eero", 403, None),  # not his child: a half-sibling
        ("father", "mother", 200, False),  # guardians of one child who live apart: name only
        ("aino", "olli", 403, None),  # a classmate is another family
        ("aino", "teacher", 200, True),  # her teacher's work contact
        ("olli", "mother", 403, None),
        ("former_guardian", "olli", 403, None),  # ended yesterday
        ("teacher", "olli_parent", 200, False),  # turvakielto: name yes, address no
        ("principal", "olli_parent", 200, True),
        ("principal", "eero", 403, None),  # another school
        ("admin", "eero", 200, True),
    ],
)
async def test_people_follow_the_policy(
    fx_client: httpx.AsyncClient,
    fx_city: City,
    viewer: str,
    target: str,
    status: int,
    with_contact: bool | None,
) -> None:
    answer = await fx_client.get(
        f"/people/{getattr(fx_city, target)}", headers=await log_in_as(fx_client, viewer)
    )
    assert answer.status_code == status, answer.text
    body = answer.json()
    if status == 403:
        assert body == {"code": "auth.forbidden", "message": "You may not see this person."}
        return
    assert body["id"] == getattr(fx_city, target)
    assert ("contact" in body) is with_contact
    if with_contact:
        assert body["contact"]["street_address"]


async def test_an_unknown_person_looks_like_a_forbidden_one(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    headers = await log_in_as(fx_client, "admin")
    answer = await fx_client.get("/people/987654321", headers=headers)
    assert (answer.status_code, answer.json()["code"]) == (403, "auth.forbidden")
    answer = await fx_client.get("/people/not-a-number", headers=headers)
    assert answer.status_code == 404


async def test_me_hides_the_contact_details_of_a_protected_child(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    await Person.update({Person.turvakielto: True}).where(Person.id == fx_city.aino)
    for guardian in ("mother", "father"):
        me = (await fx_client.get("/me", headers=await log_in_as(fx_client, guardian))).json()
        aino = next(c for c in me["children"] if c["person"]["id"] == fx_city.aino)
        assert "contact" not in aino["person"], guardian
    mother = (await fx_client.get("/me", headers=await log_in_as(fx_client, "mother"))).json()
    eero = next(c for c in mother["children"] if c["person"]["id"] == fx_city.eero)
    assert eero["person"]["contact"]["street_address"]  # an unprotected child: shown
