"""Settings' language picker: a guardian whose records say Arabic is told so, chooses
Swedish, and the app speaks Swedish at once and after a reload (saved on the server with
``PUT /me/language``); offline the picker is disabled with a sentence why. The view passes
the accessibility audit (``audit.js``) in both states."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from tests.browser.conftest import Server, log_in, shot
from tests.browser.test_accessibility import AUDIT

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _guardian_speaking_arabic(server: Server) -> str:
    """A guardian's account whose roster language is now Arabic (``ar``)."""
    with sqlite3.connect(server.database, timeout=30) as db:
        row = db.execute(
            "SELECT a.username, p.id FROM account a JOIN person p ON p.id = a.person "
            "JOIN guardianship g ON g.guardian = p.id "
            "WHERE a.username LIKE 'u%' ORDER BY p.id DESC LIMIT 1"
        ).fetchone()
        assert row, "no guardian account in the demo city"
        db.execute("UPDATE person SET language = 'ar', ui_language = NULL WHERE id = ?", (row[1],))
    return str(row[0])


def test_a_guardian_whose_records_say_arabic_chooses_swedish(
    fx_phone: Any, fx_server: Server
) -> None:
    page = fx_phone.new_page()
    log_in(page, _guardian_speaking_arabic(fx_server))
    page.goto("/#/settings")
    page.locator("#language select[name=language]").wait_for()
    # Until they choose: English, and why.
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("#roster-language").inner_text() == (
        "Your school's records say Arabic; Reppu is available in Finnish, Swedish and English."
    )
    assert page.evaluate(AUDIT) == []

    page.locator("#language select[name=language]").select_option("sv")
    page.locator("#language button[type=submit]").click()
    page.wait_for_function("document.documentElement.lang === 'sv'")
    # Settings is under "More" in the phone's tab bar (tests/browser/test_layout.py).
    assert page.locator("#nav-more").inner_text() == "Mer"
    assert page.locator("#view-title").inner_text() == "Inställningar"
    assert (
        page.locator("#roster-language")
        .inner_text()
        .startswith("Enligt skolans uppgifter är ditt språk arabiska.")
    )
    shot(page, "settings-language-sv")
    page.reload()
    page.locator("#language select[name=language]").wait_for()
    assert page.evaluate("document.documentElement.lang") == "sv"
    assert page.locator("#language select[name=language]").input_value() == "sv"

    fx_phone.set_offline(True)
    page.goto("/#/today")
    page.goto("/#/settings")
    page.locator("#language select[name=language][disabled]").wait_for()
    assert page.locator("#language-state").inner_text() == (
        "Språket kan bytas bara när du är uppkopplad."
    )
    assert page.evaluate(AUDIT) == []
    fx_phone.set_offline(False)
