"""The PWA's side of a provider's hand-off (docs/identity.md, "The web app"): a ``?handoff=``
the tab did not start is never redeemed, and signing another person in never throws away
changes still waiting in the outbox (login CSRF would otherwise sign a victim in as the
attacker and wipe their offline work)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import PASSWORD, Server, idb, log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _handoff_posts(page: Any) -> list[str]:
    posts: list[str] = []
    page.on(
        "request",
        lambda r: posts.append(r.url) if "/auth/oidc/handoff" in r.url else None,
    )
    return posts


def test_a_handoff_the_tab_did_not_start_is_not_redeemed(fx_phone: Any, fx_server: Server) -> None:
    page = fx_phone.new_page()
    posts = _handoff_posts(page)
    # Nobody signed in, and no verifier of this tab's: the code is dropped unused.
    page.goto("/?handoff=an-attackers-code")
    page.locator("input[name=username]").wait_for()
    page.wait_for_function("!location.search.includes('handoff')")
    # Signed in: a link with somebody's hand-off changes nothing either.
    log_in(page, "demo-pupil")
    page.goto("/?handoff=an-attackers-code")
    page.wait_for_function("window.reppu && window.reppu.state.me !== null")
    page.wait_for_function("!location.search.includes('handoff')")
    assert (
        page.evaluate("window.reppu.state.me.person.id")
        == fx_server.call(fx_server.login("demo-pupil")["token"], "GET", "/me")["person"]["id"]
    )
    assert posts == []


def test_another_person_may_not_sign_in_over_unsent_changes(
    fx_phone: Any, fx_server: Server
) -> None:
    page = fx_phone.new_page()
    log_in(page, "demo-pupil")
    # The token is gone (revoked, say) while a change waits to be sent.
    idb(page, "await db.setMeta('token', null);")
    page.evaluate(
        "async () => { const s = await import('/js/sync.js');"
        " await s.queue('note.test', { text: 'written offline' }); }"
    )
    assert idb(page, "return (await db.outbox()).length;") == 1
    page.reload()
    page.locator("input[name=username]").fill("demo-teacher")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_function("document.getElementById('login-error').textContent")
    shot(page, "signin-outbox-waiting")
    assert "demo-teacher" not in (page.evaluate("JSON.stringify(window.reppu.state.me)") or "")
    assert idb(page, "return (await db.outbox()).length;") == 1
    assert not idb(page, "return await db.getMeta('token');")
