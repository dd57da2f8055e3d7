"""A pupil imported from a OneRoster file signs in through an MPASSid-like provider (npm's
oidc-provider) in Debian's Chromium: the login screen's button, the provider, back with a
one-time hand-off, the first sync; offline, a reload still shows their timetable
(``docs/identity.md``, ``docs/oneroster.md``).

The server's database is made only with the commands of the README: ``reppu migrate``,
``reppu demo`` and ``reppu import oneroster`` of a copy of ``tests/fixtures/oneroster/bulk``
in which Aino's ``metadata.fi.oppijanumero`` is the learner number the provider's account
claims. Nothing links the number by hand. OneRoster carries no timetable, so the test's one
arrangement is a few weekly lessons for Aino's classes, written through the one write path
(``server/sync_store.write_records``) by a small subprocess before the server starts."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients.python import day_timetable
from tests.browser.conftest import (
    ARTEFACTS,
    FAKETIME_LIBRARY,
    HELSINKI,
    PHONE,
    REPPU,
    ROOT,
    Server,
    _free_port,
    _missing,
    real_now,
    reference_store,
    school_day_morning,
    shot,
    wait_for_worker,
)
from tests.server.signin.oidc_provider import running_oidc_provider

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LEARNER_CLAIM = "urn:mpass.id:learnerId"
NUMBER = "1.2.246.562.24.12345678901"
SECRET = "the browser test's client secret"

ROSTER = ROOT / "tests" / "fixtures" / "oneroster" / "bulk"
ROSTER_SOURCE = "primus-vantaa"
"""The fixture's ``source.systemCode``, under which its sourcedIds are kept."""
PUPIL = "u-aino"
"""The pupil who signs in: in the home class 5A and the teaching group MA5."""

# The arrangement: weekly lessons for Aino's two groups (and one for 5B, which is not hers),
# written as any change to synced data is, inside one write transaction with write_records.
# It prints the imported pupil's person id and the ids of the lessons of the school day.
ARRANGE_LESSONS = """
import asyncio, datetime as dt, json, sys

from server.db.engine import open_database, write_transaction
from server.db.tables import Lesson
from server.settings import load_settings
from server.sync_store import write_records
from server.timetable import lesson_writes

source, pupil, day = sys.argv[1], sys.argv[2], dt.date.fromisoformat(sys.argv[3])
other_day = 1 if day.isoweekday() != 1 else 2


async def main() -> None:
    async with open_database(load_settings()) as engine:
        refs = {
            (r["kind"], r["source_id"]): r["local_id"]
            for r in await Lesson.raw(
                "SELECT kind, source_id, local_id FROM external_ref WHERE source = {}", source
            )
        }
        teacher = refs[("user", "u-tiina")]
        plan = [
            ("k-5a", "Äidinkieli", day.isoweekday(), dt.time(8, 15), dt.time(9, 0), True),
            ("k-ma5", "Matematiikka", day.isoweekday(), dt.time(9, 15), dt.time(10, 0), True),
            ("k-5a", "Ympäristöoppi", day.isoweekday(), dt.time(10, 15), dt.time(11, 0), True),
            ("k-5a", "Musiikki", other_day, dt.time(8, 15), dt.time(9, 0), False),
            ("k-5b", "Kuvataide", day.isoweekday(), dt.time(8, 15), dt.time(9, 0), False),
        ]
        todays = []
        async with write_transaction(engine):
            ids = []
            for group, subject, weekday, starts, ends, hers_today in plan:
                lesson = Lesson(
                    group=refs[("class", group)], subject=subject, teacher=teacher,
                    room="B12", weekday=weekday, starts_at=starts, ends_at=ends,
                    valid_from=day - dt.timedelta(days=28), valid_to=None,
                )
                await lesson.save()
                ids.append(int(lesson.id))
                if hers_today:
                    todays.append(int(lesson.id))
            await write_records(engine, await lesson_writes(ids))
        print(json.dumps({"person": refs[("user", pupil)], "lessons": todays}))


asyncio.run(main())
"""


def _roster_with_learner_number(folder: Path, number: str) -> Path:
    """A copy of the bulk fixture in which the pupil's ``metadata.fi.oppijanumero`` is
    ``number``: the import, not the test, is what links the provider's claim to a person."""
    shutil.copytree(ROSTER, folder)
    users = folder / "users.csv"
    with users.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    (pupil,) = (row for row in rows if row["sourcedId"] == PUPIL)
    pupil["metadata.fi.oppijanumero"] = number
    with users.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return folder


@dataclass
class SigninServer(Server):
    pupil_id: int = 0
    """The person the import made of the pupil's line."""
    lessons_today: list[int] = field(default_factory=list)
    """The arranged lessons of the pupil's groups on the school day."""


def _reppu(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*REPPU, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
    return done.stdout


@pytest.fixture(scope="module")
def fx_signin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SigninServer]:
    """``reppu serve`` over a demo city and an imported OneRoster set, with an MPASSid-like
    provider configured, both on a school-day morning."""
    if not Path(FAKETIME_LIBRARY).exists():
        _missing(f"libfaketime ({FAKETIME_LIBRARY}, Debian's faketime package)")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    fake_now = school_day_morning()
    offset = int((fake_now - real_now()).total_seconds())
    provider_config = {
        "clients": [
            {
                "client_id": "reppu",
                "client_secret": SECRET,
                "redirect_uris": [f"{base}/auth/oidc/mpassid/callback"],
                "post_logout_redirect_uris": [f"{base}/"],
            }
        ],
        "scopes": {"mpass": [LEARNER_CLAIM]},
        "accounts": {"pupil": {LEARNER_CLAIM: NUMBER}},
        "defaultAccount": "pupil",
    }
    with running_oidc_provider(provider_config, offset_seconds=offset) as issuer:
        data_dir = tmp_path_factory.mktemp("reppu-signin")
        providers = {
            "mpassid": {
                "title": "MPASSid",
                "issuer": issuer,
                "client_id": "reppu",
                "client_secret": SECRET,
                "scopes": ["openid", "mpass"],
                "match": [{"claim": LEARNER_CLAIM, "scheme": "oppijanumero"}],
            }
        }
        env = {
            **os.environ,
            "REPPU_DATA_DIR": str(data_dir),
            "REPPU_PORT": str(port),
            "REPPU_WORKERS": "1",
            "REPPU_ACCESS_CACHE_SECONDS": "0",
            "REPPU_OIDC_PROVIDERS": json.dumps(providers),
            "REPPU_PUBLIC_URL": base,
            "LD_PRELOAD": FAKETIME_LIBRARY,
            "FAKETIME": f"{offset:+d}",
            "DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_DONT_RESET": "1",
        }
        env.pop("REPPU_DATABASE_URL", None)
        _reppu(env, "migrate")
        _reppu(env, "demo", "--pupils", "500")
        roster = _roster_with_learner_number(data_dir / "oneroster", NUMBER)
        imported = _reppu(env, "import", "oneroster", str(roster))
        assert f"OneRoster import from {ROSTER_SOURCE!r}" in imported, imported
        day = fake_now.astimezone(HELSINKI).date()
        done = subprocess.run(
            [sys.executable, "-c", ARRANGE_LESSONS, ROSTER_SOURCE, PUPIL, day.isoformat()],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        arranged = json.loads(done.stdout.strip().splitlines()[-1])
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        log = (ARTEFACTS / f"signin-server-{port}.log").open("w")
        server = subprocess.Popen(
            [*REPPU, "serve"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None, "reppu serve exited early"
                assert time.monotonic() < deadline, "reppu serve did not answer within 60 s"
                time.sleep(0.2)
            yield SigninServer(
                base,
                data_dir,
                fake_now,
                dt.timedelta(seconds=offset),
                pupil_id=int(arranged["person"]),
                lessons_today=[int(i) for i in arranged["lessons"]],
            )
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()


def _shown_lessons(page: Any) -> list[int]:
    ids: list[int] = page.locator("#main li.lesson").evaluate_all(
        "items => items.map(li => Number(li.dataset.lesson))"
    )
    return ids


def test_a_pupil_signs_in_through_the_provider_syncs_and_keeps_the_timetable_offline(
    fx_browser: Any, fx_signin_server: SigninServer
) -> None:
    server = fx_signin_server
    context = fx_browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        locale="fi-FI",
        timezone_id="Europe/Helsinki",
        base_url=server.base,
    )
    context.clock.install(time=server.now())
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        seen: list[str] = []
        page.on("response", lambda r: seen.append(f"{r.status} {r.request.method} {r.url}"))
        page.goto("/")
        button = page.locator("a.provider[data-provider=mpassid]")
        button.wait_for()
        assert button.inner_text() == "Kirjaudu: MPASSid"
        shot(page, "signin-login-screen")
        button.click(no_wait_after=True)
        # Through the provider and back: the hand-off is spent and leaves the address, or a
        # refusal comes back to the login screen. (The round trip is a handful of requests;
        # a loaded machine makes it slow, not wrong.)
        page.wait_for_function(
            "(window.reppu && window.reppu.state.me !== null)"
            " || document.getElementById('login-error')?.textContent",
            timeout=120_000,
        )
        refusal = page.locator("#login-error")
        if refusal.count():
            shot(page, "signin-refused")
            raise AssertionError(f"the sign-in was refused: {refusal.inner_text()}")
        assert any(r.startswith("200 POST") and "/auth/oidc/handoff" in r for r in seen), seen
        assert "handoff" not in page.url
        # The person signed in is the one the OneRoster import made of the pupil's line.
        me = page.evaluate("window.reppu.state.me")
        assert me["person"]["id"] == server.pupil_id
        assert (me["person"]["given_name"], me["person"]["family_name"]) == ("Aino", "Virtanen")
        assert page.evaluate("window.reppu.db.getMeta('me').then((me) => me.person.id)") == (
            server.pupil_id
        )
        wait_for_worker(page)

        # What the Python reference client computes for the same person, with the device's
        # own token (an imported pupil has no password to log in with).
        token = page.evaluate("window.reppu.db.getMeta('token')")
        answer = server.call(token, "GET", "/me")
        assert answer["person"]["id"] == server.pupil_id
        groups = [int(p.split(":")[1]) for p in answer["partitions"] if p.startswith("group:")]
        store = reference_store(server, token)
        expected = [s.lesson_id for s in day_timetable(store, server.today, groups)]
        assert expected, "the imported pupil has lessons on the school day"
        assert sorted(expected) == sorted(server.lessons_today)
        page.locator("#main li.lesson").first.wait_for()
        assert _shown_lessons(page) == expected
        shot(page, "signin-pupil-today")

        context.set_offline(True)
        page.reload()
        page.locator("#main li.lesson").first.wait_for()
        assert _shown_lessons(page) == expected
        page.wait_for_function("document.getElementById('status').dataset.online === 'false'")
        shot(page, "signin-pupil-today-offline")
    finally:
        context.close()
    # The access log of reppu serve kept no one-time secret.
    port = server.base.rsplit(":", 1)[1]
    logged = (ARTEFACTS / f"signin-server-{port}.log").read_text()
    assert "/auth/oidc/mpassid/callback?code=<redacted>&state=<redacted>" in logged
    assert not re.search(r"(code|state|handoff)=(?!<redacted>)", logged)
