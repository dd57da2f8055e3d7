"""Roll call offline: a teacher marks every pupil with no network, reloads the page while
still offline (the outbox survives in IndexedDB), goes online, and the server holds every
mark exactly once."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from tests.browser.conftest import Server, idb, log_in, shot, wait_for_worker

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
