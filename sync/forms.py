"""Forms as pure logic: a definition's own rules, answers checked against a definition, the
hash a signature covers, and a response's status from its signatures.

Nothing here reads a database or knows of HTTP: the server (``server/forms.py``) loads the
rows and calls these functions, and the tests call them directly. ``docs/forms.md`` is the
reference for every rule.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Iterable, Mapping

import msgspec

from schemas.forms import (
    DEFAULT_LONG_TEXT_CHARS,
    DEFAULT_TEXT_CHARS,
    MAX_LONG_TEXT_CHARS,
    MAX_TEXT_CHARS,
    Answer,
    FieldKind,
    FormDefinition,
    FormField,
    ResponseStatus,
    SigningRule,
)

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CHOICES = (FieldKind.SINGLE_CHOICE, FieldKind.MULTIPLE_CHOICE)
_TEXTS = (FieldKind.TEXT, FieldKind.LONG_TEXT)
# The rules each kind may carry; any other rule set on a field is a mistake in the definition
# (a ``max_length`` on a date would silently mean nothing).
_RULES: dict[FieldKind, frozenset[str]] = {
    FieldKind.TEXT: frozenset({"max_length", "min_length"}),
    FieldKind.LONG_TEXT: frozenset({"max_length", "min_length"}),
    FieldKind.SINGLE_CHOICE: frozenset({"options"}),
    FieldKind.MULTIPLE_CHOICE: frozenset({"options", "min_choices", "max_choices"}),
    FieldKind.DATE: frozenset({"min_date", "max_date"}),
    FieldKind.CONSENT: frozenset(),
    FieldKind.NUMBER: frozenset({"min", "max", "integer"}),
}
_ALL_RULES = frozenset().union(*_RULES.values())
_UNSET: dict[str, object] = {
    "max_length": None,
    "min_length": None,
    "options": [],
    "min_choices": None,
    "max_choices": None,
    "min_date": None,
    "max_date": None,
    "min": None,
    "max": None,
    "integer": False,
}


class FormProblem(Exception):  # noqa: N818 (a finding about data, not a failure of the code)
    """What is wrong, as a sentence, and where (a JSON path)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# --- definitions -------------------------------------------------------------------------


def _check_text(text: Mapping[str, str] | None, languages: set[str], where: str) -> None:
    if text is not None and set(text) != languages:
        missing = sorted(languages - set(text))
        extra = sorted(set(text) - languages)
        detail = f"missing {', '.join(missing)}" if missing else f"not declared: {', '.join(extra)}"
        raise FormProblem(f"Give this text in exactly the form's languages ({detail}).", where)


def _check_field(field: FormField, languages: set[str], where: str) -> None:
    _check_text(field.label, languages, f"{where}.label")
    _check_text(field.help, languages, f"{where}.help")
    for rule in sorted(_ALL_RULES - _RULES[field.kind]):
        if getattr(field, rule) != _UNSET[rule]:
            raise FormProblem(f"A {field.kind.value} question has no {rule}.", f"{where}.{rule}")
    if field.kind in _TEXTS:
        cap = MAX_TEXT_CHARS if field.kind == FieldKind.TEXT else MAX_LONG_TEXT_CHARS
        if field.max_length is not None and field.max_length > cap:
            raise FormProblem(
                f"A {field.kind.value} answer is at most {cap} characters.", f"{where}.max_length"
            )
        if field.min_length is not None and field.min_length > _max_length(field):
            raise FormProblem("min_length is above max_length.", f"{where}.min_length")
    if field.kind in _CHOICES:
        if len(field.options) < 2:
            raise FormProblem("A choice needs at least two options.", f"{where}.options")
        seen: set[str] = set()
        for i, option in enumerate(field.options):
            if option.id in seen:
                raise FormProblem("Option ids must differ.", f"{where}.options[{i}].id")
            seen.add(option.id)
            _check_text(option.label, languages, f"{where}.options[{i}].label")
        if field.max_choices is not None and field.max_choices > len(field.options):
            raise FormProblem("max_choices is above the number of options.", f"{where}.max_choices")
        if (
            field.min_choices is not None
            and field.max_choices is not None
            and field.min_choices > field.max_choices
        ):
            raise FormProblem("min_choices is above max_choices.", f"{where}.min_choices")
    if field.min_date and field.max_date and field.min_date > field.max_date:
        raise FormProblem("min_date is after max_date.", f"{where}.min_date")
    for rule in ("min", "max"):
        value = getattr(field, rule)
        if value is not None and not math.isfinite(value):
            raise FormProblem(f"{rule} must be a finite number.", f"{where}.{rule}")
    if field.min is not None and field.max is not None and field.min > field.max:
        raise FormProblem("min is above max.", f"{where}.min")


def check_definition(definition: FormDefinition, where: str = "$") -> None:
    """Raise :class:`FormProblem` where ``definition`` breaks a rule its types cannot state:
    texts in exactly its languages, distinct ids, rules that fit each question's kind."""
    languages = set(definition.languages)
    if len(languages) != len(definition.languages):
        raise FormProblem("A language is listed twice.", f"{where}.languages")
    _check_text(definition.title, languages, f"{where}.title")
    _check_text(definition.description, languages, f"{where}.description")
    seen: set[str] = set()
    for i, field in enumerate(definition.fields):
        if field.id in seen:
            raise FormProblem("Question ids must differ.", f"{where}.fields[{i}].id")
        seen.add(field.id)
        _check_field(field, languages, f"{where}.fields[{i}]")


# --- answers -----------------------------------------------------------------------------


def _max_length(field: FormField) -> int:
    if field.max_length is not None:
        return field.max_length
    return DEFAULT_TEXT_CHARS if field.kind == FieldKind.TEXT else DEFAULT_LONG_TEXT_CHARS


def _is_blank(value: Answer) -> bool:
    return value is None or value == "" or value == []


def _check_answer(field: FormField, value: Answer, where: str) -> Answer:
    """The answer in its canonical form, or a :class:`FormProblem`."""
    kind = field.kind
    if kind in _TEXTS:
        if not isinstance(value, str):
            raise FormProblem("Answer with text.", where)
        if "\x00" in value:
            raise FormProblem("The text holds a character that cannot be stored.", where)
        if kind == FieldKind.TEXT and ("\n" in value or "\r" in value):
            raise FormProblem("Answer on one line.", where)
        if len(value) > _max_length(field):
            raise FormProblem(f"Answer in at most {_max_length(field)} characters.", where)
        if field.min_length is not None and len(value) < field.min_length:
            raise FormProblem(f"Answer in at least {field.min_length} characters.", where)
        return value
    if kind == FieldKind.SINGLE_CHOICE:
        if not isinstance(value, str) or value not in {o.id for o in field.options}:
            raise FormProblem("Choose one of the options.", where)
        return value
    if kind == FieldKind.MULTIPLE_CHOICE:
        ids = {o.id for o in field.options}
        if not isinstance(value, list) or not all(v in ids for v in value):
            raise FormProblem("Choose among the options.", where)
        if len(set(value)) != len(value):
            raise FormProblem("An option is chosen twice.", where)
        if field.min_choices is not None and len(value) < field.min_choices:
            raise FormProblem(f"Choose at least {field.min_choices}.", where)
        if field.max_choices is not None and len(value) > field.max_choices:
            raise FormProblem(f"Choose at most {field.max_choices}.", where)
        return sorted(value)
    if kind == FieldKind.DATE:
        day = _date(value)
        if day is None:
            raise FormProblem("Give a date as YYYY-MM-DD.", where)
        if (field.min_date and day < field.min_date) or (field.max_date and day > field.max_date):
            raise FormProblem("The date is outside the allowed range.", where)
        return day.isoformat()
    if kind == FieldKind.CONSENT:
        if not isinstance(value, bool):
            raise FormProblem("Answer yes (true) or no (false).", where)
        return value
    # A number; bool is an int to Python, and never a number to a form.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FormProblem("Answer with a number.", where)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if field.integer and not isinstance(value, int):
        raise FormProblem("Answer with a whole number.", where)
    if (field.min is not None and value < field.min) or (
        field.max is not None and value > field.max
    ):
        raise FormProblem("The number is outside the allowed range.", where)
    return value


def _date(value: Answer) -> dt.date | None:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def check_answers(
    definition: FormDefinition, answers: Mapping[str, Answer], *, complete: bool
) -> dict[str, Answer]:
    """``answers`` in canonical form (blank answers left out, multiple choices sorted, whole
    floats as integers), or a :class:`FormProblem` naming the first wrong answer as
    ``$.answers.<id>``. ``complete``: a submission, where every required question needs an
    answer; a draft may leave any out."""
    fields = {f.id: f for f in definition.fields}
    for key in sorted(answers):
        if key not in fields:
            raise FormProblem("The form has no such question.", f"$.answers.{key}")
    checked: dict[str, Answer] = {}
    for field in definition.fields:
        value = answers.get(field.id)
        where = f"$.answers.{field.id}"
        if _is_blank(value):
            if complete and field.required:
                raise FormProblem("This question must be answered.", where)
            continue
        checked[field.id] = _check_answer(field, value, where)
    return checked


def answers_hash(
    request_id: int, pupil_id: int, version: int, answers: Mapping[str, Answer]
) -> str:
    """SHA-256 (hex) of the canonical answers bound to their request, pupil and definition
    version: the JSON object ``{"answers": ..., "pupil": ..., "request": ..., "version": ...}``
    with keys sorted at every level and no spaces. ``answers`` must be canonical
    (:func:`check_answers`), so that equal answers always give one hash."""
    document = {
        "answers": dict(answers),
        "pupil": pupil_id,
        "request": request_id,
        "version": version,
    }
    return hashlib.sha256(msgspec.json.encode(document, order="sorted")).hexdigest()


# --- status ------------------------------------------------------------------------------


def response_status(
    *,
    saved: bool,
    submitted: bool,
    signers: Iterable[int],
    custodians: Iterable[int],
    rule: SigningRule,
) -> tuple[ResponseStatus, int, int]:
    """(status, signatures that count, signatures needed) of a response.

    ``signers``: the people with a valid signature over the current answers; ``custodians``:
    the pupil's custodial guardians now. Only a current custodian's signature counts, so a
    guardianship that ends takes its signature's weight with it.
    """
    custody = set(custodians)
    valid = set(signers) & custody
    needed = max(len(custody), 1) if rule == SigningRule.ALL_CUSTODIANS else 1
    if not submitted:
        return (ResponseStatus.DRAFT if saved else ResponseStatus.NOT_OPENED), 0, needed
    if rule == SigningRule.ANY_CUSTODIAN:
        if valid:
            return ResponseStatus.COMPLETE, 1, needed
        return ResponseStatus.SUBMITTED, 0, needed
    if custody and custody <= valid:
        return ResponseStatus.COMPLETE, len(valid), needed
    if valid:
        return ResponseStatus.PARTLY_SIGNED, len(valid), needed
    return ResponseStatus.SUBMITTED, 0, needed
