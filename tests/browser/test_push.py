"""The service worker's push handler: a Web Push delivered through the DevTools protocol
(``ServiceWorker.deliverPushMessage``; headless Chromium cannot subscribe at a real push
service) shows its notification and makes the worker pull, with no page of the app open."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.browser.conftest import Server, log_in, shot, wait_for_worker

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STORED_BULLETINS = """async () => {
  const db = await new Promise((ok, no) => {
    const r = indexedDB.open('reppu');
    r.onsuccess = () => ok(r.result);
    r.onerror = () => no(r.error);
  });
  return await new Promise((ok, no) => {
    const r = db.transaction('records').objectStore('records').index('type').getAll('bulletin');
    r.onsuccess = () => { db.close(); ok(r.result.map(b => b.title)); };
    r.onerror = () => no(r.error);
  });
}"""

NOTIFICATIONS = """async () => {
  const registration = await navigator.serviceWorker.getRegistration('/');
  const shown = await registration.getNotifications();
  return shown.map(n => ({title: n.title, body: n.body, tag: n.tag}));
}"""


def _poll(page: Any, script: str, ready: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(script)
        if ready(value):
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s: {value}"
        time.sleep(0.2)


def test_push_shows_the_notification_and_pulls(fx_phone: Any, fx_server: Server) -> None:
    fx_phone.grant_permissions(["notifications"], origin=fx_server.base)
    page = fx_phone.new_page()
    log_in(page, "demo-pupil")
    wait_for_worker(page)
    page.locator("#main li.lesson").first.wait_for()

    # Leave the app for a file of its origin that runs none of its code: from here only the
    # service worker can pull.
    page.goto("/manifest.webmanifest")
    cdp = fx_phone.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(event["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + 10
    while not [r for r in registrations if not r["isDeleted"]]:
        assert time.monotonic() < deadline, "no service worker registration reported"
        page.wait_for_timeout(100)
    registration = next(r for r in registrations if not r["isDeleted"])
    assert registration["scopeURL"] == f"{fx_server.base}/"

    title = "Uimahalli suljettu huomenna"
    before = page.evaluate(STORED_BULLETINS)
    assert title not in before
    admin = fx_server.login("demo-admin")
    city = next(
        int(p.split(":")[1])
        for p in fx_server.call(admin["token"], "GET", "/me")["partitions"]
        if p.startswith("municipality:")
    )
    results = fx_server.push(
        admin["token"],
        "browser-admin-push",
        [
            {
                "name": "bulletin.send",
                "args": {
                    "audience": "municipality",
                    "audience_id": city,
                    "title": title,
                    "body": "Uintitunnit korvataan liikuntasalissa.",
                    "roles": ["pupils"],
                },
            }
        ],
    )
    assert results[0]["status"] == "applied", results

    # What the delivery worker would send (docs/notifications.md): pull, kind, id, texts.
    payload = {"pull": 1, "kind": "bulletin", "id": 1, "title": title, "body": "Uinti peruttu."}
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": fx_server.base,
            "registrationId": registration["registrationId"],
            "data": json.dumps(payload),
        },
    )
    shown = _poll(page, NOTIFICATIONS, lambda v: any(n["title"] == title for n in v))
    assert {"title": title, "body": "Uinti peruttu.", "tag": "bulletin:1"} in shown
    stored = _poll(page, STORED_BULLETINS, lambda v: title in v)
    assert title in stored

    # A payload shortened to ids only still shows something and pulls.
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": fx_server.base,
            "registrationId": registration["registrationId"],
            "data": json.dumps({"pull": 1, "kind": "message", "id": 7}),
        },
    )
    shown = _poll(page, NOTIFICATIONS, lambda v: any(n["tag"] == "message:7" for n in v))
    generic = next(n for n in shown if n["tag"] == "message:7")
    assert generic["title"].startswith("Reppu")  # in the pupil's language (fi)

    # The app, opened offline, shows what the worker pulled.
    fx_phone.set_offline(True)
    page.goto("/#/bulletins")
    page.get_by_text(title).wait_for()
    shot(page, "pupil-bulletins-after-push")
