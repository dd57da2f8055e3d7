"""The pure rules of forms: definitions, answers of every kind, the hash, the status."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from schemas.forms import Answer, FormDefinition, ResponseStatus, SigningRule
from sync.forms import FormProblem, answers_hash, check_answers, check_definition, response_status


def _text(word: str) -> dict[str, str]:
    return {"fi": f"{word} fi", "sv": f"{word} sv", "en": f"{word} en"}


def _options(*ids: str) -> list[dict[str, Any]]:
    return [{"id": i, "label": _text(i)} for i in ids]


def every_kind(**overrides: Any) -> dict[str, Any]:
    """A definition with one question of each kind, as JSON; the API tests use it too."""
    document: dict[str, Any] = {
        "key": "retkilupa",
        "languages": ["fi", "sv", "en"],
        "title": _text("Retkilupa"),
        "signing": "all_custodians",
        "fields": [
            {"id": "name", "kind": "text", "label": _text("name"), "required": True},
            {"id": "notes", "kind": "long_text", "label": _text("notes"), "max_length": 50},
            {
                "id": "lunch",
                "kind": "single_choice",
                "label": _text("lunch"),
                "options": _options("meat", "veg"),
                "required": True,
            },
            {
                "id": "allergies",
                "kind": "multiple_choice",
                "label": _text("allergies"),
                "options": _options("milk", "nuts", "egg"),
                "max_choices": 2,
            },
            {
                "id": "back_on",
                "kind": "date",
                "label": _text("back"),
                "min_date": "2026-01-01",
                "max_date": "2027-12-31",
            },
            {"id": "photos", "kind": "consent", "label": _text("photos"), "required": True},
            {
                "id": "height",
                "kind": "number",
                "label": _text("height"),
                "min": 50,
                "max": 250,
                "integer": True,
            },
        ],
    }
    document.update(overrides)
    return document


GOOD: dict[str, Answer] = {
    "name": "Aino",
    "notes": "Ei mitään",
    "lunch": "veg",
    "allergies": ["nuts", "milk"],
    "back_on": "2026-12-01",
    "photos": False,
    "height": 142,
}


def definition(**overrides: Any) -> FormDefinition:
    return msgspec.convert(every_kind(**overrides), FormDefinition)


def test_a_good_definition_passes() -> None:
    check_definition(definition())


def _field(**changes: Any) -> dict[str, Any]:
    document = every_kind()
    document["fields"][0] = {**document["fields"][0], **changes}
    return document


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (every_kind(languages=["fi", "sv", "en", "fi"]), "$.languages"),
        (every_kind(title={"fi": "Vain suomeksi"}), "$.title"),
        (_field(label={**_text("x"), "de": "x"}), "$.fields[0].label"),
        (_field(id="notes"), "$.fields[1].id"),
        (_field(max_length=1001), "$.fields[0].max_length"),
        (_field(min_length=300), "$.fields[0].min_length"),
        (_field(options=_options("a", "b")), "$.fields[0].options"),
        (_field(kind="single_choice", options=_options("a")), "$.fields[0].options"),
        (_field(kind="single_choice", options=_options("a", "a")), "$.fields[0].options[1].id"),
        (_field(kind="number", min=5, max=1), "$.fields[0].min"),
        (_field(kind="date", min_date="2027-01-01", max_date="2026-01-01"), "$.fields[0].min_date"),
        (
            _field(kind="multiple_choice", options=_options("a", "b"), max_choices=3),
            "$.fields[0].max_choices",
        ),
    ],
)
def test_a_definition_breaking_a_rule_is_refused_where_it_breaks(
    document: dict[str, Any], field: str
) -> None:
    with pytest.raises(FormProblem) as caught:
        check_definition(msgspec.convert(document, FormDefinition))
    assert caught.value.field == field


def test_good_answers_come_back_canonical() -> None:
    answers = check_answers(definition(), {**GOOD, "height": 142.0, "notes": ""}, complete=True)
    assert answers["allergies"] == ["milk", "nuts"]
    assert answers["height"] == 142
    assert isinstance(answers["height"], int)
    assert "notes" not in answers  # blank is no answer


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", 5),
        ("name", "two\nlines"),
        ("name", "x" * 201),  # over the text default of 200
        ("notes", "x" * 51),  # over the definition's own max_length
        ("lunch", "fish"),
        ("lunch", ["veg"]),
        ("allergies", ["milk", "milk"]),
        ("allergies", ["milk", "nuts", "egg"]),  # above max_choices
        ("allergies", ["gluten"]),
        ("allergies", "milk"),
        ("back_on", "1.12.2026"),
        ("back_on", "2026-02-30"),
        ("back_on", "2025-12-31"),  # before min_date
        ("photos", "yes"),
        ("photos", 1),
        ("height", True),
        ("height", "142"),
        ("height", 142.5),  # integer only
        ("height", 251),
    ],
)
def test_each_kind_refuses_a_wrong_answer_naming_its_question(field: str, value: Any) -> None:
    with pytest.raises(FormProblem) as caught:
        check_answers(definition(), {**GOOD, field: value}, complete=True)
    assert caught.value.field == f"$.answers.{field}"


def test_an_unknown_question_is_refused() -> None:
    with pytest.raises(FormProblem) as caught:
        check_answers(definition(), {**GOOD, "shoe_size": 38}, complete=False)
    assert caught.value.field == "$.answers.shoe_size"


def test_required_questions_bind_a_submission_but_not_a_draft() -> None:
    draft = {"notes": "kesken"}
    assert check_answers(definition(), draft, complete=False) == draft
    with pytest.raises(FormProblem) as caught:
        check_answers(definition(), draft, complete=True)
    assert caught.value.field == "$.answers.name"
    # A consent answered "no" is an answer.
    assert check_answers(definition(), GOOD, complete=True)["photos"] is False


def test_the_hash_covers_the_answers_and_what_they_answer() -> None:
    one = check_answers(definition(), GOOD, complete=True)
    again = check_answers(definition(), dict(reversed(list(GOOD.items()))), complete=True)
    assert answers_hash(1, 2, 1, one) == answers_hash(1, 2, 1, again)
    assert answers_hash(1, 2, 1, one) != answers_hash(1, 3, 1, one)  # another pupil
    assert answers_hash(1, 2, 1, one) != answers_hash(1, 2, 2, one)  # another version
    assert answers_hash(1, 2, 1, one) != answers_hash(1, 2, 1, {**one, "photos": True})


@pytest.mark.parametrize(
    ("submitted", "signers", "custodians", "rule", "expected"),
    [
        (False, [], [7, 8], SigningRule.ALL_CUSTODIANS, (ResponseStatus.DRAFT, 0, 2)),
        (True, [], [7, 8], SigningRule.ALL_CUSTODIANS, (ResponseStatus.SUBMITTED, 0, 2)),
        (True, [7], [7, 8], SigningRule.ALL_CUSTODIANS, (ResponseStatus.PARTLY_SIGNED, 1, 2)),
        (True, [7, 8], [7, 8], SigningRule.ALL_CUSTODIANS, (ResponseStatus.COMPLETE, 2, 2)),
        (True, [7], [7, 8], SigningRule.ANY_CUSTODIAN, (ResponseStatus.COMPLETE, 1, 1)),
        # A signer who is no custodian today counts for nothing.
        (True, [9], [7], SigningRule.ANY_CUSTODIAN, (ResponseStatus.SUBMITTED, 0, 1)),
        (True, [7], [], SigningRule.ALL_CUSTODIANS, (ResponseStatus.SUBMITTED, 0, 1)),
    ],
)
def test_status_follows_the_signing_rule(
    submitted: bool,
    signers: list[int],
    custodians: list[int],
    rule: SigningRule,
    expected: tuple[ResponseStatus, int, int],
) -> None:
    got = response_status(
        saved=True, submitted=submitted, signers=signers, custodians=custodians, rule=rule
    )
    assert got == expected


def test_nothing_saved_is_not_opened() -> None:
    got = response_status(
        saved=False, submitted=False, signers=[], custodians=[1], rule=SigningRule.ANY_CUSTODIAN
    )
    assert got[0] == ResponseStatus.NOT_OPENED
