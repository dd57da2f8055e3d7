"""Co-guardians who live apart (issue 14, item 5): two guardians of one child see each other's
e-mail, phone and address only in one household (the same address) or where the roster says
they may (``metadata.fi.shareContactWithGuardians``); otherwise each other's name only, and
turvakielto wins over everything. Over HTTP, through sync and through a OneRoster import and
export, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from piccolo.engine.base import Engine

from server.access import load_access_facts
from server.clock import school_today
from server.db.tables import Person
from server.oneroster import (
    ImportRefused,
    export_oneroster,
    import_oneroster,
    parse_files,
    read_files,
)
from sync.policy import Action, decide
from tests.city import City
from tests.conftest import log_in_as
from tests.devices import device

FIXTURES = Path(__file__).parent.parent / "fixtures" / "oneroster"
FLAG = "metadata.fi.shareContactWithGuardians"


async def _card(client: httpx.AsyncClient, viewer: str, person_id: int) -> dict[str, Any]:
    answer = await client.get(f"/people/{person_id}", headers=await log_in_as(client, viewer))
    assert answer.status_code == 200, answer.text
    card: dict[str, Any] = answer.json()
    return card


async def _set(person_id: int, **values: Any) -> None:
    await Person.update({getattr(Person, k): v for k, v in values.items()}).where(
        Person.id == person_id
    )


async def test_co_guardians_apart_see_each_others_name_only(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city  # the mother and the father live at different addresses
    for viewer, target, name in (("father", c.mother, "Maria"), ("mother", c.father, "Mikko")):
        card = await _card(fx_client, viewer, target)
        assert card["given_name"] == name
        assert "contact" not in card, viewer
    # The school still reaches both, and each still sees their own child's.
    assert (await _card(fx_client, "teacher", c.father))["contact"]["phone"]
    assert (await _card(fx_client, "father", c.aino))["contact"]["street_address"]


async def test_co_guardians_in_one_household_see_each_others_contact(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city
    await _set(c.mother, street_address="Koivukuja 3 B, 01300 Vantaa")
    await _set(c.father, street_address="  koivukuja 3 b,01300  VANTAA")  # the same home
    card = await _card(fx_client, "father", c.mother)
    assert card["contact"] == {
        "email": "maria@example.fi",
        "phone": "+358 40 000 0000",
        "street_address": "Koivukuja 3 B, 01300 Vantaa",
    }
    assert (await _card(fx_client, "mother", c.father))["contact"]["email"] == "mikko@example.fi"
    # Another staircase is another household.
    await _set(c.father, street_address="Koivukuja 3 A, 01300 Vantaa")
    assert "contact" not in await _card(fx_client, "father", c.mother)


async def test_the_roster_flag_shares_ones_own_contact_only(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city
    await _set(c.mother, shares_contact_with_guardians=True)
    assert (await _card(fx_client, "father", c.mother))["contact"]["email"] == "maria@example.fi"
    assert "contact" not in await _card(fx_client, "mother", c.father)  # he has not


@pytest.mark.parametrize("why", ["household", "roster"])
async def test_turvakielto_wins_over_household_and_roster(
    fx_client: httpx.AsyncClient, fx_city: City, why: str
) -> None:
    c = fx_city
    if why == "household":
        await _set(c.father, street_address="Virtaseninkatu 1, Vantaa")
        await _set(c.mother, street_address="Virtaseninkatu 1, Vantaa")
    await _set(c.mother, turvakielto=True, shares_contact_with_guardians=why == "roster")
    card = await _card(fx_client, "father", c.mother)
    assert card["given_name"] == "Maria"
    assert "contact" not in card
    assert "contact" in await _card(fx_client, "principal", c.mother)


@pytest.mark.parametrize("household", [False, True])
async def test_no_synced_record_carries_a_co_guardians_contact(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int], household: bool
) -> None:
    """Contact details travel in no sync record (people's names do, in threads, bulletins
    and forms): a guardian's phone holds none of the other guardian's, in one household or
    not. Should a record ever carry them, this is the test that must learn the rule."""
    c = fx_city
    address = "Koivukuja 3 B, 01300 Vantaa"
    await _set(c.mother, street_address=address, email="maria.k@example.fi", phone="+358 50 1234")
    if household:
        await _set(c.father, street_address=address)
    father = await device(fx_client, "father")
    report = await father.sync()
    assert report  # it pulled
    text = json.dumps(list(father.store.records().values()), default=str)
    assert "lesson" in text  # the child's timetable came
    for secret in (address, "maria.k@example.fi", "+358 50 1234"):
        assert secret not in text


def _with_flag(tmp_path: Path, shared: dict[str, str]) -> Path:
    """The bulk fixture with the flag column on users.csv, set for the given sourcedIds."""
    target = tmp_path / "set"
    target.mkdir()
    for file in (FIXTURES / "bulk").iterdir():
        (target / file.name).write_bytes(file.read_bytes())
    with (FIXTURES / "bulk" / "users.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with (target / "users.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, [*rows[0].keys(), FLAG])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, FLAG: shared.get(row["sourcedId"], "")})
    return target


async def _import(engine: Engine[Any], path: Path) -> Any:
    return await import_oneroster(engine, parse_files(read_files(path)), today=school_today())


async def test_the_flag_comes_and_goes_with_oneroster(fx_db: Engine[Any], tmp_path: Path) -> None:
    """Maria's line says true, Mikko's false, the others leave it empty (no)."""
    path = _with_flag(tmp_path, {"u-maria": "true", "u-mikko": "false"})
    await _import(fx_db, path)
    people = {p["given_name"]: p for p in await Person.select()}
    assert people["Maria"]["shares_contact_with_guardians"] is True
    assert people["Mikko"]["shares_contact_with_guardians"] is False
    assert people["Sara"]["shares_contact_with_guardians"] is False  # default: no

    maria, mikko = people["Maria"]["id"], people["Mikko"]["id"]
    facts = await load_access_facts([maria, mikko])
    today = school_today()
    shared = decide(facts[mikko], Action.READ_CONTACT_DETAILS, facts[maria], today)
    assert shared.reason == "guardians of the same pupil, shared by the roster"
    assert not decide(facts[maria], Action.READ_CONTACT_DETAILS, facts[mikko], today)

    again = await _import(fx_db, path)
    assert again.counts["users"].unchanged == 9  # the same files change nothing

    out = tmp_path / "out"
    await export_oneroster(fx_db, out)
    with (out / "users.csv").open(newline="", encoding="utf-8") as f:
        exported = {r["givenName"]: r[FLAG] for r in csv.DictReader(f)}
    assert (exported["Maria"], exported["Mikko"], exported["Sara"]) == ("true", "false", "false")


def test_a_flag_that_is_not_a_boolean_is_refused(tmp_path: Path) -> None:
    path = _with_flag(tmp_path, {"u-maria": "maybe"})
    with pytest.raises(ImportRefused) as refused:
        parse_files(read_files(path))
    problems = [str(p) for p in refused.value.problems]
    assert any(FLAG in p and "'maybe' is not true or false" in p for p in problems), problems
