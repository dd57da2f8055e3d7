"""The families' views (issue 18): a guardian starts a conversation with a child's teacher
and reports an absence, offline, and each stays in its list as "waiting to send", then
"sent" (or "refused" with the reason, in the person's language); bulletins and messages say
which child and school they concern; a guardian with a right to information only sees why
they cannot report absences or sign, the controls disabled; a pupil gets "New message" only
once the school allows it. Each view passes the accessibility audit (``audit.js``)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

import pytest

from tests.browser.conftest import (
    Server,
    idb,
    log_in,
    reference_store,
    request_trip_form,
    shot,
    wait_for_worker,
    wait_until,
)
from tests.browser.test_accessibility import AUDIT

# Tap "Send" on the absence form, then, once the form is drawn anew (within 400 ms), tap the
# new form's "Send" too, as a quick second tap does. True if the second tap found a new form.
RETAP = """async () => {
  const first = document.querySelector('#absence-form');
  first.querySelector('button[type=submit]').click();
  const began = performance.now();
  while (document.querySelector('#absence-form') === first && performance.now() - began < 400) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const again = document.querySelector('#absence-form');
  if (again === first) return false;
  again.querySelector('button[type=submit]').click();
  return true;
}"""

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Queue a mutation for the child on screen as the app would, past the form's own checks (a
# phone whose date was wrong), and send it: what the server answers is then shown.
FORCE = """async ([name, args]) => {
  const sync = await import('/js/sync.js');
  await sync.queue(name, { pupil_id: window.reppu.state.childId, ...args });
  await window.reppu.trySync();
}"""


def force(page: Any, name: str, args: dict[str, Any]) -> None:
    page.evaluate(FORCE, [name, args])


WAITING = {"fi": "odottaa lähettämistä", "sv": "väntar på att skickas", "en": "waiting to send"}
FORBIDDEN_REPORT = {
    "fi": "Vain lapsen huoltajat voivat ilmoittaa poissaoloista.",
    "sv": "Bara barnets vårdnadshavare kan anmäla frånvaro.",
    "en": "Only the child's custodial guardians can report absences.",
}
INFO_ONLY = {
    "fi": "{name}: sinulla on tiedonsaantioikeus mutta ei huoltajuutta. Näet poissaolot, mutta"
    " vain huoltajat voivat ilmoittaa ja selvittää niitä.",
    "sv": "Du har rätt att få information om {name}, men inte vårdnad. Du ser frånvaron, men"
    " bara vårdnadshavarna kan anmäla och förklara den.",
    "en": "You have a right to information about {name}, not custody. You see the absences, but"
    " only the custodial guardians can report and explain them.",
}
INFO_ONLY_FORMS = {
    "fi": "{name}: sinulla on tiedonsaantioikeus mutta ei huoltajuutta. Näet lomakkeen, mutta"
    " vain huoltajat voivat täyttää ja allekirjoittaa sen.",
    "sv": "Du har rätt att få information om {name}, men inte vårdnad. Du ser blanketten, men"
    " bara vårdnadshavarna kan fylla i och underteckna den.",
    "en": "You have a right to information about {name}, not custody. You see the form, but"
    " only the custodial guardians can fill it in and sign it.",
}
CUSTODY_WORD = {"fi": "huolta", "sv": "vårdnad", "en": "custod"}
"""A stem every sentence about custody has (huoltaja, huoltajuus; vårdnadshavare; custodial)."""
REPORT_AHEAD = "Poissaolo ilmoitetaan etukäteen, tästä päivästä alkaen. Menneet päivät selvitetään."


def _waiting(page: Any, n: int) -> None:
    page.wait_for_function(
        f"document.getElementById('status').dataset.waiting === '{n}'", timeout=30_000
    )


def _synced(server: Server, token: str, groups: list[int]) -> tuple[dict[int, str], set[str]]:
    """The teachers (id: name) of ``groups`` as the reference client's synced lessons name
    them, and the names of those groups' schools."""
    store = reference_store(server, token)
    teachers = {
        r["teacher_id"]: r["teacher_name"]
        for r in store.records("lesson").values()
        if r["group_id"] in groups and r.get("teacher_id")
    }
    schools = {r["school_name"] for r in store.records("group").values() if r["id"] in groups}
    return teachers, schools


def _set_language(server: Server, username: str, language: str) -> None:
    with sqlite3.connect(server.database, timeout=30) as db:
        db.execute(
            "UPDATE person SET ui_language = ? WHERE id = "
            "(SELECT person FROM account WHERE username = ?)",
            (language, username),
        )


@pytest.fixture(scope="module")
def fx_info_child(fx_server: Server) -> dict[str, Any]:
    """demo-guardian-info's child without custody, with a form to sign waiting for them."""
    me = fx_server.call(fx_server.login("demo-guardian-info")["token"], "GET", "/me")
    child: dict[str, Any] = next(
        c for c in me["children"] if c["guardianship"] == "information_only"
    )
    request_trip_form(fx_server, child, "retkilupa-family", "browser-family-form")
    return child


def test_a_guardian_writes_and_reports_offline_and_sees_each_change_land(
    fx_phone: Any, fx_server: Server
) -> None:
    login = fx_server.login("demo-guardian")
    guardian = fx_server.call(login["token"], "GET", "/me")
    _, second = guardian["children"]
    teachers, schools = _synced(fx_server, login["token"], second["group_ids"])
    assert teachers
    (school,) = schools

    # A bulletin to the second child's group, to see which child and school it concerns.
    admin = fx_server.login("demo-admin")
    sent = fx_server.push(
        admin["token"],
        "browser-family-bulletin",
        [
            {
                "name": "bulletin.send",
                "args": {
                    "audience": "group",
                    "audience_id": second["group_ids"][0],
                    "title": "Luistelemaan torstaina",
                    "body": "Ottakaa luistimet mukaan.",
                },
            }
        ],
    )
    assert sent[0]["status"] == "applied", sent

    page = fx_phone.new_page()
    log_in(page, "demo-guardian")
    wait_for_worker(page)
    page.goto("/#/bulletins")
    item = page.locator("#main li.item[data-bulletin]", has_text="Luistelemaan")
    item.wait_for()
    about = item.locator(".concerns").inner_text()
    assert about == f"Koskee: {second['person']['given_name']} · {school}"
    assert page.evaluate(AUDIT) == []

    # A new conversation, written offline, with one of the second child's teachers.
    page.goto("/#/messages")
    page.locator("#new-message-link").click()
    page.locator(f"#child-{second['person']['id']}").click()
    page.locator(f"#child-{second['person']['id']}[aria-pressed='true']").wait_for()
    offered = page.locator("#recipients input[name=to]").evaluate_all(
        "i => i.map(x => Number(x.value))"
    )
    assert set(offered) == set(teachers)
    assert page.evaluate(AUDIT) == []
    shot(page, "guardian-new-message")
    teacher_id = offered[0]
    fx_phone.set_offline(True)
    page.locator("#new-message input[name=subject]").fill("Luistimet")
    page.locator("#new-message textarea[name=body]").fill("Hei! Sopivatko lainaluistimet?")
    page.locator("#new-message button[type=submit]").click()
    assert page.locator("#new-message-error").inner_text() == "Valitse ainakin yksi vastaanottaja."
    page.locator(f"#recipients input[value='{teacher_id}']").check()
    # A double tap on "Send" sends it once (checked by the outbox's count below).
    page.locator("#new-message button[type=submit]").dblclick()
    started = page.locator("#messages-local li.item", has_text="Luistimet")
    started.wait_for()
    assert started.locator(".badge").inner_text() == WAITING["fi"]
    assert teachers[teacher_id] in started.inner_text()

    # An absence report, offline too: listed at once, not "no notices".
    page.goto("/#/absences")
    form = page.locator("#absence-form")
    form.wait_for()
    form.locator("select[name=reason]").select_option("illness")
    # A double tap reports it once, also when its second tap lands on the form drawn anew
    # (cleared) after the first: that must not report a "today, illness" nobody filled in.
    # (A double tap on one and the same button: the message above.)
    assert page.evaluate(RETAP), "the form was not drawn anew within a double tap's time"
    waiting = page.locator("#notices-local li.is-waiting")
    waiting.wait_for()
    assert waiting.count() == 1
    assert page.locator("#main .empty").count() == 0
    assert page.locator("#absence-done").inner_text()
    _waiting(page, 2)
    assert page.evaluate(AUDIT) == []
    shot(page, "guardian-absence-waiting")

    # Back online: both are sent; the report is the notice now, marked sent.
    fx_phone.set_offline(False)
    _waiting(page, 0)
    page.locator("#notices .badge[data-state='sent']").wait_for()
    assert page.locator("#notices li.item[data-notice]").count() == 1
    assert page.locator("#notices-local").count() == 0
    page.goto("/#/messages")
    thread = page.locator("#main li.item[data-thread]", has_text="Luistimet")
    thread.wait_for()
    assert thread.locator(".concerns").inner_text() == about
    assert page.locator("#messages-local").count() == 0
    with sqlite3.connect(fx_server.database, timeout=30) as db:
        rows = db.execute(
            "SELECT t.id, m.sender, m.body FROM thread t JOIN message m ON m.thread = t.id "
            "WHERE t.subject = 'Luistimet'"
        ).fetchall()
        assert [(r[1], r[2]) for r in rows] == [
            (guardian["person"]["id"], "Hei! Sopivatko lainaluistimet?")
        ]
        people = {
            r[0]
            for r in db.execute(
                "SELECT person FROM thread_participant WHERE thread = ?", (rows[0][0],)
            )
        }
    assert people == {guardian["person"]["id"], teacher_id}

    # A reply written offline waits in its thread, then is the message itself.
    thread.locator("a").click()
    page.locator("#main ol.messages li").first.wait_for()
    fx_phone.set_offline(True)
    page.locator("#main textarea[name=body]").fill("Kiitos vielä!")
    page.locator("#main form button[type=submit]").click()
    reply = page.locator("#main ol.messages li.is-waiting", has_text="Kiitos vielä!")
    reply.wait_for()
    assert reply.locator(".badge").inner_text() == WAITING["fi"]
    assert page.evaluate(AUDIT) == []
    fx_phone.set_offline(False)
    _waiting(page, 0)
    page.locator(
        "#main ol.messages li.mine:not([data-change])", has_text="Kiitos vielä!"
    ).wait_for()
    assert page.locator("#main ol.messages li[data-change]").count() == 0

    # A report that starts yesterday: the form says so and sends nothing; one that reaches
    # the server anyway (queued by a phone whose date was wrong) is refused, in the list, in
    # the person's words.
    page.goto("/#/absences")
    yesterday = (fx_server.today - dt.timedelta(days=1)).isoformat()
    form.locator("input[name=from_date]").fill(yesterday)
    form.locator("input[name=to_date]").fill(yesterday)
    form.locator("button[type=submit]").click()
    page.locator("#absence-done[class=error]").wait_for()
    assert idb(page, "return (await db.outbox()).length;") == 0
    page.reload()  # the dates typed are left behind: the view is drawn afresh by what happens
    form.wait_for()
    force(
        page, "absence.report", {"from_date": yesterday, "to_date": yesterday, "reason": "illness"}
    )
    refused = page.locator("#notices-local li.is-refused")
    refused.wait_for()
    assert REPORT_AHEAD in refused.inner_text()
    assert REPORT_AHEAD in page.locator("#rejected").inner_text()
    assert page.evaluate(AUDIT) == []
    shot(page, "guardian-absence-refused")
    refused.locator("button").click()
    page.locator("#notices-local").wait_for(state="detached")
    page.locator("#rejected").wait_for(state="hidden")


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
def test_a_guardian_without_custody_is_told_why_before_acting(
    fx_phone: Any, fx_server: Server, fx_info_child: dict[str, Any], lang: str
) -> None:
    _set_language(fx_server, "demo-guardian-info", lang)
    child = fx_info_child
    name = child["person"]["given_name"]
    page = fx_phone.new_page()
    log_in(page, "demo-guardian-info")
    page.goto("/#/absences")
    chooser = page.locator(f"#child-{child['person']['id']}")
    if chooser.count():
        chooser.click()
    notice = page.locator("#cannot-act")
    notice.wait_for()
    assert notice.inner_text() == INFO_ONLY[lang].format(name=name)
    form = page.locator("#absence-form")
    controls = form.locator("input, select, textarea, button")
    assert controls.count() >= 6
    assert controls.evaluate_all("c => c.every(x => x.disabled)")
    assert form.locator("button[type=submit]").get_attribute("aria-describedby") == "cannot-act"
    assert page.evaluate(AUDIT) == []
    shot(page, f"guardian-info-only-{lang}")

    # A form: read-only, "Sign" disabled, and why.
    page.goto("/#/forms")
    page.locator("#main li.item a").first.click()
    page.locator("#form-fill #cannot-act").wait_for()
    assert page.locator("#cannot-act").inner_text() == INFO_ONLY_FORMS[lang].format(name=name)
    # Said once: no second sentence about custody under the form.
    assert page.locator("#main").inner_text().count(INFO_ONLY_FORMS[lang].format(name=name)) == 1
    about_custody = page.locator("#main p").evaluate_all(
        "(ps, word) => ps.filter(p => p.textContent.toLowerCase().includes(word)).length",
        CUSTODY_WORD[lang],
    )
    assert about_custody == 1
    fill = page.locator("#form-fill")
    assert fill.locator("input, button").evaluate_all(
        "c => c.length > 2 && c.every(x => x.disabled)"
    )
    assert page.locator("#sign").is_disabled()
    assert page.evaluate(AUDIT) == []
    shot(page, f"guardian-info-only-form-{lang}")

    # Should a report reach the server anyway (an older app), its refusal is in their words.
    page.evaluate(
        """async (pupil) => {
        const sync = await import('/js/sync.js');
        await sync.queue('absence.report', {pupil_id: pupil, from_date: window.reppuToday,
          to_date: window.reppuToday, reason: 'illness'});
        await window.reppu.trySync();
        }""".replace("window.reppuToday", f"'{fx_server.today.isoformat()}'"),
        child["person"]["id"],
    )
    rejected = page.locator("#rejected li.rejected[data-code='mutation.forbidden']")
    rejected.wait_for()
    assert FORBIDDEN_REPORT[lang] in rejected.inner_text()
    page.goto("/#/absences")
    assert FORBIDDEN_REPORT[lang] in page.locator("#notices-local li.is-refused").inner_text()


def test_a_pupil_starts_a_conversation_once_the_school_allows_it(
    fx_phone: Any, fx_server: Server
) -> None:
    login = fx_server.login("demo-pupil")
    me = fx_server.call(login["token"], "GET", "/me")
    assert me["pupil_conversation_schools"] == []
    page = fx_phone.new_page()
    log_in(page, "demo-pupil")
    page.goto("/#/messages")
    page.locator("#main h1").wait_for()
    assert page.locator("#new-message-link").count() == 0

    groups = [int(p.split(":")[1]) for p in me["partitions"] if p.startswith("group:")]
    store = reference_store(fx_server, login["token"])
    school = next(r["school_id"] for r in store.records("group").values() if r["id"] in groups)
    principal = fx_server.login("demo-principal")
    fx_server.call(
        principal["token"],
        "PUT",
        f"/schools/{school}/rules",
        {"pupils_explain_from_age": None, "pupils_start_conversations": True},
    )
    page.reload()
    page.locator("#new-message-link").click()
    recipients = page.locator("#recipients input[name=to]")
    recipients.first.wait_for()
    assert page.evaluate(AUDIT) == []
    recipients.first.check()
    page.locator("#new-message input[name=subject]").fill("Läksyt")
    page.locator("#new-message textarea[name=body]").fill("Mitkä olivat läksyt?")
    page.locator("#new-message button[type=submit]").click()
    thread = page.locator("#main li.item[data-thread]", has_text="Läksyt")
    thread.wait_for()
    assert thread.locator(".concerns").count() == 0  # a pupil's messages are their own
    applied = wait_until(
        page, "return (await db.outcomes()).filter(o => o.name === 'message.send');"
    )
    assert [o["status"] for o in applied] == ["applied"]
    assert idb(page, "return (await db.outbox()).length;") == 0


def test_switching_the_child_keeps_the_new_message_typed(fx_phone: Any, fx_server: Server) -> None:
    login = fx_server.login("demo-guardian")
    first, second = fx_server.call(login["token"], "GET", "/me")["children"]
    teachers, _ = _synced(fx_server, login["token"], second["group_ids"])
    page = fx_phone.new_page()
    log_in(page, "demo-guardian")
    page.goto("/#/messages/new")
    page.locator(f"#child-{first['person']['id']}[aria-pressed='true']").wait_for()
    page.locator("#new-message input[name=subject]").fill("Retkipäivä")
    page.locator("#new-message textarea[name=body]").fill("Mitä retkelle pitää ottaa mukaan?")

    # The other child: their teachers to choose from, the subject and the message kept.
    page.locator(f"#child-{second['person']['id']}").click()
    page.locator(f"#child-{second['person']['id']}[aria-pressed='true']").wait_for()
    offered = page.locator("#recipients input[name=to]").evaluate_all(
        "i => i.map(x => Number(x.value))"
    )
    assert set(offered) == set(teachers)
    assert page.locator("#new-message input[name=subject]").input_value() == "Retkipäivä"
    body = page.locator("#new-message textarea[name=body]")
    assert body.input_value() == "Mitä retkelle pitää ottaa mukaan?"
    # A sync in the background does not draw the form again over the draft either.
    page.evaluate("window.reppu.trySync()")
    assert body.input_value() == "Mitä retkelle pitää ottaa mukaan?"
    body.fill("Mitä retkelle pitää ottaa mukaan? Entä eväät?")
    page.locator(f"#child-{first['person']['id']}").click()
    page.locator(f"#child-{first['person']['id']}[aria-pressed='true']").wait_for()
    assert body.input_value() == "Mitä retkelle pitää ottaa mukaan? Entä eväät?"
    assert page.evaluate(AUDIT) == []


ABSENCE_SENT = {"fi": "Lähetetty: koulu on saanut sen."}
ABSENCE_QUEUED = {
    "fi": "Tallennettu laitteelle; lähetetään kun verkko on käytettävissä. Se näkyy alla"
    " ilmoituksissa."
}


def test_after_send_the_absence_form_is_empty_and_says_what_became_of_the_report(
    fx_phone: Any, fx_server: Server
) -> None:
    page = fx_phone.new_page()
    log_in(page, "demo-guardian")
    page.goto("/#/absences")
    form = page.locator("#absence-form")
    form.wait_for()
    today = fx_server.today.isoformat()
    done = page.locator("#absence-done")

    def report(day: dt.date, note: str) -> None:
        form.locator("input[name=from_date]").fill(day.isoformat())
        form.locator("input[name=to_date]").fill(day.isoformat())
        form.locator("select[name=reason]").select_option("appointment")
        form.locator("textarea[name=note]").fill(note)
        form.locator("button[type=submit]").click()
        # Focus on the line that says what became of it, the form empty for the next one.
        page.wait_for_function("document.activeElement.id === 'absence-done'")
        assert form.locator("textarea[name=note]").input_value() == ""
        assert form.locator("select[name=reason]").input_value() == "illness"
        assert form.locator("select[name=kind]").input_value() == "absence.report"
        assert form.locator("input[name=from_date]").input_value() == today
        assert form.locator("input[name=to_date]").input_value() == today

    # Online: sent, and so said (not "saved on this device").
    report(fx_server.today + dt.timedelta(days=1), "Hammaslääkäri")
    page.locator("#absence-done", has_text=ABSENCE_SENT["fi"]).wait_for()
    page.locator("#main [data-state='sent']").first.wait_for()
    assert page.evaluate(AUDIT) == []

    # Offline: saved on the device, listed as waiting; then sent.
    fx_phone.set_offline(True)
    page.wait_for_function("document.getElementById('status').dataset.online === 'false'")
    page.wait_for_timeout(700)  # past a double tap's time: the next "Send" is a new act
    report(fx_server.today + dt.timedelta(days=2), "Neuvola")
    assert done.inner_text() == ABSENCE_QUEUED["fi"]
    page.locator("#notices-local li.is-waiting").wait_for()
    shot(page, "guardian-absence-after-send")
    fx_phone.set_offline(False)
    page.locator("#absence-done", has_text=ABSENCE_SENT["fi"]).wait_for(timeout=30_000)
    page.locator("#notices-local li.is-waiting").wait_for(state="detached")


def test_a_pupils_new_message_follows_the_schools_rule_without_a_reload(
    fx_phone: Any, fx_server: Server
) -> None:
    login = fx_server.login("demo-pupil")
    me = fx_server.call(login["token"], "GET", "/me")
    groups = [int(p.split(":")[1]) for p in me["partitions"] if p.startswith("group:")]
    store = reference_store(fx_server, login["token"])
    school = next(r["school_id"] for r in store.records("group").values() if r["id"] in groups)
    principal = fx_server.login("demo-principal")

    def allow(on: bool) -> None:
        fx_server.call(
            principal["token"],
            "PUT",
            f"/schools/{school}/rules",
            {"pupils_explain_from_age": None, "pupils_start_conversations": on},
        )

    def come_back_to_the_app() -> None:
        # GET /me is asked again at most once a minute, when the app is back in front.
        fx_phone.clock.fast_forward(61_000)
        page.evaluate("window.dispatchEvent(new Event('focus'))")

    allow(True)
    page = fx_phone.new_page()
    log_in(page, "demo-pupil")
    page.goto("/#/messages")
    link = page.locator("#new-message-link")
    link.wait_for()

    # Turned off, and on again, with no reload.
    allow(False)
    come_back_to_the_app()
    link.wait_for(state="detached")
    allow(True)
    come_back_to_the_app()
    link.wait_for()

    # Sent anyway (written while it was allowed): refused in the list, in their words, and
    # "New message" goes at once.
    link.click()
    page.locator("#recipients input[name=to]").first.check()
    page.locator("#new-message input[name=subject]").fill("Kysymys kokeesta")
    page.locator("#new-message textarea[name=body]").fill("Mitä kokeeseen tulee?")
    allow(False)
    page.locator("#new-message button[type=submit]").click()
    refused = page.locator("#messages-local li.is-refused", has_text="Kysymys kokeesta")
    refused.wait_for(timeout=30_000)
    assert "Et voi aloittaa keskustelua" in refused.inner_text()
    link.wait_for(state="detached")
    assert page.evaluate(AUDIT) == []
    shot(page, "pupil-new-message-refused")
    refused.locator(".refusal button").click()
    refused.wait_for(state="detached")


def test_the_absence_form_says_what_is_wrong_with_its_dates_before_sending(
    fx_phone: Any, fx_server: Server
) -> None:
    # Each date the server would refuse (schemas/absences.py's limits) is said at once, next
    # to its field, in the person's words, and nothing is queued.
    page = fx_phone.new_page()
    log_in(page, "demo-guardian")
    page.goto("/#/absences")
    form = page.locator("#absence-form")
    form.wait_for()
    day = fx_server.today
    cases = [
        (
            "absence.report",
            day + dt.timedelta(days=3),
            day + dt.timedelta(days=1),
            "to_date",
            "Viimeinen päivä on ennen ensimmäistä. Korjaa päivät.",
        ),
        (
            "absence.report",
            day,
            day + dt.timedelta(days=20),
            "to_date",
            "Yksi ilmoitus kattaa enintään 14 päivää. Lähetä loput erikseen.",
        ),
        (
            "absence.report",
            day - dt.timedelta(days=1),
            day,
            "from_date",
            "Ilmoitus tehdään tästä päivästä eteenpäin. Menneet päivät selvitetään valitsemalla"
            ' "Mennyt poissaolo (selvitys)".',
        ),
        (
            "absence.explain",
            day,
            day + dt.timedelta(days=1),
            "to_date",
            "Selvitys koskee menneitä päiviä. Tulevat päivät ilmoitetaan valitsemalla"
            ' "Tuleva poissaolo".',
        ),
        (
            "absence.explain",
            day - dt.timedelta(days=40),
            day - dt.timedelta(days=38),
            "from_date",
            "Poissaoloja voi selvittää 30 päivän ajan. Ota yhteyttä kouluun.",
        ),
    ]
    for kind, first, last, wrong, said in cases:
        form.locator("select[name=kind]").select_option(kind)
        form.locator("input[name=from_date]").fill(first.isoformat())
        form.locator("input[name=to_date]").fill(last.isoformat())
        form.locator("button[type=submit]").click()
        page.locator("#absence-done", has_text=said).wait_for()
        assert page.evaluate("document.activeElement.name") == wrong
        assert form.locator(f"input[name={wrong}]").get_attribute("aria-invalid") == "true"
        assert idb(page, "return (await db.outbox()).length;") == 0
        page.wait_for_timeout(700)  # past the double tap's time: the next is a new act
    # Put right, it is sent, and the field is no longer marked.
    form.locator("select[name=kind]").select_option("absence.report")
    form.locator("input[name=from_date]").fill((day + dt.timedelta(days=1)).isoformat())
    form.locator("input[name=to_date]").fill((day + dt.timedelta(days=2)).isoformat())
    form.locator("button[type=submit]").click()
    page.locator("#notices [data-state='sent'], #notices-local li.item").first.wait_for()
    assert form.locator("[aria-invalid]").count() == 0
    assert page.evaluate(AUDIT) == []
