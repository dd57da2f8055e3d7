"""axe-core on every view of the web app, for each kind of person who uses it (issue 18).

``tests/browser/audit.js`` checks the basics on its own (contrast, names, target sizes); this
runs Deque's axe-core (``scripts/axe`` installs it, pinned, into ``var/axe``) with its default
rules on every view a guardian, a pupil, a teacher and a principal can reach from the menu,
and on the views one level down (a thread, a bulletin, a form, a roll call, a new message),
in Finnish. A view with any violation fails, named with the rule and the elements.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Server, log_in, wait_for_worker

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE = Path(__file__).resolve().parents[2] / "var" / "axe" / "node_modules" / "axe-core"
RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ['violations'] });
  return result.violations.map((v) =>
    `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}"""

# The menu's views, and the ones a first link on a list view leads to ("#main a[href^=...]").
VIEWS = {
    "demo-guardian": [
        "today",
        "week",
        "messages",
        "messages/new",
        "bulletins",
        "absences",
        "forms",
        "settings",
        "more",
    ],
    "demo-guardian-info": ["absences", "forms"],
    "demo-pupil": ["today", "week", "messages", "bulletins", "settings", "more"],
    "demo-teacher": [
        "today",
        "messages",
        "bulletins",
        "bulletins/new",
        "forms",
        "forms/new",
        "absences",
        "settings",
        "more",
    ],
    "demo-principal": ["today", "bulletins", "absences", "forms", "settings"],
}
ONE_LEVEL_DOWN = {
    "messages": "#/messages/",
    "bulletins": "#/bulletins/",
    "forms": "#/forms/",
    "today": "#/roll/",
    "absences": "#/absences/",
}


def _axe_source() -> str:
    script = AXE / "axe.min.js"
    if not script.exists():
        message = "no axe-core: scripts/axe installs it into var/axe"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: this test must run)")
        pytest.skip(message)
    return script.read_text()


def _violations(page: Any, source: str) -> list[str]:
    page.locator("#main h1").first.wait_for()
    page.wait_for_timeout(300)  # the view's last redraw (a sync's answer) settles
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=source)
    found: list[str] = page.evaluate(RUN_AXE)
    return found


@pytest.mark.parametrize("username", sorted(VIEWS))
def test_every_view_has_no_axe_violations(fx_phone: Any, fx_server: Server, username: str) -> None:
    source = _axe_source()
    page = fx_phone.new_page()
    log_in(page, username)
    wait_for_worker(page)
    failures: dict[str, list[str]] = {}
    seen = 0
    for view in VIEWS[username]:
        page.goto(f"/#/{view}")
        if found := _violations(page, source):
            failures[view] = found
        seen += 1
        prefix = ONE_LEVEL_DOWN.get(view)
        link = page.locator(f"#main a[href^='{prefix}']").first if prefix else None
        if link is not None and link.count():
            href = link.get_attribute("href")
            page.goto(f"/{href}")
            if found := _violations(page, source):
                failures[str(href)] = found
            seen += 1
    assert seen >= len(VIEWS[username])
    assert failures == {}


def test_axe_finds_what_it_looks_for(fx_phone: Any, fx_server: Server) -> None:
    # Without this, an axe that never ran (or a rule set that checks nothing) would pass.
    source = _axe_source()
    page = fx_phone.new_page()
    log_in(page, "demo-guardian")
    page.goto("/#/settings")
    page.locator("#main h1").first.wait_for()
    page.wait_for_timeout(500)  # drawn, so what is added below stays
    page.evaluate(
        """() => document.getElementById('main').append(
          Object.assign(document.createElement('img'), {src: '/icons/icon-192.png'}),
          Object.assign(document.createElement('input'), {type: 'text'}))"""
    )
    found = " ".join(_violations(page, source))
    assert "image-alt" in found
    assert "label" in found
