"""Roll call as it happens in a class: "All present" first, then the exceptions. Offline:
one pupil already marked absent is left as it is, one tap marks everyone else present (one
attendance.mark per pupil through the outbox), one pupil is changed to late; the marks
survive an offline reload and, back online, the server holds each exactly once."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Server, idb, log_in, shot, wait_for_worker

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AUDIT = "\n".join(
    line
    for line in (Path(__file__).parent / "audit.js").read_text().splitlines()
    if not line.startswith("//")
)


def _waiting(page: Any, n: int) -> None:
    page.wait_for_function(
        f"document.getElementById('status').dataset.waiting === '{n}'", timeout=30_000
    )


def test_all_present_then_the_exceptions_offline_lands_once(
    fx_phone: Any, fx_server: Server
) -> None:
    page = fx_phone.new_page()
    log_in(page, "demo-teacher")
    wait_for_worker(page)
    roll_links = page.locator("#main li.lesson a[href^='#/roll/']")
    roll_links.first.wait_for()
    href = roll_links.first.get_attribute("href")
    assert href is not None
    _, _, lesson, day = href.split("/")
    lesson_id = int(lesson)
    page.goto(f"/{href}")
    rows = page.locator("#main ul.roll li.pupil")
    rows.first.wait_for()
    pupils = [int(p) for p in rows.evaluate_all("r => r.map(li => li.dataset.pupil)")]
    assert len(pupils) >= 10, pupils
    assert page.locator("#all-present").is_visible()
    assert page.evaluate(AUDIT) == []

    fx_phone.set_offline(True)
    page.wait_for_function("document.getElementById('status').dataset.online === 'false'")
    absent, late = pupils[0], pupils[1]
    page.locator(f"#mark-{absent}-absent").click()
    page.locator(f"#mark-{absent}-absent[aria-pressed='true']").wait_for()
    _waiting(page, 1)

    # One tap for the rest of the class.
    page.locator("#all-present").click()
    _waiting(page, len(pupils))
    assert page.locator("#all-present").count() == 0  # nobody is left unmarked
    assert str(len(pupils) - 1) in page.locator("#all-present-done").inner_text()
    for pupil in pupils[1:]:
        assert page.locator(f"#mark-{pupil}-present").get_attribute("aria-pressed") == "true"
    assert page.locator(f"#mark-{absent}-absent").get_attribute("aria-pressed") == "true"
    assert page.evaluate(AUDIT) == []
    shot(page, "teacher-roll-call-all-present", top=False)

    # Then the exception.
    page.locator(f"#mark-{late}-late").click()
    page.locator(f"#mark-{late}-late[aria-pressed='true']").wait_for()
    taps = len(pupils) + 1
    _waiting(page, taps)
    outbox = idb(page, "return await db.outbox();")
    assert [m["id"] for m in outbox] == list(range(1, taps + 1))
    assert [m["args"]["pupil_id"] for m in outbox[1:-1]] == pupils[1:]
    assert {m["args"]["status"] for m in outbox[1:-1]} == {"present"}

    # An offline reload keeps it all.
    page.reload()
    rows.first.wait_for()
    _waiting(page, taps)
    expected = {pupil: "present" for pupil in pupils}
    expected[absent] = "absent"
    expected[late] = "late"
    for pupil, status in expected.items():
        assert page.locator(f"#mark-{pupil}-{status}").get_attribute("aria-pressed") == "true"
    assert page.locator("#all-present").count() == 0

    # Online: sent, and each mark held once.
    fx_phone.set_offline(False)
    _waiting(page, 0)
    outcomes = idb(page, "return await db.outcomes();")
    assert sorted(o["id"] for o in outcomes) == list(range(1, taps + 1))
    assert {o["status"] for o in outcomes} == {"applied"}, outcomes
    with sqlite3.connect(fx_server.database) as db:
        held = db.execute(
            "SELECT pupil, status, mutation_id FROM roll_mark WHERE lesson = ? AND on_date = ? "
            "ORDER BY mutation_id",
            (lesson_id, day),
        ).fetchall()
    assert [r[2] for r in held] == list(range(1, taps + 1))  # each mark once, none twice
    assert {pupil: status for pupil, status, _ in held} == expected
