"""Timetable calendar feeds over HTTP, on both databases: who may make a feed of whom, what
a calendar app gets (parsed with icalendar), cheap polling with 304s, revocation, and the
token kept out of the database and the logs."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import httpx
import pytest
from dateutil.rrule import rrulestr
from icalendar import Calendar, Event
from piccolo.engine.base import Engine

from server.calendar import RedactFeedTokens, uvicorn_log_config
from server.clock import SCHOOL_TIMEZONE
from server.db.calendar_tables import CalendarFeed
from server.db.tables import Account, Guardianship, LessonChange, Person, Term
from tests.city import City
from tests.conftest import log_in_as


async def make_feed(client: httpx.AsyncClient, who: str, person_id: int) -> httpx.Response:
    headers = await log_in_as(client, who)
    return await client.post("/calendar/feeds", json={"person_id": person_id}, headers=headers)


async def feed_url(client: httpx.AsyncClient, who: str, person_id: int) -> str:
    answer = await make_feed(client, who, person_id)
    assert answer.status_code == 201, answer.text
    url = answer.json()["url"]
    assert url.startswith("http://reppu.test/calendar/")
    assert url.endswith(".ics")
    return str(url).removeprefix("http://reppu.test")


async def fetch(client: httpx.AsyncClient, path: str, **headers: str) -> httpx.Response:
    return await client.get(path, headers=headers)


def parse(answer: httpx.Response) -> Calendar:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/calendar")
    return Calendar.from_ical(answer.text)


def masters(cal: Calendar) -> dict[int, Event]:
    """The series by lesson id (from the UID ``lesson-<id>-p<person>@reppu``)."""
    return {
        int(str(e["UID"]).split("-")[1]): e for e in cal.walk("VEVENT") if "RECURRENCE-ID" not in e
    }


def overrides(cal: Calendar) -> list[Event]:
    return [e for e in cal.walk("VEVENT") if "RECURRENCE-ID" in e]


def occurrences(event: Event) -> list[dt.datetime]:
    rule = rrulestr(event["RRULE"].to_ical().decode(), dtstart=event.decoded("DTSTART"))
    found = event.get("EXDATE")
    lists = [] if found is None else found if isinstance(found, list) else [found]
    excluded = {d.dt for dl in lists for d in dl.dts}
    return [d for d in rule if d not in excluded]


def next_weekday(day: dt.date, isoweekday: int) -> dt.date:
    """The first ``isoweekday`` after ``day``."""
    return day + dt.timedelta(days=(isoweekday - day.isoweekday() - 1) % 7 + 1)


async def test_a_guardian_subscribes_to_a_child_who_changed_class_today(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    c, ids = fx_city, fx_timetable
    path = await feed_url(fx_client, "mother", c.aino)
    answer = await fetch(fx_client, path)  # no bearer token: the URL is the credential
    cal = parse(answer)
    assert str(cal["X-WR-CALNAME"]) == "Lukujärjestys: Aino Virtanen"
    series = masters(cal)
    # 5A until yesterday, 5B from today, maths all term; nothing of her brother's 3C.
    assert set(series) == {
        ids["5a-1"],
        ids["5a-3"],
        ids["5b-1"],
        ids["5b-3"],
        ids["ma-1"],
        ids["ma-3"],
    }
    yesterday = c.today - dt.timedelta(days=1)
    for key in ("5a-1", "5a-3"):
        assert all(d.date() <= yesterday for d in occurrences(series[ids[key]]))
    for key in ("5b-1", "5b-3"):
        days = occurrences(series[ids[key]])
        assert days
        assert all(d.date() >= c.today for d in days)
    assert all(e["DTSTART"].params["TZID"] == "Europe/Helsinki" for e in series.values())
    assert len(cal.walk("VTIMEZONE")) == 1


async def test_term_boundary_and_daylight_saving_in_the_feed(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    c, ids = fx_city, fx_timetable
    term_end = c.today + dt.timedelta(days=200)  # tests/city.py's term
    cal = parse(await fetch(fx_client, await feed_url(fx_client, "olli", c.olli)))
    days = occurrences(masters(cal)[ids["5a-1"]])
    # The series ends with the term: its last Monday on or before the term's last day.
    assert days[-1].date() <= term_end < days[-1].date() + dt.timedelta(days=7)
    # 200 days cross at least one change of daylight saving: the lesson stays at 08:15 in
    # Helsinki while its UTC time moves by an hour.
    assert {d.astimezone(SCHOOL_TIMEZONE).time() for d in days} == {dt.time(8, 15)}
    assert {d.utcoffset() for d in days} == {dt.timedelta(hours=2), dt.timedelta(hours=3)}
    assert {d.astimezone(dt.UTC).time() for d in days} == {dt.time(5, 15), dt.time(6, 15)}

    # A term that ended yesterday: its group's lessons leave the feed.
    await Term.update({Term.ends_on: c.today - dt.timedelta(days=1)}).where(
        Term.organisation == c.city
    )
    cal = parse(await fetch(fx_client, await feed_url(fx_client, "olli", c.olli)))
    assert masters(cal) == {}


async def test_a_cancelled_lesson_and_a_substitute_reach_the_feed_with_304s_between(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    c, ids = fx_city, fx_timetable
    path = await feed_url(fx_client, "olli_parent", c.olli)
    first = await fetch(fx_client, path)
    parse(first)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert (await fetch(fx_client, path, **{"If-None-Match": etag})).status_code == 304
    assert (await fetch(fx_client, path, **{"If-Modified-Since": modified})).status_code == 304
    assert (await fetch(fx_client, path, **{"If-None-Match": '"other"'})).status_code == 200

    monday, wednesday = next_weekday(c.today, 1), next_weekday(c.today, 3)
    await LessonChange(lesson=ids["5a-1"], on_date=monday, cancelled=True).save()
    await LessonChange(
        lesson=ids["5a-3"], on_date=wednesday, substitute_teacher=c.principal, room="B7"
    ).save()
    changed = await fetch(fx_client, path, **{"If-None-Match": etag})
    cal = parse(changed)
    assert changed.headers["etag"] != etag
    cancelled_at = dt.datetime.combine(monday, dt.time(8, 15), tzinfo=SCHOOL_TIMEZONE)
    assert cancelled_at not in occurrences(masters(cal)[ids["5a-1"]])
    (override,) = overrides(cal)
    assert override.decoded("RECURRENCE-ID") == dt.datetime.combine(
        wednesday, dt.time(8, 15), tzinfo=SCHOOL_TIMEZONE
    )
    assert str(override["UID"]) == str(masters(cal)[ids["5a-3"]]["UID"])
    assert "Pekka Rehtori" in str(override["DESCRIPTION"])
    assert str(override["LOCATION"]) == "B7"
    assert int(override["SEQUENCE"]) == 0

    # Another substitute: the override's SEQUENCE goes up.
    await LessonChange.update({LessonChange.substitute_teacher: c.teacher}).where(
        LessonChange.on_date == wednesday
    )
    again = parse(await fetch(fx_client, path))
    (override,) = overrides(again)
    assert int(override["SEQUENCE"]) == 1
    assert "Tiina Opettaja" in str(override["DESCRIPTION"])

    # The substitute's own feed has that one lesson.
    cal = parse(await fetch(fx_client, await feed_url(fx_client, "principal", c.principal)))
    assert list(masters(cal)) == []  # no weekly lessons of the principal's own
    await LessonChange.update({LessonChange.substitute_teacher: c.principal}).where(
        LessonChange.on_date == wednesday
    )
    cal = parse(await fetch(fx_client, await feed_url(fx_client, "principal", c.principal)))
    (only,) = masters(cal).values()
    assert [d.date() for d in occurrences(only)] == [wednesday]


async def test_a_teacher_subscribes_to_the_lessons_they_teach(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    cal = parse(await fetch(fx_client, await feed_url(fx_client, "teacher", fx_city.teacher)))
    # The timetable names her for 3C too, but she does not work at its school: a name in the
    # timetable is no tie of its own (sync.policy, lesson.read).
    assert set(masters(cal)) == {i for k, i in fx_timetable.items() if not k.startswith("3c")}


async def test_titles_follow_the_owner_language(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    await Person.update({Person.language: "sv"}).where(Person.id == fx_city.father)
    cal = parse(await fetch(fx_client, await feed_url(fx_client, "father", fx_city.aino)))
    assert str(cal["X-WR-CALNAME"]) == "Schema: Aino Virtanen"
    assert "Lärare: Tiina Opettaja" in str(next(iter(masters(cal).values()))["DESCRIPTION"])


@pytest.mark.parametrize(
    ("who", "whom"),
    [
        ("father", "eero"),  # not his child
        ("olli_parent", "aino"),  # another family's child
        ("teacher", "aino"),  # teaches her, but a feed is a family's
        ("former_guardian", "olli"),  # guardianship ended yesterday
        ("aino", "mother"),  # a child does not follow a parent
        ("principal", "olli"),
    ],
)
async def test_feeds_of_people_not_ones_own_are_refused(
    fx_client: httpx.AsyncClient, fx_city: City, who: str, whom: str
) -> None:
    answer = await make_feed(fx_client, who, getattr(fx_city, whom))
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
    assert await CalendarFeed.count() == 0


async def test_unknown_person_and_bad_bodies(fx_client: httpx.AsyncClient, fx_city: City) -> None:
    assert (await make_feed(fx_client, "mother", 2**31 - 1)).status_code == 404
    headers = await log_in_as(fx_client, "mother")
    bad = await fx_client.post("/calendar/feeds", json={"person_id": 0}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["code"] == "request.invalid"
    extra = await fx_client.post(
        "/calendar/feeds", json={"person_id": fx_city.aino, "x": 1}, headers=headers
    )
    assert extra.status_code == 422
    assert (
        await fx_client.post("/calendar/feeds", json={"person_id": fx_city.aino})
    ).status_code == 401
    assert (await fx_client.get("/calendar/feeds")).status_code == 401
    assert await CalendarFeed.count() == 0


async def test_listing_and_revoking_are_the_owners_alone(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    c = fx_city
    mother = await log_in_as(fx_client, "mother")
    father = await log_in_as(fx_client, "father")
    made = (
        await fx_client.post("/calendar/feeds", json={"person_id": c.aino}, headers=mother)
    ).json()
    fathers = (
        await fx_client.post("/calendar/feeds", json={"person_id": c.aino}, headers=father)
    ).json()
    listed = (await fx_client.get("/calendar/feeds", headers=mother)).json()
    assert [(f["id"], f["person_id"], f["person_name"]) for f in listed] == [
        (made["id"], c.aino, "Aino Virtanen")
    ]
    assert "url" not in listed[0]
    assert "token" not in listed[0]
    # The father cannot revoke the mother's feed, nor see it.
    refused = await fx_client.delete(f"/calendar/feeds/{made['id']}", headers=father)
    assert refused.status_code == 404
    assert [f["id"] for f in (await fx_client.get("/calendar/feeds", headers=father)).json()] == [
        fathers["id"]
    ]
    path = made["url"].removeprefix("http://reppu.test")
    assert (await fetch(fx_client, path)).status_code == 200
    # Revoked: the URL answers 404 at once, and the list forgets it.
    gone = await fx_client.delete(f"/calendar/feeds/{made['id']}", headers=mother)
    assert gone.status_code == 204
    answer = await fetch(fx_client, path)
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
    assert (await fx_client.get("/calendar/feeds", headers=mother)).json() == []
    assert (
        await fx_client.delete(f"/calendar/feeds/{made['id']}", headers=mother)
    ).status_code == 404
    assert (
        await fetch(fx_client, fathers["url"].removeprefix("http://reppu.test"))
    ).status_code == 200


async def test_an_ended_guardianship_or_a_disabled_account_closes_the_feed(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    c = fx_city
    fathers = await feed_url(fx_client, "father", c.aino)
    mothers = await feed_url(fx_client, "mother", c.eero)
    assert (await fetch(fx_client, fathers)).status_code == 200
    await Guardianship.update({Guardianship.valid_to: c.today - dt.timedelta(days=1)}).where(
        Guardianship.guardian == c.father
    )
    assert (await fetch(fx_client, fathers)).status_code == 404
    await Account.update({Account.disabled: True}).where(Account.person == c.mother)
    assert (await fetch(fx_client, mothers)).status_code == 404


async def test_malformed_and_unknown_tokens_answer_404(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    path = await feed_url(fx_client, "mother", fx_city.aino)
    token = path.removeprefix("/calendar/").removesuffix(".ics")
    for wrong in (
        f"/calendar/{token}",
        f"/calendar/{token[:-1]}x.ics",
        "/calendar/short.ics",
        f"/calendar/{token}.ics.ics",
    ):
        answer = await fetch(fx_client, wrong)
        assert answer.status_code == 404, wrong


async def test_only_the_tokens_hash_is_stored(
    fx_client: httpx.AsyncClient, fx_db: Engine[Any], fx_city: City
) -> None:
    path = await feed_url(fx_client, "mother", fx_city.aino)
    token = path.removeprefix("/calendar/").removesuffix(".ics")
    rows = await CalendarFeed.select()
    assert len(rows) == 1
    assert token not in repr(rows)
    assert len(rows[0]["token_hash"]) == 64


def test_the_access_log_redacts_feed_tokens() -> None:
    config = uvicorn_log_config()
    access = config["handlers"]["access"]
    assert "redact_feed_tokens" in access["filters"]
    assert config["filters"]["redact_feed_tokens"]["()"] == "server.calendar.RedactFeedTokens"
    # A record as uvicorn's access logger makes it.
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5000",
            "GET",
            "/calendar/s3cr3t-t0ken_abcdefghijklmnopqrstuvwxyz0123.ics",
            "1.1",
            200,
        ),
        None,
    )
    assert RedactFeedTokens().filter(record)
    assert "s3cr3t" not in record.getMessage()
    assert "/calendar/<redacted>.ics" in record.getMessage()


async def test_the_error_log_leaves_the_token_out(
    fx_client: httpx.AsyncClient,
    fx_city: City,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = await feed_url(fx_client, "mother", fx_city.aino)
    token = path.removeprefix("/calendar/").removesuffix(".ics")

    async def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("server.routes.calendar.serve_feed", broken)
    with caplog.at_level(logging.ERROR, logger="reppu.errors"):
        answer = await fetch(fx_client, path)
    assert answer.status_code == 500
    assert "unexpected error on GET /calendar/<redacted>.ics" in caplog.text
    assert token not in caplog.text
