"""The web app sends again what a restored server lost (docs/sync-protocol.md, "After a
restore"; docs/pwa.md). A teacher's roll-call marks are answered, the server is restored
from a backup made before them, and the app brings them back, each exactly once, by both
triggers: a first push answered ``mutation.out_of_order``, and a cursor refused with
``sync.bad_cursor``."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
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


def _marks(server: Server, lesson: int, day: str) -> list[tuple[int, int]]:
    """(mutation id, pupil) of every roll-call mark the server holds for the lesson."""
    # Closed at once: ``reppu restore`` refuses a database another connection has open.
    with closing(sqlite3.connect(server.database, timeout=30)) as db:
        rows = db.execute(
            "SELECT mutation_id, pupil FROM roll_mark WHERE lesson = ? AND on_date = ? "
            "ORDER BY mutation_id, pupil",
            (lesson, day),
        ).fetchall()
    return [(int(m), int(p)) for m, p in rows]


def _until_marks(
    server: Server, lesson: int, day: str, expected: list[tuple[int, int]], timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while (held := _marks(server, lesson, day)) != sorted(expected):
        assert time.monotonic() < deadline, (held, expected)
        time.sleep(0.2)


def _restore(server: Server, backup: Path) -> None:
    server.stop()
    done = server.reppu("restore", str(backup))
    assert done.returncode == 0, done.stderr[-3000:]
    server.start()


def _settled(page: Any) -> None:
    """Until the outbox is empty and every answered mutation applied."""
    page.wait_for_function(
        "document.getElementById('status').dataset.waiting === '0'", timeout=30_000
    )
    outcomes = idb(page, "return await db.outcomes();")
    assert {o["status"] for o in outcomes} == {"applied"}, outcomes


def test_the_app_sends_again_what_a_restore_lost_exactly_once(
    fx_phone: Any, fx_server: Server, tmp_path: Path
) -> None:
    page = fx_phone.new_page()
    log_in(page, "demo-teacher")
    wait_for_worker(page)
    roll_links = page.locator("#main li.lesson a[href^='#/roll/']")
    roll_links.first.wait_for()
    href = roll_links.first.get_attribute("href")
    assert href is not None
    _, _, lesson_text, day = href.split("/")
    lesson = int(lesson_text)
    page.goto(f"/{href}")
    rows = page.locator("#main ul.roll li.pupil")
    rows.first.wait_for()
    a, b, c = [int(p) for p in rows.evaluate_all("r => r.map(li => li.dataset.pupil)")][:3]

    def mark(pupil: int) -> None:
        page.locator(f"#mark-{pupil}-present").click()
        page.locator(f"#mark-{pupil}-present[aria-pressed='true']").wait_for()

    first_backup = tmp_path / "before-a.sqlite3"
    done = fx_server.reppu("backup", str(first_backup))
    assert done.returncode == 0, done.stderr[-3000:]
    mark(a)
    _until_marks(fx_server, lesson, day, [(1, a)])
    _settled(page)

    # The out-of-order trigger: the server loses mark 1; the app's next push (mark 2) comes
    # before any pull (pulls and the live stream are held back), so its first id is answered
    # mutation.out_of_order, and the app sends 1 again, then 2.
    fx_phone.route("**/sync/pull", lambda route: route.abort())
    fx_phone.route("**/sync/live", lambda route: route.abort())
    _restore(fx_server, first_backup)
    assert _marks(fx_server, lesson, day) == []
    mark(b)
    _until_marks(fx_server, lesson, day, [(1, a), (2, b)])
    _settled(page)

    # The pull that follows is refused (sync.bad_cursor: a new epoch); the app starts its
    # copy over and sends the kept ones again: replays, nothing applied twice.
    fx_phone.unroute("**/sync/pull")
    fx_phone.unroute("**/sync/live")
    page.evaluate("window.reppu.trySync()")
    page.wait_for_function("window.reppu.state.syncError === null && window.reppu.state.online")
    _settled(page)
    assert _marks(fx_server, lesson, day) == [(1, a), (2, b)]

    # The bad-cursor trigger: mark 3 is lost in a second restore while nothing waits in the
    # outbox; the app's next pull is refused and it sends 1, 2 (replays) and 3 (applied).
    second_backup = tmp_path / "before-c.sqlite3"
    done = fx_server.reppu("backup", str(second_backup))
    assert done.returncode == 0, done.stderr[-3000:]
    mark(c)
    _until_marks(fx_server, lesson, day, [(1, a), (2, b), (3, c)])
    _settled(page)
    _restore(fx_server, second_backup)
    assert _marks(fx_server, lesson, day) == [(1, a), (2, b)]
    page.reload()  # the app syncs as it starts (the live stream would, a little later)
    rows.first.wait_for()
    _until_marks(fx_server, lesson, day, [(1, a), (2, b), (3, c)])
    _settled(page)
    for pupil in (a, b, c):
        page.locator(f"#mark-{pupil}-present[aria-pressed='true']").wait_for()
    assert page.locator("#lost-changes").count() == 0
    shot(page, "teacher-roll-call-after-restore", top=False)


def test_a_gap_the_app_cannot_fill_goes_on_under_a_new_client_id_and_is_reported(
    fx_phone: Any, fx_server: Server, tmp_path: Path
) -> None:
    """The restored server lost a mutation the app no longer keeps (its outcomes gone, as
    past the 10,000 kept): the outbox is sent as a new installation's, and the person is
    told that earlier changes may need doing again."""
    page = fx_phone.new_page()
    log_in(page, "demo-teacher")
    wait_for_worker(page)
    roll_links = page.locator("#main li.lesson a[href^='#/roll/']")
    roll_links.first.wait_for()
    href = roll_links.first.get_attribute("href")
    assert href is not None
    _, _, lesson_text, day = href.split("/")
    lesson = int(lesson_text)
    page.goto(f"/{href}")
    rows = page.locator("#main ul.roll li.pupil")
    rows.first.wait_for()
    d, e = [int(p) for p in rows.evaluate_all("r => r.map(li => li.dataset.pupil)")][3:5]
    old_client = idb(page, "return await db.getMeta('client_id');")

    backup = tmp_path / "before-d.sqlite3"
    done = fx_server.reppu("backup", str(backup))
    assert done.returncode == 0, done.stderr[-3000:]
    before = _marks(fx_server, lesson, day)
    page.locator(f"#mark-{d}-absent").click()
    _until_marks(fx_server, lesson, day, [*before, (1, d)])
    _settled(page)
    # The app no longer keeps what it sent.
    idb(
        page,
        "const database = await db.openDb(); const tx = database.transaction('outcomes', "
        "'readwrite'); tx.objectStore('outcomes').clear(); await db.committed(tx);",
    )

    fx_phone.route("**/sync/pull", lambda route: route.abort())
    fx_phone.route("**/sync/live", lambda route: route.abort())
    _restore(fx_server, backup)
    page.locator(f"#mark-{e}-late").click()
    # Mark e was id 2; as the new installation's only mutation it is id 1.
    _until_marks(fx_server, lesson, day, [*before, (1, e)])
    _settled(page)
    assert idb(page, "return await db.getMeta('client_id');") != old_client
    assert idb(page, "return await db.getMeta('lost_before');") == 2
    page.locator("#lost-changes").wait_for()
    assert page.evaluate(AUDIT) == []
    shot(page, "teacher-lost-changes")
    page.locator("#lost-changes button").click()
    page.locator("#lost-changes").wait_for(state="detached")
    assert idb(page, "return await db.getMeta('lost_before');") is None
    fx_phone.unroute("**/sync/pull")
    fx_phone.unroute("**/sync/live")
