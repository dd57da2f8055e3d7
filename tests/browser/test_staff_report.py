"""A teacher sends a bulletin from the app and sees whom it reached ("Who was reached"): the
counts as the server gives them, and the guardians no channel reached, by name, in pages.
The report is live server data: offline the view says so; a teacher who is neither the
author nor a principal is refused (the API's 404) with a clear message."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from typing import Any

import pytest

from tests.browser.conftest import (
    FAKETIME_LIBRARY,
    PHONE,
    REPPU,
    ROOT,
    Server,
    log_in,
    shot,
    wait_for_worker,
    wait_until,
)
from tests.browser.test_accessibility import AUDIT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TITLE = "Vanhempainilta torstaina"

# The guardians of the group's current pupils (every guardianship, as the fan-out counts them).
GROUP_GUARDIANS = """
SELECT DISTINCT g.guardian FROM guardianship g
JOIN membership m ON m.person = g.pupil AND m.role = 'pupil'
WHERE m."group" = ? AND m.valid_from <= ? AND (m.valid_to IS NULL OR m.valid_to >= ?)
  AND g.valid_from <= ? AND (g.valid_to IS NULL OR g.valid_to >= ?)
"""
WITH_A_CHANNEL = """
SELECT person FROM push_subscription UNION SELECT person FROM notify_channel
"""
OTHER_TEACHER = """
SELECT a.username FROM account a JOIN staff_role s ON s.person = a.person
WHERE s.role = 'teacher' AND s.organisation = ? AND a.person != ?
  AND a.person NOT IN (SELECT person FROM staff_role WHERE role IN ('principal', 'admin'))
  AND a.person NOT IN (SELECT person FROM membership WHERE "group" = ? AND role = 'teacher')
ORDER BY a.username LIMIT 1
"""


def _run_worker_once(server: Server) -> None:
    """``reppu worker --once`` on the server's data, on the server's (faked) clock."""
    env = {
        **os.environ,
        "REPPU_DATA_DIR": str(server.data_dir),
        "LD_PRELOAD": FAKETIME_LIBRARY,
        "FAKETIME": f"{int(server.offset.total_seconds()):+d}",
        "DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_DONT_RESET": "1",
    }
    env.pop("REPPU_DATABASE_URL", None)
    done = subprocess.run(
        [*REPPU, "worker", "--once"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _full_report(server: Server, token: str, bulletin_id: int) -> tuple[dict[str, Any], list[Any]]:
    """The report's counts and every not-reached person, page by page, from the API."""
    first: dict[str, Any] = server.call(token, "GET", f"/bulletins/{bulletin_id}/status?limit=1")
    people: list[Any] = []
    after: int | None = 0
    while after is not None:
        page = server.call(
            token,
            "GET",
            f"/bulletins/{bulletin_id}/status?only=not_reached&limit=7&after={after}",
        )
        assert page["counts"] == first["counts"]
        people += page["people"]
        after = page.get("next_after")
    return first, people


def test_teacher_sends_a_bulletin_and_sees_whom_to_call(
    fx_phone: Any, fx_browser: Any, fx_server: Server
) -> None:
    guardian = fx_server.login("demo-guardian")
    guardian_me = fx_server.call(guardian["token"], "GET", "/me")
    teacher = fx_server.login("demo-teacher")
    teacher_me = fx_server.call(teacher["token"], "GET", "/me")
    taught = {
        int(p.split(":")[1]) for p in teacher_me["partitions"] if p.startswith("group-staff:")
    }
    # A group the teacher teaches with one of demo-guardian's children in it.
    group_id = min(g for c in guardian_me["children"] for g in c["group_ids"] if g in taught)

    # The teacher writes the bulletin in the app; it goes through the outbox.
    page = fx_phone.new_page()
    log_in(page, "demo-teacher")
    wait_for_worker(page)
    page.goto("/#/bulletins")
    page.locator("#new-bulletin").click()
    page.locator("#bulletin-form").wait_for()
    assert page.evaluate(AUDIT) == [], "new bulletin form"
    assert page.locator("#bulletin-form input[name=urgent]").count() == 0  # teachers: never urgent
    assert page.locator("#bulletin-form input[name=roles][value=guardians]").is_checked()
    page.locator("select[name=audience]").select_option(f"group:{group_id}")
    page.locator("input[name=title]").fill(TITLE)
    page.locator("textarea[name=body]").fill("Tervetuloa koululle klo 18.")
    shot(page, "teacher-new-bulletin")
    page.locator("#bulletin-form button[type=submit]").click()
    bulletin_id = int(
        wait_until(
            page,
            f"const o = await db.outbox(); const b = (await db.recordsOf('bulletin'))"
            f".find((r) => r.title === {TITLE!r}); return o.length === 0 && b && b.id;",
        )
    )
    outcome = wait_until(
        page,
        "const o = (await db.outcomes()).find((x) => x.name === 'bulletin.send');"
        " return o && o.status;",
    )
    assert outcome == "applied", outcome

    # One guardian reads it; the worker delivers what is due (nobody in the demo city has a
    # device or a channel, so everyone else is "not reached").
    fx_server.push(
        guardian["token"],
        "staff-report-guardian",
        [{"name": "bulletin.read", "args": {"id": bulletin_id}}],
    )
    _run_worker_once(fx_server)
    deadline = time.monotonic() + 30
    while True:
        report, not_reached = _full_report(fx_server, teacher["token"], bulletin_id)
        if report["expansion"] == "done" and report["counts"]["pending"] == 0:
            break
        assert time.monotonic() < deadline, report
        time.sleep(0.5)
    assert report["counts"]["read"] == 1
    day = fx_server.today.isoformat()
    with sqlite3.connect(fx_server.database) as db:
        guardians = {
            r[0] for r in db.execute(GROUP_GUARDIANS, (group_id, day, day, day, day)).fetchall()
        }
        reachable = {r[0] for r in db.execute(WITH_A_CHANNEL).fetchall()}
        school = db.execute("SELECT school FROM school_group WHERE id = ?", (group_id,)).fetchone()[
            0
        ]
        contacts = [
            value
            for person, *values in db.execute("SELECT id, email, phone FROM person").fetchall()
            if person in guardians
            for value in values
            if value
        ]
        other = db.execute(OTHER_TEACHER, (school, teacher_me["person"]["id"], group_id)).fetchone()
    assert guardian_me["person"]["id"] in guardians
    expected = guardians - reachable - {guardian_me["person"]["id"]}
    assert len(expected) > 7  # more than one page of the app's report below
    assert {p["person_id"] for p in not_reached} == expected
    assert report["counts"]["not_reached"] == len(expected)
    assert report["recipients"] == len(guardians)

    # The app's report: small pages, so that "show more" is used.
    page.evaluate("window.reppu.state.reportPage = 7")
    page.goto(f"/#/bulletins/{bulletin_id}")
    page.locator("#report-link").click()
    page.locator("#report-counts").wait_for()
    page.wait_for_function("document.activeElement.id === 'view-title'")  # focus on the heading
    shown = {
        s: int(page.locator(f"#report-counts dd[data-status={s}]").inner_text())
        for s in ("read", "reached", "pending", "not_reached")
    }
    assert shown == {s: report["counts"][s] for s in shown}
    more = page.locator("#report-more")
    for _ in range(len(expected)):
        if not more.count():
            break
        before = page.locator("#not-reached li").count()
        more.click()
        page.wait_for_function(f"document.querySelectorAll('#not-reached li').length > {before}")
        # Focus goes to the first new name, so a screen reader carries on from there.
        assert page.evaluate("document.activeElement.dataset.person") is not None
    assert more.count() == 0  # the last page: no more to show
    rows = page.locator("#not-reached li")
    listed = [
        (int(rows.nth(i).get_attribute("data-person")), rows.nth(i).locator(".name").inner_text())
        for i in range(rows.count())
    ]
    assert listed == [(p["person_id"], p["name"]) for p in not_reached]
    assert all(name for _, name in listed)
    text = page.locator("#main").inner_text()
    assert not [c for c in contacts if c in text]  # names only: no contact details
    assert page.evaluate(AUDIT) == [], "report view"
    shot(page, "teacher-bulletin-report")

    # Offline: the report says it needs the network instead of failing.
    fx_phone.set_offline(True)
    page.goto(f"/#/bulletins/{bulletin_id}")
    page.locator("#report-link").click()
    page.locator("#report-problem").wait_for()
    offline_text = page.evaluate("import('/js/i18n.js').then((m) => m.t('report_offline'))")
    assert page.locator("#report-problem").inner_text() == offline_text
    assert page.locator("#report-counts").count() == 0
    assert page.evaluate(AUDIT) == [], "report view offline"
    shot(page, "teacher-bulletin-report-offline")
    fx_phone.set_offline(False)

    # Another teacher of the school (not the author, not a principal) is refused.
    assert other, "no other teacher in the demo school"
    context = fx_browser.new_context(
        viewport=PHONE,
        device_scale_factor=1,
        is_mobile=True,
        has_touch=True,
        locale="fi-FI",
        timezone_id="Europe/Helsinki",
        base_url=fx_server.base,
    )
    context.clock.install(time=fx_server.now())
    context.set_default_timeout(20_000)
    try:
        stranger = context.new_page()
        log_in(stranger, str(other[0]))
        stranger.goto(f"/#/bulletins/{bulletin_id}/report")
        stranger.locator("#report-problem").wait_for()
        refused = stranger.evaluate("import('/js/i18n.js').then((m) => m.t('report_refused'))")
        assert stranger.locator("#report-problem").inner_text() == refused
        assert stranger.locator("#report-counts, #not-reached").count() == 0
        shot(stranger, "other-teacher-bulletin-report-refused")
    finally:
        context.close()
