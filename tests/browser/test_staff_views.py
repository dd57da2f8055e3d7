"""A class teacher's views in the app (issue 18): a guardian's leave request decided (through
the outbox: the server holds the decision once), a group's absences as the API gives them,
a form requested from a group; offline, the views that need the server say so."""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing
from typing import Any

import pytest

from tests.browser.conftest import Server, log_in, shot, wait_for_worker, wait_until
from tests.browser.test_accessibility import AUDIT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# A child of demo-guardian (custodial) and a teacher account of the child's home class.
CLASS_TEACHER = """
SELECT g.pupil, m."group", a.username FROM guardianship g
JOIN account ga ON ga.person = g.guardian AND ga.username = 'demo-guardian'
JOIN membership m ON m.person = g.pupil AND m.role = 'pupil'
  AND m.valid_from <= :d AND (m.valid_to IS NULL OR m.valid_to >= :d)
JOIN school_group sg ON sg.id = m."group" AND sg.kind = 'home_class'
JOIN membership t ON t."group" = m."group" AND t.role = 'teacher'
  AND t.valid_from <= :d AND (t.valid_to IS NULL OR t.valid_to >= :d)
JOIN account a ON a.person = t.person
WHERE g.kind = 'custodial' AND g.valid_from <= :d AND (g.valid_to IS NULL OR g.valid_to >= :d)
ORDER BY a.username = 'demo-teacher' DESC, a.username LIMIT 1
"""

WORDS = {
    "fi": ("Lomapyynnöt", "Myönnä", "Pyydä lomake", "vaatii verkkoyhteyden"),
    "sv": ("Ledighetsansökningar", "Bevilja", "Begär en blankett", "kräver nätverk"),
    "en": ("Leave requests", "Approve", "Request a form", "needs a network connection"),
}


def _arrange(server: Server) -> dict[str, Any]:
    today = server.today
    with closing(sqlite3.connect(server.database, timeout=30)) as db:
        row = db.execute(CLASS_TEACHER, {"d": today.isoformat()}).fetchall()[0]
    assert row, "no class teacher of demo-guardian's children has an account"
    pupil, group, teacher = int(row[0]), int(row[1]), str(row[2])
    guardian = server.login("demo-guardian")
    applied = server.push(
        guardian["token"],
        "browser-guardian-leave",
        [
            {
                "name": "leave.request",
                "args": {
                    "pupil_id": pupil,
                    "from_date": (today + dt.timedelta(days=1)).isoformat(),
                    "to_date": (today + dt.timedelta(days=1)).isoformat(),
                    "reason": "family",
                    "note": "Mummon syntymäpäivät",
                },
            }
        ],
    )
    assert applied[0]["status"] == "applied", applied
    with closing(sqlite3.connect(server.database, timeout=30)) as db:
        (leave,) = db.execute(
            "SELECT max(id) FROM absence_notice WHERE pupil = ? AND kind = 'leave'", (pupil,)
        ).fetchall()[0]
    admin = server.login("demo-admin")
    city = next(
        int(p.split(":")[1])
        for p in server.call(admin["token"], "GET", "/me")["partitions"]
        if p.startswith("municipality:")
    )
    definition = server.call(
        admin["token"],
        "POST",
        "/forms/definitions",
        {
            "organisation_id": city,
            "definition": {
                "key": "valokuvaus",
                "languages": ["fi", "sv", "en"],
                "title": {"fi": "Valokuvaus", "sv": "Fotografering", "en": "School photos"},
                "signing": "any_custodian",
                "fields": [
                    {
                        "id": "ok",
                        "kind": "consent",
                        "required": True,
                        "label": {"fi": "Saa kuvata", "sv": "Får fotograferas", "en": "Photos"},
                    }
                ],
            },
        },
    )
    return {
        "pupil": pupil,
        "group": group,
        "teacher": teacher,
        "leave": int(leave),
        "definition": int(definition["id"]),
    }


def test_a_class_teacher_decides_leave_sees_absences_and_requests_a_form(
    fx_phone: Any, fx_server: Server
) -> None:
    arranged = _arrange(fx_server)
    leave, group = arranged["leave"], arranged["group"]
    token = fx_server.login(arranged["teacher"])["token"]
    fx_server.call(token, "PUT", "/me/language", {"language": "fi"})
    page = fx_phone.new_page()
    page.set_default_timeout(90_000)  # a shared machine: slow, not wrong
    log_in(page, arranged["teacher"])
    wait_for_worker(page)

    # Absences are under "More" in the teacher's tab bar.
    page.locator("#nav-more").click()
    page.locator("#more-list a[href='#/absences']").click()
    item = page.locator(f"#leave-requests li[data-leave='{leave}']")
    item.wait_for()
    assert "Mummon syntymäpäivät" in item.inner_text()
    assert page.evaluate(AUDIT) == [], "leave requests"
    shot(page, "teacher-leave-requests")
    assert page.locator(f"#leave-{leave}-approved").inner_text() == WORDS["fi"][1]
    page.locator(f"#leave-{leave}-approved").click()
    wait_until(page, "return (await db.outbox()).length === 0;", timeout=90)
    # The decision comes back with the notice: nothing left to decide on it.
    page.wait_for_function(f"!document.querySelector(\"li[data-leave='{leave}']\")")
    with closing(sqlite3.connect(fx_server.database, timeout=30)) as db:
        decisions = db.execute(
            "SELECT decision FROM leave_decision WHERE notice = ?", (leave,)
        ).fetchall()
    assert decisions == [("approved",)]

    # A group's absences, as the API gives them.
    page.locator(f"#absence-groups a[data-group='{group}']").click()
    page.locator("#group-absences-table").wait_for()
    expected = fx_server.call(token, "GET", f"/groups/{group}/absences")
    rows = page.locator("#group-absences-table tbody tr").evaluate_all(
        "rows => rows.map((r) => [Number(r.dataset.pupil),"
        " Number(r.querySelector('[data-col=unexplained]').textContent),"
        " Number(r.querySelector('[data-col=absent]').textContent),"
        " Number(r.querySelector('[data-col=late]').textContent)])"
    )
    assert sorted(map(tuple, rows)) == sorted(
        (p["pupil_id"], p["unexplained"], p["absent_lessons"], p["late"])
        for p in expected["pupils"]
    )
    assert page.evaluate(AUDIT) == [], "a group's absences"
    page.locator("#group-absences").scroll_into_view_if_needed()
    shot(page, "teacher-group-absences", top=False)

    # A form requested from the group, through the outbox.
    page.goto("/#/forms")
    page.locator("#request-form-link").click()
    form = page.locator("#request-form")
    form.wait_for()
    assert page.evaluate(AUDIT) == [], "request a form"
    form.locator("select[name=definition]").select_option(str(arranged["definition"]))
    form.locator("select[name=group]").select_option(str(group))
    shot(page, "teacher-request-form")
    form.locator("button[type=submit]").click()
    page.locator("#form-requested").wait_for()
    wait_until(page, "return (await db.outbox()).length === 0;", timeout=90)
    with closing(sqlite3.connect(fx_server.database, timeout=30)) as db:
        sent = db.execute(
            'SELECT count(*) FROM form_request WHERE definition = ? AND "group" = ?',
            (arranged["definition"], group),
        ).fetchall()[0]
    assert sent == (1,)
    rejected = [o for o in page.evaluate("window.reppu.db.outcomes()") if o["status"] == "rejected"]
    assert rejected == []

    # Offline: what needs the server says so; the synced leave list is still drawn.
    fx_phone.set_offline(True)
    page.goto(f"/#/absences/{group}")
    page.locator("#group-absences-offline").wait_for()
    assert WORDS["fi"][3] in page.locator("#group-absences-offline").inner_text()
    assert page.locator("#leave-requests").count() == 1
    assert page.evaluate(AUDIT) == [], "a group's absences, offline"
    page.goto("/#/forms/new")
    page.locator("#request-form-offline").wait_for()
    fx_phone.set_offline(False)

    # The words in each language.
    for lang, (leave_title, _, request, offline) in WORDS.items():
        fx_server.call(token, "PUT", "/me/language", {"language": lang})
        page.goto("/#/absences")
        page.reload()
        page.wait_for_function(f"document.documentElement.lang === {lang!r}")
        # The first drawing is in the language kept on the device; then /me's.
        page.wait_for_function(
            "(document.getElementById('leave-title') || {}).textContent === " + repr(leave_title)
        )
        page.goto("/#/forms")
        assert page.locator("#request-form-link").inner_text() == request
        fx_phone.set_offline(True)
        page.goto("/#/forms/new")
        assert offline in page.locator("#request-form-offline").inner_text()
        fx_phone.set_offline(False)
