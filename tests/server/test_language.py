"""``PUT /me/language`` on both databases: a person chooses fi, sv or en; the choice outlives
the roster's language, and rejection reasons and calendar titles follow it
(``server/language.py``)."""

from __future__ import annotations

import httpx
import pytest

from server.db.tables import Person
from server.language import effective_language
from tests.city import City
from tests.conftest import log_in_as
from tests.server.test_calendar import feed_url, fetch, parse
from tests.server.test_rejection_reasons import _push


@pytest.mark.parametrize(
    ("chosen", "roster", "effective"),
    [
        (None, "fi", "fi"),
        (None, "sv", "sv"),
        (None, "SV-fi", "sv"),
        (None, "ar", "en"),  # a language Reppu lacks: English until they choose
        (None, "", "en"),
        (None, None, "en"),
        ("sv", "fi", "sv"),  # the choice wins over the roster
        ("fi", "ar", "fi"),
        ("de", "sv", "sv"),  # a stray value in the column is ignored, not trusted
    ],
)
def test_the_effective_language(chosen: str | None, roster: str | None, effective: str) -> None:
    assert effective_language(chosen, roster) == effective


async def test_an_arabic_speaking_guardian_chooses_swedish_and_an_import_keeps_it(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    await Person.update({Person.language: "ar"}).where(Person.id == fx_city.mother)
    headers = await log_in_as(fx_client, "mother")
    me = (await fx_client.get("/me", headers=headers)).json()
    assert me["language"] == {
        "language": "en",
        "chosen": None,
        "roster": "ar",
        "roster_supported": False,
    }
    answer = await fx_client.put("/me/language", json={"language": "sv"}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "language": "sv",
        "chosen": "sv",
        "roster": "ar",
        "roster_supported": False,
    }
    # The next roster import sets person.language again; the choice is in its own column.
    await Person.update({Person.language: "so"}).where(Person.id == fx_city.mother)
    me = (await fx_client.get("/me", headers=headers)).json()
    assert me["language"]["language"] == "sv"
    assert me["language"]["roster"] == "so"
    assert me["person"]["language"] == "so"  # the card says what the records say


@pytest.mark.parametrize(
    "body",
    [
        {"language": "ar"},
        {"language": "SV"},
        {"language": None},
        {"language": 1},
        {},
        {"language": "sv", "person_id": 1},
    ],
)
async def test_only_fi_sv_or_en_can_be_chosen(
    fx_client: httpx.AsyncClient, fx_city: City, body: dict[str, object]
) -> None:
    headers = await log_in_as(fx_client, "mother")
    answer = await fx_client.put("/me/language", json=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "request.invalid"
    chosen = await Person.select(Person.ui_language).where(Person.id == fx_city.mother)
    assert chosen == [{"ui_language": None}]


async def test_a_person_changes_only_their_own_language(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    assert (await fx_client.put("/me/language", json={"language": "sv"})).status_code == 401
    father = await log_in_as(fx_client, "father")
    answer = await fx_client.put("/me/language", json={"language": "en"}, headers=father)
    assert answer.status_code == 200
    rows = await Person.select(Person.id, Person.ui_language).where(
        Person.ui_language.is_not_null()
    )
    assert rows == [{"id": fx_city.father, "ui_language": "en"}]


async def test_a_chosen_language_names_the_calendar_and_gives_rejection_reasons(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    mother = await log_in_as(fx_client, "mother")
    path = await feed_url(fx_client, "mother", fx_city.aino)
    assert str(parse(await fetch(fx_client, path))["X-WR-CALNAME"]).startswith("Lukujärjestys")
    await fx_client.put("/me/language", json={"language": "sv"}, headers=mother)
    assert str(parse(await fetch(fx_client, path))["X-WR-CALNAME"]) == "Schema: Aino Virtanen"

    teacher = await log_in_as(fx_client, "teacher")
    await fx_client.put("/me/language", json={"language": "sv"}, headers=teacher)
    [refused] = await _push(fx_client, teacher, "language-sv", [("no.such.thing", {})])
    assert refused["reason"].startswith("Appen bad om något")
