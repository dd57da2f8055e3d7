"""Refusals in the person's language, chosen by their stable codes (issue 18): a change the
server refuses (``mutation.*``, with its ``field``) and an HTTP error (``request.invalid``,
``auth.bad_credentials``, ...) are both said in the app's words, never the server's English
sentence, which is kept for a code the app does not know (``js/outcomes.js``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from schemas.errors import ErrorCode
from tests.browser.conftest import Server, log_in, reference_store, request_trip_form, shot

ROOT = Path(__file__).resolve().parents[2]
WORDS = ROOT / "clients" / "pwa" / "js" / "words"

# Codes the web app never meets: native apps' push, channels and activation (no view for
# them yet), admin's accounts and imports, a redirect only native apps name, and a body
# the app always sends as JSON. A newer server's code is said in the server's words.
NOT_MET_BY_THE_PWA = {
    ErrorCode.REQUEST_UNSUPPORTED_MEDIA_TYPE,
    ErrorCode.METHOD_NOT_ALLOWED,
    ErrorCode.PUSH_NATIVE_UNAVAILABLE,
    ErrorCode.PUSH_UNKNOWN_APP,
    ErrorCode.PUSH_INVALID_DEVICE_TOKEN,
    ErrorCode.CHANNEL_UNSUPPORTED,
    ErrorCode.CHANNEL_INVALID_ADDRESS,
    ErrorCode.ACTIVATION_INVALID,
    ErrorCode.ACTIVATION_USERNAME_TAKEN,
    ErrorCode.ACCOUNT_NOT_FOUND,
    ErrorCode.ACCOUNT_DEVICE_NOT_FOUND,
    ErrorCode.IMPORT_NOT_FOUND,
    ErrorCode.IMPORT_NOT_APPLICABLE,
    ErrorCode.SIGNIN_REDIRECT_NOT_ALLOWED,
}

FORBIDDEN_SIGN = {
    "fi": "Vain lapsen huoltajat voivat allekirjoittaa tämän lomakkeen.",
    "sv": "Bara barnets vårdnadshavare kan underteckna den här blanketten.",
    "en": "Only the child's custodial guardians can sign this form.",
}
LANGUAGE_REFUSED = "Det här språket kan inte väljas: välj finska, svenska eller engelska."
BAD_CREDENTIALS = "Kirjautuminen epäonnistui: Väärä käyttäjätunnus tai salasana."


def test_the_app_has_words_for_every_error_code_it_can_meet() -> None:
    """Each language has a sentence for each code the app can meet, and none for a code
    that does not exist (a renamed code would otherwise fall back to English unnoticed)."""
    for language in ("fi", "sv", "en"):
        keys = set(re.findall(r"\berror_(\w+):", (WORDS / f"{language}.js").read_text()))
        codes = {code.value.replace(".", "_") for code in ErrorCode}
        said = {k for k in keys if k in codes}
        expected = {c.value.replace(".", "_") for c in set(ErrorCode) - NOT_MET_BY_THE_PWA}
        assert said == expected, (language, said ^ expected)
        # A field's own sentence is for a code the app knows: error_<code>_<field>.
        assert all(any(k.startswith(f"{c}_") for c in said) for k in keys - said), keys - said


@pytest.fixture(scope="module")
def fx_info_form(fx_server: Server) -> dict[str, Any]:
    """demo-guardian-info, speaking Swedish, and a form about their child without custody:
    ``pupil``, ``request_id``."""
    token = fx_server.login("demo-guardian-info")["token"]
    fx_server.call(token, "PUT", "/me/language", {"language": "sv"})
    me = fx_server.call(token, "GET", "/me")
    child = next(c for c in me["children"] if c["guardianship"] == "information_only")
    request_trip_form(fx_server, child, "retkilupa-refusals", "browser-refusal-form")
    (request_id,) = (
        r["id"]
        for r in reference_store(fx_server, token).records("form_request").values()
        if r["definition"]["key"] == "retkilupa-refusals"
    )
    return {"pupil": child["person"]["id"], "request_id": request_id}


@pytest.mark.browser
@pytest.mark.slow
def test_a_forced_signature_without_custody_is_refused_in_swedish(
    fx_phone: Any, fx_server: Server, fx_info_form: dict[str, Any]
) -> None:
    """An older app (or a crafted request) signs for a child the guardian has only a right
    to information about: the server refuses it naming ``$.pupil_id``, and the app says why
    in Swedish, in the box of refused changes and on the form itself."""
    page = fx_phone.new_page()
    log_in(page, "demo-guardian-info")
    page.wait_for_function("document.documentElement.lang === 'sv'")
    page.evaluate(
        """async (args) => {
        const sync = await import('/js/sync.js');
        await sync.queue('form.sign', args);
        await window.reppu.trySync();
        }""",
        {
            "request_id": fx_info_form["request_id"],
            "pupil_id": fx_info_form["pupil"],
            "definition_version": 1,
            "answers": {"ok": True},
        },
    )
    rejected = page.locator("#rejected li.rejected[data-code='mutation.forbidden']")
    rejected.wait_for()
    assert FORBIDDEN_SIGN["sv"] in rejected.inner_text()
    outcome = page.evaluate(
        "async () => (await window.reppu.db.outcomes()).find((o) => o.name === 'form.sign')"
    )
    assert (outcome["code"], outcome["field"]) == ("mutation.forbidden", "$.pupil_id")
    page.goto("/#/absences")
    chooser = page.locator(f"#child-{fx_info_form['pupil']}")
    if chooser.count():
        chooser.click()
    page.goto(f"/#/forms/{fx_info_form['request_id']}")
    state = page.locator("#form-state[data-state=refused]")
    state.wait_for()
    assert FORBIDDEN_SIGN["sv"] in state.inner_text()
    shot(page, "form-sign-refused-sv")


@pytest.mark.browser
@pytest.mark.slow
def test_a_forced_invalid_language_is_refused_in_swedish(fx_phone: Any, fx_server: Server) -> None:
    """Settings' language choice sent with a language the server does not have: the answer
    is ``request.invalid`` at ``$.language``, and the app says so in Swedish."""
    token = fx_server.login("demo-principal")["token"]
    fx_server.call(token, "PUT", "/me/language", {"language": "sv"})
    page = fx_phone.new_page()
    log_in(page, "demo-principal")
    page.goto("/#/settings")
    picker = page.locator("#language select[name=language]")
    picker.wait_for()
    page.wait_for_function("document.documentElement.lang === 'sv'")
    # As an app offering a language this server does not have would send it.
    picker.evaluate("(select) => { select.options[0].value = 'de'; select.selectedIndex = 0; }")
    page.locator("#language button[type=submit]").click()
    state = page.locator("#language-state")
    page.wait_for_function("document.getElementById('language-state').textContent !== ''")
    assert state.inner_text() == LANGUAGE_REFUSED
    assert page.evaluate("document.documentElement.lang") == "sv"
    shot(page, "settings-language-refused-sv")


@pytest.mark.browser
@pytest.mark.slow
def test_a_wrong_password_is_said_in_finnish(fx_phone: Any) -> None:
    """Before anyone logs in the app speaks the browser's language (Finnish here): a wrong
    password is ``auth.bad_credentials``, said in Finnish, not the server's English."""
    page = fx_phone.new_page()
    page.goto("/")
    page.locator("input[name=username]").fill("demo-teacher")
    page.locator("input[name=password]").fill("not the password")
    page.locator("form button[type=submit]").click()
    error = page.locator("#login-error")
    page.wait_for_function("document.getElementById('login-error').textContent !== ''")
    assert error.inner_text() == BAD_CREDENTIALS
