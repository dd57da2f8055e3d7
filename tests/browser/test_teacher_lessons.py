"""A teacher's lessons name their group (a teacher has many), the room is called a room, and
refused changes stay readable: a roll call refused for a whole class is one line with a count
in the box of rejected changes, a line of one names its pupil, and one "Dismiss all" clears
them (issue 18). A roll call opened for a day its lesson does not take place offers no marks."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from tests.browser.conftest import Server, idb, log_in, shot, wait_for_worker
from tests.browser.test_accessibility import AUDIT

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _open_today(fx_phone: Any) -> Any:
    page = fx_phone.new_page()
    log_in(page, "demo-teacher")
    wait_for_worker(page)
    page.locator("#main li.lesson a[href^='#/roll/']").first.wait_for()
    return page


def test_lessons_and_roll_call_name_the_group(fx_phone: Any, fx_server: Server) -> None:
    page = _open_today(fx_phone)
    groups = {g["id"]: g["name"] for g in idb(page, "return await db.recordsOf('group');")}
    lessons = {lesson["id"]: lesson for lesson in idb(page, "return await db.recordsOf('lesson');")}
    items = page.locator("#main li.lesson")
    assert items.count() >= 1
    for i in range(items.count()):
        item = items.nth(i)
        lesson = lessons[int(item.get_attribute("data-lesson") or 0)]
        details = item.locator(".details").inner_text()
        assert details.startswith(groups[lesson["group_id"]]), details
        # The room is a room ("Huone"), not "Luokka", which in Finnish is also a class.
        assert "Luokka" not in details, details
        if lesson["room"]:
            assert f"Huone {lesson['room']}" in details, details
    assert page.evaluate(AUDIT) == []

    href = page.locator("#main li.lesson a[href^='#/roll/']").first.get_attribute("href")
    assert href is not None
    lesson = lessons[int(href.split("/")[2])]
    page.goto(f"/{href}")
    page.locator("#main ul.roll li.pupil").first.wait_for()
    title = page.locator("#view-title")
    assert title.inner_text().startswith(f"Nimenhuuto: {groups[lesson['group_id']]}, ")
    assert lesson["subject"] in title.inner_text()


def test_a_day_without_the_lesson_offers_no_marks(fx_phone: Any, fx_server: Server) -> None:
    page = _open_today(fx_phone)
    href = page.locator("#main li.lesson a[href^='#/roll/']").first.get_attribute("href")
    assert href is not None
    lesson_id = int(href.split("/")[2])
    # A weekly lesson: tomorrow (another weekday) it does not take place.
    tomorrow = (fx_server.today + dt.timedelta(days=1)).isoformat()
    page.goto(f"/#/roll/{lesson_id}/{tomorrow}")
    message = page.locator("#no-lesson-that-day")
    message.wait_for()
    assert "ei pidetä" in message.inner_text()
    assert page.locator("#main li.pupil").count() == 0
    assert page.locator("#all-present").count() == 0
    assert page.evaluate(AUDIT) == []
    # Its own day still offers the marks.
    page.goto(f"/{href}")
    page.locator("#main ul.roll li.pupil").first.wait_for()
    assert page.locator("#no-lesson-that-day").count() == 0


def _refused_days(lesson: dict[str, Any], today: dt.date) -> list[str]:
    """Days the lesson takes place whose marks the server refuses: past ones (too late) and
    future ones (not come yet), within the lesson's validity."""
    days = [today + dt.timedelta(days=n) for n in (-7, -14, 7, 14)]
    valid_to = lesson.get("valid_to") or "9999-12-31"
    return [d.isoformat() for d in days if lesson["valid_from"] <= d.isoformat() <= valid_to]


def test_refusals_of_a_class_are_one_line_and_dismissed_at_once(
    fx_phone: Any, fx_server: Server
) -> None:
    page = _open_today(fx_phone)
    href = page.locator("#main li.lesson a[href^='#/roll/']").first.get_attribute("href")
    assert href is not None
    lesson_id = int(href.split("/")[2])
    lesson = idb(page, f"return await db.getRecord('lesson', {lesson_id});")
    group = next(
        g["name"]
        for g in idb(page, "return await db.recordsOf('group');")
        if g["id"] == lesson["group_id"]
    )
    class_day, one_day = _refused_days(lesson, fx_server.today)[:2]

    # The whole class marked present on a day the server refuses: one line with the count.
    page.goto(f"/#/roll/{lesson_id}/{class_day}")
    rows = page.locator(f"#main ul.roll[data-day='{class_day}'] li.pupil")
    rows.first.wait_for()
    pupils = rows.count()
    assert pupils >= 10
    page.locator("#all-present").click()
    page.locator("#main li.pupil .badge[data-state='refused']").nth(pupils - 1).wait_for(
        timeout=30_000
    )
    lines = page.locator("#rejected li.rejected")
    lines.first.wait_for()
    assert lines.count() == 1, lines.all_inner_texts()
    assert lines.first.get_attribute("data-count") == str(pupils)
    text = lines.first.inner_text()
    assert text.startswith(f"{pupils} nimenhuutomerkintää ({group} {lesson['subject']}, "), text
    assert page.locator("#dismiss-all").count() == 0  # one line: its own Dismiss clears it
    # The rows keep their own refusals.
    assert page.locator("#main li.pupil .refusal").count() == pupils

    # One mark refused on another day: a line of its own that names the pupil.
    page.goto(f"/#/roll/{lesson_id}/{one_day}")
    row = page.locator(f"#main ul.roll[data-day='{one_day}'] li.pupil").first
    row.wait_for()
    name = row.locator(".name").inner_text()
    pupil = row.get_attribute("data-pupil")
    page.locator(f"#mark-{pupil}-late").click()
    row.locator(".badge[data-state='refused']").wait_for(timeout=30_000)
    page.wait_for_function("document.querySelectorAll('#rejected li.rejected').length === 2")
    single = lines.filter(has_text=name)
    assert single.get_attribute("data-count") == "1"
    assert re.match(rf"Nimenhuuto \({re.escape(name)}, {re.escape(group)} ", single.inner_text())
    assert page.evaluate(AUDIT) == []
    shot(page, "teacher-refusals-grouped")

    # One "Dismiss all" clears every line, and the rows' refusals with them.
    page.locator("#dismiss-all").click()
    page.locator("#rejected").wait_for(state="hidden")
    row.locator(".badge").wait_for(state="detached")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'main'")
    outcomes = idb(page, "return await db.outcomes();")
    refused = [o for o in outcomes if o["status"] == "rejected"]
    assert len(refused) == pupils + 1
    assert all(o.get("seen") for o in refused)
