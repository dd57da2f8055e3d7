"""A pupil's timetable in a real browser: online, offline after a reload, and a lesson
cancelled on the server while the phone was offline shown once it is back online."""

from __future__ import annotations

from typing import Any

import pytest

from clients.python import day_timetable
from tests.browser.conftest import Server, idb, log_in, reference_store, shot, wait_for_worker

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _shown_lessons(page: Any) -> list[int]:
    ids: list[int] = page.locator("#main li.lesson").evaluate_all(
        "items => items.map(li => Number(li.dataset.lesson))"
    )
    return ids


def test_pupil_sees_today_online_offline_and_a_cancellation(
    fx_phone: Any, fx_server: Server
) -> None:
    page = fx_phone.new_page()
    log_in(page, "demo-pupil")
    wait_for_worker(page)

    # What the server says the pupil has today, through the Python reference client.
    login = fx_server.login("demo-pupil")
    me = fx_server.call(login["token"], "GET", "/me")
    groups = [int(p.split(":")[1]) for p in me["partitions"] if p.startswith("group:")]
    store = reference_store(fx_server, login["token"])
    expected = [s.lesson_id for s in day_timetable(store, fx_server.today, groups)]
    assert expected, "the demo pupil has lessons on a school day"

    page.locator("#main li.lesson").first.wait_for()
    assert _shown_lessons(page) == expected
    # The app's store adds up like the server's: every partition's count and checksum.
    held = idb(page, "return await db.heldPartitions();")
    assert sorted(held) == sorted(me["partitions"])
    tallies = page.evaluate(
        """async (names) => {
          const sync = await import('/js/sync.js');
          const out = {};
          for (const name of names) out[name] = await sync.partitionTally(name);
          return out;
        }""",
        held,
    )
    for name in held:
        mine = store.tally(name)
        assert tallies[name] == {"count": mine.count, "checksum": mine.hex}, name
    assert sum(t["count"] for t in tallies.values()) > len(expected)
    shot(page, "pupil-today")

    # Offline, a reload still shows the timetable: the shell from the worker's cache, the
    # lessons from IndexedDB.
    fx_phone.set_offline(True)
    page.reload()
    page.locator("#main li.lesson").first.wait_for()
    assert _shown_lessons(page) == expected
    page.wait_for_function("document.getElementById('status').dataset.online === 'false'")
    shot(page, "pupil-today-offline")

    # The city's admin cancels the pupil's second lesson of the day while the phone is
    # offline; nothing shows it yet.
    target = expected[min(1, len(expected) - 1)]
    admin = fx_server.login("demo-admin")
    results = fx_server.push(
        admin["token"],
        "browser-admin-1",
        [
            {
                "name": "lesson.change",
                "args": {
                    "lesson_id": target,
                    "on_date": fx_server.today.isoformat(),
                    "cancelled": True,
                    "note": "Opettaja sairaana",
                },
            }
        ],
    )
    assert results[0]["status"] == "applied", results
    page.wait_for_timeout(1000)
    assert page.locator(f"#main li.lesson[data-lesson='{target}'].is-cancelled").count() == 0

    # Back online: the app pulls (the online event, then the live stream) and marks it.
    fx_phone.set_offline(False)
    cancelled = page.locator(f"#main li.lesson[data-lesson='{target}'].is-cancelled")
    cancelled.wait_for()
    assert cancelled.locator(".badge.cancelled").count() == 1
    assert "Opettaja sairaana" in cancelled.inner_text()
    others = [i for i in expected if i != target]
    for lesson_id in others:
        assert page.locator(f"#main li.lesson[data-lesson='{lesson_id}'].is-cancelled").count() == 0
    shot(page, "pupil-today-cancelled")

    # The week view, from the same store.
    page.goto("/#/week")
    page.locator("#main section.day").first.wait_for()
    assert page.locator("#main section.day").count() == 5
    shot(page, "pupil-week")
