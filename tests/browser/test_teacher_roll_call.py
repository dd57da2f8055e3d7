"""Roll call offline: a teacher marks every pupil with no network, reloads the page while
still offline (the outbox survives in IndexedDB), goes online, and the server holds every
mark exactly once. Each mark made on the phone shows its state on the pupil's row: waiting
to send, sent, or refused with the reason in the teacher's language."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

import pytest

from tests.browser.conftest import Server, idb, log_in, shot, wait_for_worker
from tests.browser.test_accessibility import AUDIT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STATUSES = ("present", "absent", "late")


def _waiting(page: Any) -> int:
    return int(page.locator("#status").get_attribute("data-waiting") or 0)


def test_roll_call_offline_survives_a_reload_and_lands_once(
    fx_phone: Any, fx_server: Server
) -> None:
    page = fx_phone.new_page()
    log_in(page, "demo-teacher")
    wait_for_worker(page)
    roll_links = page.locator("#main li.lesson a[href^='#/roll/']")
    roll_links.first.wait_for()
    shot(page, "teacher-today")
    href = roll_links.first.get_attribute("href")
    assert href is not None
    _, _, lesson, day = href.split("/")
    lesson_id = int(lesson)
    assert day == fx_server.today.isoformat()
    page.goto(f"/{href}")
    rows = page.locator("#main ul.roll li.pupil")
    rows.first.wait_for()
    pupils = [int(p) for p in rows.evaluate_all("r => r.map(li => li.dataset.pupil)")]
    assert len(pupils) >= 10, pupils

    # No network from here: one tap per pupil, and one pupil corrected from absent to late.
    fx_phone.set_offline(True)
    page.wait_for_function("document.getElementById('status').dataset.online === 'false'")
    chosen = {pupil: STATUSES[i % 3] for i, pupil in enumerate(pupils)}
    for pupil, status in chosen.items():
        page.locator(f"#mark-{pupil}-{status}").click()
        page.locator(f"#mark-{pupil}-{status}[aria-pressed='true']").wait_for()
    corrected = next(p for p, s in chosen.items() if s == "absent")
    page.locator(f"#mark-{corrected}-late").click()
    page.locator(f"#mark-{corrected}-late[aria-pressed='true']").wait_for()
    taps = len(pupils) + 1
    page.wait_for_function(f"document.getElementById('status').dataset.waiting === '{taps}'")
    assert str(taps) in page.locator("#status").inner_text()
    shot(page, "teacher-roll-call-offline", top=False)

    # A reload with no network: the shell from the worker, the marks from the outbox.
    page.reload()
    rows.first.wait_for()
    page.wait_for_function(f"document.getElementById('status').dataset.waiting === '{taps}'")
    assert _waiting(page) == taps
    chosen[corrected] = "late"
    for pupil, status in chosen.items():
        assert page.locator(f"#mark-{pupil}-{status}").get_attribute("aria-pressed") == "true"
    outbox = idb(page, "return await db.outbox();")
    assert [m["id"] for m in outbox] == list(range(1, taps + 1))

    # Online again: the outbox goes out (the online event and Background Sync may both try:
    # the server applies each mutation id once).
    fx_phone.set_offline(False)
    page.wait_for_function(
        "document.getElementById('status').dataset.waiting === '0'", timeout=30_000
    )
    shot(page, "teacher-roll-call-sent")
    outcomes = idb(page, "return await db.outcomes();")
    assert sorted(o["id"] for o in outcomes) == list(range(1, taps + 1))
    assert {o["status"] for o in outcomes} == {"applied"}, outcomes

    with sqlite3.connect(fx_server.database) as db:
        rows_held = db.execute(
            "SELECT pupil, status, mutation_id FROM roll_mark WHERE lesson = ? AND on_date = ? "
            "ORDER BY mutation_id",
            (lesson_id, day),
        ).fetchall()
    assert [r[2] for r in rows_held] == list(range(1, taps + 1))  # each mark once, none twice
    latest = {pupil: status for pupil, status, _ in rows_held}
    assert latest == chosen

    # The marks come back through pull as attendance records; the view shows them as marked.
    page.reload()
    rows.first.wait_for()
    for pupil, status in chosen.items():
        page.locator(f"#mark-{pupil}-{status}[aria-pressed='true']").wait_for()
    assert page.locator("#main .pending").count() == 0


# A mark's state on its pupil's row, in the teacher's words (js/outcomes.js, reasonText).
WAITING = {"fi": "odottaa lähettämistä", "sv": "väntar på att skickas", "en": "waiting to send"}
SENT = {"fi": "lähetetty", "sv": "skickat", "en": "sent"}
REFUSED = {"fi": "hylätty", "sv": "avvisat", "en": "refused"}
TOO_LATE = {
    "fi": "Nimenhuudon voi merkitä ja korjata vain tunnin päivänä.",
    "sv": "Närvaron kan antecknas och rättas bara på lektionens dag.",
    "en": "Roll call can be marked and corrected only on the lesson's day.",
}
NOT_THAT_DAY = {
    "fi": "Nimenhuutoa ei voi merkitä tälle päivälle: tuntia ei ole, se on peruttu tai päivä ei"
    " ole vielä tullut.",
    "sv": "Närvaron kan inte antecknas för den dagen: ingen lektion, inställd eller dagen har"
    " inte kommit än.",
    "en": "Roll call cannot be marked for that date: no lesson, cancelled, or the day has not"
    " come yet.",
}


def _set_language(server: Server, username: str, language: str | None) -> None:
    with sqlite3.connect(server.database, timeout=30) as db:
        db.execute(
            "UPDATE person SET ui_language = ? WHERE id = "
            "(SELECT person FROM account WHERE username = ?)",
            (language, username),
        )


def test_each_mark_shows_on_its_row_waiting_then_sent_or_refused(
    fx_phone: Any, fx_server: Server
) -> None:
    page = fx_phone.new_page()
    log_in(page, "demo-teacher")
    wait_for_worker(page)
    roll_links = page.locator("#main li.lesson a[href^='#/roll/']")
    roll_links.first.wait_for()
    href = roll_links.last.get_attribute("href")
    assert href is not None
    _, _, lesson, day = href.split("/")
    lesson_id = int(lesson)
    page.goto(f"/{href}")
    rows = page.locator("#main ul.roll li.pupil")
    rows.first.wait_for()
    pupil = int(rows.first.get_attribute("data-pupil") or 0)
    row = page.locator(f"#main li.pupil[data-pupil='{pupil}']")
    assert row.locator(".badge").count() == 0  # nothing done on this device yet

    # Offline: the mark waits, on its row; a double tap is one mark.
    fx_phone.set_offline(True)
    page.wait_for_function("document.getElementById('status').dataset.online === 'false'")
    page.locator(f"#mark-{pupil}-absent").dblclick()
    badge = row.locator(".badge[data-state='waiting']")
    badge.wait_for()
    assert badge.inner_text() == WAITING["fi"]
    page.wait_for_function("document.getElementById('status').dataset.waiting === '1'")
    assert page.locator(f"#mark-{pupil}-absent").get_attribute("aria-pressed") == "true"
    assert page.evaluate(AUDIT) == []
    shot(page, "teacher-roll-call-mark-waiting")

    # Online: sent, still marked absent (its attendance record arrives and stands for it).
    fx_phone.set_offline(False)
    sent = row.locator(".badge[data-state='sent']")
    sent.wait_for(timeout=30_000)
    assert sent.inner_text() == SENT["fi"]
    assert row.locator(".badge[data-state='waiting']").count() == 0
    assert page.locator(f"#mark-{pupil}-absent").get_attribute("aria-pressed") == "true"
    outcomes = idb(page, "return await db.outcomes();")
    assert [o["status"] for o in outcomes] == ["applied"], outcomes

    # Last week's roll call, still open on the phone: too late (or, if the lesson did not run
    # then, next week's: not come yet), refused on the row, in the teacher's words, with a
    # Dismiss. (A day the lesson does not take place offers no marks: test_teacher_lessons.py.)
    last_week = (fx_server.today - dt.timedelta(days=7)).isoformat()
    held = idb(page, f"return await db.getRecord('lesson', {lesson_id});")
    if held["valid_from"] <= last_week:
        other_day, expected = last_week, TOO_LATE
    else:
        other_day, expected = (fx_server.today + dt.timedelta(days=7)).isoformat(), NOT_THAT_DAY
    page.goto(f"/#/roll/{lesson_id}/{other_day}")
    page.locator(f"#main ul.roll[data-day='{other_day}'] li.pupil").first.wait_for()
    page.locator(f"#mark-{pupil}-present").click()
    refused = row.locator(".badge[data-state='refused']")
    refused.wait_for(timeout=30_000)
    assert expected["fi"] in row.inner_text()
    assert expected["fi"] in page.locator("#rejected").inner_text()
    assert page.evaluate(AUDIT) == []
    shot(page, "teacher-roll-call-mark-refused", top=False)
    try:
        for lang in ("sv", "en"):
            _set_language(fx_server, "demo-teacher", lang)
            page.reload()
            row.locator(".refusal .error", has_text=expected[lang]).wait_for()
            assert row.locator(".badge[data-state='refused']").inner_text() == REFUSED[lang]
    finally:
        _set_language(fx_server, "demo-teacher", None)
    # Rows refused for the same reason have Dismiss buttons a screen reader tells apart.
    label = row.locator(".refusal button").get_attribute("aria-label") or ""
    assert row.locator(".name").inner_text() in label, label
    row.locator(".refusal button").click()
    row.locator(".badge").wait_for(state="detached")
    page.locator("#rejected").wait_for(state="hidden")
    client_id = idb(page, "return await db.getMeta('client_id');")
    with sqlite3.connect(fx_server.database) as db:
        held_marks = db.execute(
            "SELECT on_date, status FROM roll_mark WHERE client_id = ?", (client_id,)
        ).fetchall()
    assert held_marks == [(day, "absent")]  # the double tap once, the refused mark not at all
