"""Dates and times follow Finnish conventions in every language (docs/pwa.md, "Dates and
times"): Finnish and Swedish their own way, English with the day before the month ("7 Dec",
never "12/7") and a 24-hour clock. Checked on a pupil's day and week and in a guardian's
absence list, in fi, sv and en."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import uuid
from typing import Any

import pytest

from tests.browser.conftest import Server, log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LANGUAGES = ["fi", "sv", "en"]
WEEKDAYS = {
    # Finnish may come as the essive ("maanantaina"): the stem is checked.
    "fi": ["maanantai", "tiistai", "keskiviikko", "torstai", "perjantai"],
    "sv": ["måndag", "tisdag", "onsdag", "torsdag", "fredag"],
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
}
DASH = "\u2013"  # the en dash between two times or two dates
EN_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
# "Updated <when>": a moment with its time on the 24-hour clock, in the language's own way.
MOMENT = {
    "fi": r"\d{1,2}\.\d{1,2}\.\d{4} klo \d{1,2}\.\d\d",
    # Swedish as written in Finland (sv-FI), never Sweden's ISO dates.
    "sv": r"\d{1,2}\.\d{1,2}\.\d{4} \d{1,2}[.:]\d\d",
    "en": r"\d{1,2} [A-Z][a-z]{2,3} \d{4}, \d\d:\d\d",
}


def date_pattern(day: dt.date, lang: str) -> str:
    """A regular expression for ``day`` without its weekday, as the app writes it."""
    if lang == "fi":
        return re.escape(f"{day.day}.{day.month}.")
    if lang == "sv":
        return re.escape(f"{day.day}.{day.month}")
    # Newer ICU writes September "Sept" in British English.
    month = "Sept?" if day.month == 9 else EN_MONTHS[day.month - 1]
    return rf"{day.day} {month}"


def day_pattern(day: dt.date, lang: str) -> str:
    return rf"^{WEEKDAYS[lang][day.isoweekday() - 1]}\w* {date_pattern(day, lang)}$"


PUPIL = (
    "SELECT a.username, p.id FROM account a JOIN person p ON p.id = a.person "
    "JOIN membership m ON m.person = p.id AND m.role = 'pupil' "
    "WHERE a.username LIKE 'u%' ORDER BY p.id LIMIT 1"
)
GUARDIAN = (
    "SELECT a.username, p.id FROM account a JOIN person p ON p.id = a.person "
    "WHERE a.username = 'demo-guardian'"
)


def _set_language(server: Server, query: str, language: str) -> str:
    """Give the person the ``query`` finds the ``language``; the account's username."""
    with sqlite3.connect(server.database, timeout=30) as db:
        row = db.execute(query).fetchone()
        assert row, query
        db.execute("UPDATE person SET language = ? WHERE id = ?", (language, row[1]))
    return str(row[0])


def _banner_moment(page: Any, lang: str) -> None:
    page.wait_for_function(
        "document.getElementById('status').textContent.includes('·')", timeout=30_000
    )
    text = page.locator("#status").inner_text()
    assert re.search(MOMENT[lang], text), text
    assert not re.search(r"\b[AP]\.?M\.?\b", text, re.IGNORECASE), text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_pupil_day_and_week_show_dates_and_times_the_finnish_way(
    fx_phone: Any, fx_server: Server, lang: str
) -> None:
    page = fx_phone.new_page()
    log_in(page, _set_language(fx_server, PUPIL, lang))
    assert page.evaluate("document.documentElement.lang") == lang
    today = fx_server.today

    page.goto("/#/today")
    page.locator("#main li.lesson").first.wait_for()
    title = page.locator("#view-title").inner_text()
    assert re.search(day_pattern(today, lang).lstrip("^"), title), title
    for time in page.locator("#main li.lesson .time").all_inner_texts():
        assert re.fullmatch(rf"\d\d:\d\d{DASH}\d\d:\d\d", time), time
    _banner_moment(page, lang)
    shot(page, f"dates-pupil-today-{lang}")

    page.goto("/#/week")
    page.locator("#main section.day h2").first.wait_for()
    monday = today - dt.timedelta(days=today.isoweekday() - 1)
    friday = monday + dt.timedelta(days=4)
    week_title = page.locator("#view-title").inner_text()
    span = rf"{date_pattern(monday, lang)}{DASH}{date_pattern(friday, lang)}"
    assert re.search(span, week_title), week_title
    days = page.locator("#main section.day h2").all_inner_texts()
    assert len(days) == 5
    for n, text in enumerate(days):
        assert re.match(day_pattern(monday + dt.timedelta(days=n), lang), text), text
    for time in page.locator("#main li.lesson .time").all_inner_texts():
        assert re.fullmatch(rf"\d\d:\d\d{DASH}\d\d:\d\d", time), time
    shot(page, f"dates-pupil-week-{lang}")


@pytest.fixture(scope="module")
def fx_notice(fx_server: Server) -> tuple[int, dt.date, dt.date]:
    """An absence notice for demo-guardian's first child: today and the next day."""
    login = fx_server.login("demo-guardian")
    child = fx_server.call(login["token"], "GET", "/me")["children"][0]["person"]["id"]
    first = fx_server.today
    last = first + dt.timedelta(days=1)
    results = fx_server.push(
        login["token"],
        f"browser-dates-{uuid.uuid4()}",
        [
            {
                "name": "absence.report",
                "args": {
                    "pupil_id": child,
                    "from_date": first.isoformat(),
                    "to_date": last.isoformat(),
                    "reason": "illness",
                },
            }
        ],
    )
    assert [r["status"] for r in results] == ["applied"], results
    return child, first, last


@pytest.mark.parametrize("lang", LANGUAGES)
def test_guardian_absence_list_shows_local_dates(
    fx_phone: Any, fx_server: Server, fx_notice: tuple[int, dt.date, dt.date], lang: str
) -> None:
    _, first, last = fx_notice
    username = _set_language(fx_server, GUARDIAN, lang)
    page = fx_phone.new_page()
    log_in(page, username)
    page.goto("/#/absences")
    page.locator("#absence-form").wait_for()
    _banner_moment(page, lang)
    page.wait_for_function("document.querySelectorAll('#main ul.items li').length > 0")
    items = page.locator("#main ul.items li.item").all_inner_texts()
    span = rf"^{date_pattern(first, lang)}{DASH}{date_pattern(last, lang)} · "
    assert any(re.match(span, text) for text in items), items
    # No ISO date is left in the list.
    assert not any(re.search(r"\d{4}-\d\d-\d\d", text) for text in items), items
    shot(page, f"dates-guardian-absences-{lang}")


DATA_AGE = {
    "fi": ("Tiedot päivitetty tämän minuutin aikana", "Tiedot päivitetty 2 tuntia sitten"),
    "sv": ("Uppgifterna uppdaterade denna minut", "Uppgifterna uppdaterade för 2 timmar sedan"),
    "en": ("Data updated this minute", "Data updated 2 hours ago"),
}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_offline_the_banner_says_how_old_the_data_is(
    fx_phone: Any, fx_server: Server, lang: str
) -> None:
    page = fx_phone.new_page()
    log_in(page, _set_language(fx_server, PUPIL, lang))
    page.locator("#main li.lesson").first.wait_for()
    _banner_moment(page, lang)
    assert page.locator("#data-age").is_hidden()  # online: the banner says when already

    fx_phone.set_offline(True)
    page.wait_for_function("document.getElementById('status').dataset.online === 'false'")
    just_now, two_hours = DATA_AGE[lang]
    page.wait_for_function(
        "(text) => document.getElementById('data-age').textContent === text", arg=just_now
    )
    # Two hours later, still offline, with the app left open: the line has aged.
    fx_phone.clock.fast_forward("02:00:00")
    page.wait_for_function(
        "(text) => document.getElementById('data-age').textContent === text", arg=two_hours
    )
    assert page.locator("#data-age").is_visible()
    assert page.locator("#data-age").get_attribute("aria-live") is None
    shot(page, f"offline-data-age-{lang}")

    fx_phone.set_offline(False)
    page.wait_for_function("document.getElementById('data-age').hidden")
