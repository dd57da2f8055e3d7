"""What a person reads when a change is refused, and what a newer app hears.

A rejection's ``reason`` is shown to the person as it is: a plain sentence in their language
(fi, sv, en; another language gets English), never a decoder's message such as
``Expected `str` matching regex '^[^\\x00]*$'``. The stable part is the ``code``.

A newer app states a newer ``schema_version`` and may send fields this server has never heard
of: it is told ``sync.version_unknown``, not ``request.invalid`` about the field.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest

from schemas.sync import SCHEMA_VERSION
from server.catalogue import CATALOGUE
from server.clock import utc_now
from server.db.tables import Person
from server.rejections import TEXTS, Reason, language_of, say
from tests.city import City
from tests.conftest import log_in_as

JARGON = ("regex", "Expected", "$.", "`", "msgspec", "Object ", "RFC", "ISO")
WRONG_VALUES: tuple[Any, ...] = ("a\x00b", 10**30, -1, 0, "x" * 5_000, [], {"a": 1}, None, 1.5)


def _invalid_args() -> list[tuple[str, dict[str, Any]]]:
    """For every mutation of the catalogue: no args, an unknown field, and each of its fields
    set to each of :data:`WRONG_VALUES`."""
    cases: list[tuple[str, dict[str, Any]]] = []
    for name, spec in sorted(CATALOGUE.items()):
        cases += [(name, {}), (name, {"surprise": 1})]
        for field in msgspec.structs.fields(spec.args_type):
            cases += [(name, {field.encode_name: value}) for value in WRONG_VALUES]
    return cases


async def _push(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    client_id: str,
    mutations: list[tuple[str, Any]],
) -> list[dict[str, Any]]:
    now = utc_now().isoformat()
    body = {
        "schema_version": SCHEMA_VERSION,
        "client_id": client_id,
        "mutations": [
            {"id": i, "name": name, "args": args, "occurred_at": now}
            for i, (name, args) in enumerate(mutations, start=1)
        ],
    }
    answer = await client.post("/sync/push", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


def test_a_language_other_than_ours_gets_english() -> None:
    assert [language_of(x) for x in ("fi", "sv", "en", "de", "", None, "SV")] == [
        "fi",
        "sv",
        "en",
        "en",
        "en",
        "en",
        "sv",
    ]
    assert {say(reason, "de") for reason in Reason} == {t["en"] for t in TEXTS.values()}
    assert all(set(texts) == {"fi", "sv", "en"} for texts in TEXTS.values())


# Finnish takes the same path as Swedish (the catalogue's sentences); a whole sweep of it
# would only double the time.
@pytest.mark.parametrize("language", ["sv", "en"])
async def test_no_reason_is_jargon_for_any_mutation_s_invalid_args(
    fx_client: httpx.AsyncClient, fx_city: City, language: str
) -> None:
    await Person.update({Person.language: language}).where(Person.id == fx_city.teacher)
    headers = await log_in_as(fx_client, "teacher")
    cases = _invalid_args()
    results = []
    for first in range(0, len(cases), 400):
        results += await _push(
            fx_client, headers, f"reasons-{language}-{first}", cases[first : first + 400]
        )
    expected = {texts[language] for texts in TEXTS.values()}
    seen = set()
    for (name, args), result in zip(cases, results, strict=True):
        assert result["status"] == "rejected", (name, args, result)
        reason = result["reason"]
        assert not any(word in reason for word in JARGON), (name, args, reason)
        seen.add(reason)
    if language == "sv":
        # Every reason comes from the catalogue of sentences, in the person's language (in
        # English, a handler's own sentence may be given instead: "Name the recipients...").
        assert seen <= expected, seen - expected
    assert len(seen) >= 4  # missing, unknown field, too long, out of range, not valid


async def test_a_swedish_speaker_reads_swedish_and_an_english_speaker_the_handler_s_words(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    """A handler's own refusal (no such lesson) as well as a bad value."""
    missing_lesson = {"lesson_id": 2**31 - 1, "on_date": "2026-12-01"}
    cases = [
        ("lesson.restore", missing_lesson),
        ("lesson.change", {**missing_lesson, "room": "a\x00"}),
        ("no.such.thing", {}),
    ]
    answers = {}
    for language in ("sv", "en"):
        await Person.update({Person.language: language}).where(Person.id == fx_city.teacher)
        headers = await log_in_as(fx_client, "teacher")
        answers[language] = await _push(fx_client, headers, f"swedish-{language}", cases)
    sv, en = answers["sv"], answers["en"]
    assert [r["code"] for r in sv] == [r["code"] for r in en]
    assert [r["code"] for r in sv] == [
        "mutation.not_found",
        "mutation.invalid_args",
        "mutation.unknown",
    ]
    assert sv[0]["reason"] == "Det som ändringen gäller finns inte (längre)."
    assert sv[1]["reason"] == "Ett värde är inte giltigt."
    assert sv[1]["field"] == "$.room"
    assert sv[2]["reason"].startswith("Appen bad om något")
    assert en[0]["reason"] == "That lesson does not exist."  # the handler's own sentence
    assert en[1]["reason"] == "A value is not valid."


@pytest.mark.parametrize("msgpack", [False, True], ids=["json", "msgpack"])
@pytest.mark.parametrize("route", ["/sync/pull", "/sync/push"])
async def test_a_newer_app_s_new_fields_get_version_unknown_not_invalid(
    fx_client: httpx.AsyncClient, fx_city: City, route: str, msgpack: bool
) -> None:
    headers = await log_in_as(fx_client, "aino")
    body: dict[str, Any] = {"schema_version": SCHEMA_VERSION + 1, "wished_for": {"x": [1]}}
    if route == "/sync/push":
        body |= {
            "client_id": "newer-app-1",
            "mutations": [{"id": 1, "name": "x", "args": {}, "occurred_at": "now", "new": 1}],
        }
    for version, code in (
        (SCHEMA_VERSION + 1, "sync.version_unknown"),
        (0, "sync.update_required"),
    ):
        body["schema_version"] = version
        if msgpack:
            content = msgspec.msgpack.encode(body)
            media = "application/x-msgpack"
        else:
            content, media = msgspec.json.encode(body), "application/json"
        answer = await fx_client.post(
            route, content=content, headers={**headers, "Content-Type": media}
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == code
        assert answer.json()["field"] == "$.schema_version"
