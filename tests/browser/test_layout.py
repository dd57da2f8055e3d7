"""The app on a phone (issue 18): the menu is one row of at most five tabs at 360 px in every
language, what does not fit is under "More"; the timetable moves a week back and forth and
says when a week's changes are not on the device (it keeps this week's and next week's)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.browser.conftest import Server, log_in, shot
from tests.browser.test_accessibility import AUDIT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LANGUAGES = ["fi", "sv", "en"]
TODAY = {"fi": "Tänään", "sv": "I dag", "en": "Today"}
MORE = {"fi": "Lisää", "sv": "Mer", "en": "More"}
NOT_HELD = {
    "fi": ("Menneiden viikkojen muutokset", "Tämän viikon muutokset eivät ole vielä"),
    "sv": ("Tidigare veckors ändringar", "Ändringarna för den här veckan finns inte ännu"),
    "en": ("Past weeks' changes are no longer", "This week's changes are not on this device yet"),
}


def _tab_rows(page: Any) -> dict[str, Any]:
    """The tab bar's geometry: its cells' tops, its height, and whether anything overflows."""
    result: dict[str, Any] = page.evaluate(
        """() => {
          const nav = document.getElementById('tabs');
          const cells = [...nav.querySelectorAll('li')];
          return {
            tops: [...new Set(cells.map((c) => Math.round(c.getBoundingClientRect().top)))],
            count: cells.length,
            height: nav.getBoundingClientRect().height,
            bottom: Math.round(nav.getBoundingClientRect().bottom),
            overflow: document.documentElement.scrollWidth > window.innerWidth,
            hrefs: cells.map((c) => c.querySelector('a').getAttribute('href')),
          };
        }"""
    )
    return result


def _patient_page(context: Any) -> Any:
    """A page that waits long: the machine these run on is shared, and a first sync under
    load took longer than the context's 20 s (slow, not wrong)."""
    page = context.new_page()
    page.set_default_timeout(90_000)
    return page


def _in_language(page: Any, server: Server, token: str, lang: str) -> None:
    """The person chooses ``lang`` (on another device); this one shows it after a reload."""
    server.call(token, "PUT", "/me/language", {"language": lang})
    page.reload()
    page.wait_for_function(f"document.documentElement.lang === {lang!r}")
    # The first drawing after the reload is in the language kept on the device; then /me's.
    page.wait_for_function(
        "(document.querySelector(\"#tabs a[href='#/today']\") || {}).textContent === "
        + repr(TODAY[lang])
    )


@pytest.mark.parametrize("username", ["demo-guardian", "demo-teacher"])
def test_the_menu_is_one_row_of_tabs_with_more(
    fx_phone: Any, fx_server: Server, username: str
) -> None:
    token = fx_server.login(username)["token"]
    page = _patient_page(fx_phone)
    log_in(page, username)
    for lang in LANGUAGES:
        page.goto("/#/today")
        _in_language(page, fx_server, token, lang)
        rows = _tab_rows(page)
        assert rows["count"] == 5, rows
        assert len(rows["tops"]) == 1, rows  # one row
        assert rows["height"] < 80, rows
        assert rows["bottom"] == 740, rows  # at the bottom of the phone's screen
        assert not rows["overflow"], rows
        assert rows["hrefs"][-1] == "#/more"
        more = page.locator("#nav-more")
        assert more.inner_text() == MORE[lang]
        shot(page, f"layout-{username}-{lang}")

        more.click()
        page.locator("#more-list").wait_for()
        assert page.locator("#view-title").inner_text() == MORE[lang]
        assert more.get_attribute("aria-current") == "page"
        rest = page.locator("#more-list a").evaluate_all(
            "as => as.map((a) => a.getAttribute('href'))"
        )
        assert "#/settings" in rest
        assert not set(rest) & set(rows["hrefs"])  # nothing twice
        assert page.evaluate(AUDIT) == [], f"the More view ({lang})"
        page.locator("#more-list a[href='#/settings']").click()
        page.locator("#language").wait_for()
        # Settings is under More: More stays the current tab.
        assert more.get_attribute("aria-current") == "page"


def _week_title(page: Any) -> str:
    text: str = page.locator("#view-title").inner_text()
    return text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_week_moves_back_and_forth_and_says_what_is_not_on_the_device(
    fx_phone: Any, fx_server: Server, lang: str
) -> None:
    token = fx_server.login("demo-pupil")["token"]
    page = _patient_page(fx_phone)
    log_in(page, "demo-pupil")
    page.goto("/#/week")
    _in_language(page, fx_server, token, lang)
    page.locator("#main section.day").first.wait_for()
    monday = fx_server.today - dt.timedelta(days=fx_server.today.isoweekday() - 1)
    lessons_this_week = page.locator("#main li.lesson").count()
    assert lessons_this_week > 0
    this_title = _week_title(page)
    assert page.locator("#week-not-held").count() == 0
    assert page.locator("#week-this").count() == 0  # already this week
    assert page.evaluate(AUDIT) == [], "the week"

    # Next week: its changes are on the device, so nothing to say.
    page.locator("#week-after").click()
    page.wait_for_function(f"location.hash === '#/week/{monday + dt.timedelta(days=7)}'")
    page.wait_for_function(f"document.getElementById('view-title').textContent !== {this_title!r}")
    assert page.locator("#week-not-held").count() == 0
    assert page.locator("#week-this").count() == 1

    # The week after that: the usual plan, and a word that its changes are not here yet.
    page.locator("#week-after").click()
    page.locator("#week-not-held").wait_for()
    assert page.locator("#week-not-held").inner_text().startswith(NOT_HELD[lang][1])
    assert page.locator("#main li.lesson").count() == lessons_this_week
    shot(page, f"week-not-held-{lang}")
    assert page.evaluate(AUDIT) == [], "a week not on the device"

    # Back to this week, then one before it: past changes have left the device.
    page.locator("#week-this").click()
    page.wait_for_function(f"location.hash === '#/week/{monday}'")
    page.locator("#week-before").click()
    page.wait_for_function(f"location.hash === '#/week/{monday - dt.timedelta(days=7)}'")
    page.locator("#week-not-held").wait_for()
    assert page.locator("#week-not-held").inner_text().startswith(NOT_HELD[lang][0])
