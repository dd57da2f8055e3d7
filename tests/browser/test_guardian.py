"""A guardian with two children (in two schools): switching between them, and never seeing
another family's data; then messages, bulletins with read receipts, an absence report and a
form filled, submitted and signed, all through the app."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from clients.python import day_timetable
from tests.browser.conftest import (
    Server,
    idb,
    log_in,
    reference_store,
    shot,
    wait_for_worker,
    wait_until,
)
from tests.browser.test_family import force

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RECORD_KEYS = """
  const database = await db.openDb();
  const all = await new Promise((ok, no) => {
    const r = database.transaction('records').objectStore('records').getAll();
    r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error);
  });
  return all;
"""


def _shown(page: Any) -> set[int]:
    ids = page.locator("#main li.lesson").evaluate_all(
        "i => i.map(li => Number(li.dataset.lesson))"
    )
    return set(ids)


def _week(server: Server) -> list[dt.date]:
    monday = server.today - dt.timedelta(days=server.today.isoweekday() - 1)
    return [monday + dt.timedelta(days=n) for n in range(5)]


def test_guardian_switches_children_and_sees_only_their_own_family(
    fx_phone: Any, fx_server: Server
) -> None:
    login = fx_server.login("demo-guardian")
    me = fx_server.call(login["token"], "GET", "/me")
    children = me["children"]
    assert len(children) == 2
    store = reference_store(fx_server, login["token"])

    page = fx_phone.new_page()
    log_in(page, "demo-guardian")
    wait_for_worker(page)
    page.goto("/#/week")
    switcher = page.locator("#main .switcher button")
    switcher.first.wait_for()
    assert switcher.count() == 2

    seen: dict[int, set[int]] = {}
    for child in children:
        pupil = child["person"]
        page.locator(f"#child-{pupil['id']}").click()
        page.locator(f"#child-{pupil['id']}[aria-pressed='true']").wait_for()
        page.locator("#main li.lesson").first.wait_for()
        assert pupil["given_name"] in page.locator("#whose").inner_text()
        expected = {
            s.lesson_id
            for day in _week(fx_server)
            for s in day_timetable(store, day, child["group_ids"])
        }
        assert expected
        assert _shown(page) == expected
        seen[pupil["id"]] = expected
        shot(page, f"guardian-week-child-{len(seen)}")
    first, second = seen.values()
    assert not first & second  # one child's lessons never appear under the other

    # The device holds exactly what the server lets this guardian read, nothing more.
    held = idb(page, "return await db.heldPartitions();")
    assert sorted(held) == sorted(me["partitions"])
    family = {c["person"]["id"] for c in children}
    people = [p for p in held if p.startswith(("person:", "inbox:"))]
    assert {int(p.split(":")[1]) for p in people} <= family | {me["person"]["id"]}
    records = idb(page, RECORD_KEYS)
    assert {(r["type"], r["id"]) for r in records} == set(store.records())
    assert all(r["pupil_id"] in family for r in records if "pupil_id" in r)
    rosters = [r for r in records if r["type"] == "roster"]
    assert rosters == []  # a class list is for its teachers only


def _arrange_news(server: Server, guardian: dict[str, Any]) -> dict[str, Any]:
    """A city bulletin, a teacher's message to the guardian and a form about child A."""
    child = guardian["children"][0]
    admin = server.login("demo-admin")
    city = next(
        int(p.split(":")[1])
        for p in server.call(admin["token"], "GET", "/me")["partitions"]
        if p.startswith("municipality:")
    )
    applied = server.push(
        admin["token"],
        "browser-admin-news",
        [
            {
                "name": "bulletin.send",
                "args": {
                    "audience": "municipality",
                    "audience_id": city,
                    "title": "Koulut alkavat tunnin myöhemmin",
                    "body": "Lumimyräkän vuoksi koulut alkavat huomenna klo 9.15.",
                    "roles": ["guardians"],
                },
            }
        ],
    )
    assert applied[0]["status"] == "applied", applied
    definition = server.call(
        admin["token"],
        "POST",
        "/forms/definitions",
        {
            "organisation_id": city,
            "definition": {
                "key": "retkilupa",
                "languages": ["fi", "sv", "en"],
                "title": {"fi": "Retkilupa", "sv": "Utflyktslov", "en": "Trip permission"},
                "signing": "any_custodian",
                "fields": [
                    {
                        "id": "lunch",
                        "kind": "single_choice",
                        "required": True,
                        "label": {"fi": "Eväs", "sv": "Matsäck", "en": "Packed lunch"},
                        "options": [
                            {"id": "meat", "label": {"fi": "Liha", "sv": "Kött", "en": "Meat"}},
                            {
                                "id": "veg",
                                "label": {"fi": "Kasvis", "sv": "Vegetarisk", "en": "Veg"},
                            },
                        ],
                    },
                    {
                        "id": "photos",
                        "kind": "consent",
                        "required": True,
                        "label": {"fi": "Saa kuvata", "sv": "Får fotograferas", "en": "Photos"},
                    },
                ],
            },
        },
    )
    teacher = server.login("demo-teacher")
    teacher_me = server.call(teacher["token"], "GET", "/me")
    taught = {
        int(p.split(":")[1]) for p in teacher_me["partitions"] if p.startswith("group-staff:")
    }
    group = next(g for g in child["group_ids"] if g in taught)
    applied = server.push(
        teacher["token"],
        "browser-teacher-news",
        [
            {
                "name": "message.send",
                "args": {
                    "to": [guardian["person"]["id"]],
                    "subject": "Retki perjantaina",
                    "body": "Hei! Luokka lähtee perjantaina retkelle. Muistathan täyttää luvan.",
                },
            },
            {
                "name": "form.request",
                "args": {
                    "definition_id": definition["id"],
                    "group_id": group,
                    "due_on": (server.today + dt.timedelta(days=7)).isoformat(),
                    "pupil_ids": [child["person"]["id"]],
                },
            },
        ],
    )
    assert [r["status"] for r in applied] == ["applied", "applied"], applied
    return {"child": child, "definition": definition}


def test_guardian_reads_replies_reports_and_signs(fx_phone: Any, fx_server: Server) -> None:
    login = fx_server.login("demo-guardian")
    guardian = fx_server.call(login["token"], "GET", "/me")
    arranged = _arrange_news(fx_server, guardian)
    child = arranged["child"]

    page = fx_phone.new_page()
    log_in(page, "demo-guardian")
    wait_for_worker(page)
    page.locator(f"#child-{child['person']['id']}").click()
    page.locator("#main li.lesson").first.wait_for()
    shot(page, "guardian-today")

    # A bulletin: unread, opened (a read receipt), then read on every device.
    page.goto("/#/bulletins")
    item = page.locator("#main li.item[data-bulletin]").first
    item.wait_for()
    assert "is-unread" in (item.get_attribute("class") or "")
    shot(page, "guardian-bulletins")
    item.locator("a").click()
    page.locator("#main article h1").wait_for()
    page.wait_for_function("document.getElementById('status').dataset.waiting === '0'")
    wait_until(
        page, "return (await db.recordsOf('receipt')).some(r => r.item_type === 'bulletin');"
    )

    # The teacher's message: opened (a receipt) and answered.
    page.goto("/#/messages")
    thread = page.locator("#main li.item a").first
    thread.wait_for()
    thread.click()
    page.locator("#main ol.messages li").first.wait_for()
    assert "retkelle" in page.locator("#main ol.messages").inner_text()
    page.locator("#main textarea[name=body]").fill("Kiitos, täytän luvan tänään.")
    page.locator("#main form button[type=submit]").click()
    wait_until(
        page, "return (await db.recordsOf('message')).some(m => m.body.startsWith('Kiitos'));"
    )
    page.locator("#main ol.messages li.mine:not(.is-pending)").last.wait_for()
    receipts = wait_until(
        page, "const r = await db.recordsOf('receipt'); return r.length === 2 && r;"
    )
    assert {r["item_type"] for r in receipts} == {"bulletin", "message"}
    shot(page, "guardian-thread")

    # An absence report for the child, today.
    page.goto("/#/absences")
    form = page.locator("#absence-form")
    form.wait_for()
    form.locator("select[name=reason]").select_option("illness")
    form.locator("textarea[name=note]").fill("Kuumetta")
    form.locator("button[type=submit]").click()
    wait_until(page, "return (await db.recordsOf('absence_notice')).length > 0;")
    notices = idb(page, "return await db.recordsOf('absence_notice');")
    assert [(n["pupil_id"], n["kind"], n["reason"]) for n in notices] == [
        (child["person"]["id"], "report", "illness")
    ]
    shot(page, "guardian-absences")

    # A report that starts yesterday is refused by the server (the form itself would not send
    # it: queued as a phone whose date was wrong would); the app says so, per change.
    yesterday = (fx_server.today - dt.timedelta(days=1)).isoformat()
    force(
        page, "absence.report", {"from_date": yesterday, "to_date": yesterday, "reason": "illness"}
    )
    rejected = page.locator("#rejected li.rejected[data-code='mutation.invalid_args']")
    rejected.wait_for()
    assert not page.locator("#rejected").is_hidden()
    shot(page, "guardian-rejected-change")
    rejected.locator("button").click()
    page.locator("#rejected").wait_for(state="hidden")

    # The form: filled, submitted, then signed.
    page.goto("/#/forms")
    page.locator("#main li.item a").first.click()
    fill = page.locator("#form-fill")
    fill.wait_for()
    fill.locator("input[name=q-lunch][value=veg]").check()
    fill.locator("input[name=q-photos][value=true]").check()
    fill.locator(".actions button:not(.secondary)").click()
    wait_until(
        page, "return (await db.recordsOf('form_response')).some(r => r.status === 'submitted');"
    )
    page.goto("/#/forms")
    page.locator("#main li.item a").first.click()
    page.locator("#sign").click()
    wait_until(
        page, "return (await db.recordsOf('form_response')).some(r => r.status === 'complete');"
    )
    response = next(
        r
        for r in idb(page, "return await db.recordsOf('form_response');")
        if r["pupil_id"] == child["person"]["id"]
    )
    assert response["answers"] == {"lunch": "veg", "photos": True}
    assert response["signatures"][0]["signer_id"] == guardian["person"]["id"]
    page.goto("/#/forms")
    page.locator("#main li.item").first.wait_for()
    shot(page, "guardian-forms")

    # Nothing else was rejected along the way.
    outcomes = idb(page, "return await db.outcomes();")
    assert [o["name"] for o in outcomes if o["status"] == "rejected"] == ["absence.report"]
    assert [o["name"] for o in outcomes if o["status"] == "applied"] == [
        "bulletin.read",
        "message.read",
        "message.send",
        "absence.report",
        "form.submit",
        "form.sign",
    ]

    page.goto("/#/settings")
    page.locator("#prefs select[name=webpush]").wait_for()
    shot(page, "guardian-settings")
