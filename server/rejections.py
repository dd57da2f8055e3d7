"""Why a mutation was rejected, in words its sender can read: Finnish, Swedish or English.

A rejection's ``code`` is the stable part a client branches on; its ``reason`` is shown to the
person as it is. So a reason is a plain sentence in the person's language (chosen, else
``person.language``; a language other than fi, sv and en gets English: ``server/language.py``),
never a decoder's message such as ``Expected `str` matching regex '^[^\\x00]*$'``. Where the problem
is stays in ``field``.

Handlers refuse with their own English sentences, written for people; an English speaker sees
those. Other languages get the sentence of the rejection's code from :data:`TEXTS`. A value
that does not fit a mutation's args type is described by the kind of problem (missing,
unknown, too long, out of range, not valid), read from msgspec's error.
"""

from __future__ import annotations

import re
from enum import StrEnum

import msgspec

from schemas.sync import MutationCode
from server.language import effective_language

LANGUAGES = ("fi", "sv", "en")
FALLBACK = "en"


class Reason(StrEnum):
    """The sentences a rejection's reason is made of."""

    UNKNOWN_MUTATION = "unknown_mutation"
    UNREADABLE = "unreadable"
    BAD_TIME = "bad_time"
    MISSING = "missing"
    UNKNOWN_FIELD = "unknown_field"
    TOO_LONG = "too_long"
    TOO_SHORT = "too_short"
    OUT_OF_RANGE = "out_of_range"
    NOT_VALID = "not_valid"
    UNSTORABLE = "unstorable"
    OUT_OF_ORDER = "out_of_order"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    TOO_LATE = "too_late"
    CONFLICT = "conflict"


TEXTS: dict[Reason, dict[str, str]] = {
    Reason.UNKNOWN_MUTATION: {
        "fi": "Sovellus pyysi jotain, mitä palvelin ei tunne. Päivitä sovellus.",
        "sv": "Appen bad om något som servern inte känner till. Uppdatera appen.",
        "en": "The app asked for something this server does not know. Update the app.",
    },
    Reason.UNREADABLE: {
        "fi": "Tätä muutosta ei voi lukea. Päivitä sovellus.",
        "sv": "Den här ändringen kan inte läsas. Uppdatera appen.",
        "en": "This change cannot be read. Update the app.",
    },
    Reason.BAD_TIME: {
        "fi": "Muutoksen ajankohta ei ole mahdollinen. Tarkista laitteen kello.",
        "sv": "Tidpunkten för ändringen är inte möjlig. Kontrollera enhetens klocka.",
        "en": "The time of this change is not a possible time. Check the device's clock.",
    },
    Reason.MISSING: {
        "fi": "Jotain pakollista puuttuu.",
        "sv": "Något obligatoriskt saknas.",
        "en": "Something required is missing.",
    },
    Reason.UNKNOWN_FIELD: {
        "fi": "Muutoksessa on jotain, mitä palvelin ei tunne. Päivitä sovellus.",
        "sv": "Ändringen innehåller något som servern inte känner till. Uppdatera appen.",
        "en": "The change holds something this server does not know. Update the app.",
    },
    Reason.TOO_LONG: {
        "fi": "Jokin teksti tai luettelo on liian pitkä.",
        "sv": "En text eller lista är för lång.",
        "en": "A text or a list is too long.",
    },
    Reason.TOO_SHORT: {
        "fi": "Jokin teksti tai luettelo on liian lyhyt tai tyhjä.",
        "sv": "En text eller lista är för kort eller tom.",
        "en": "A text or a list is too short or empty.",
    },
    Reason.OUT_OF_RANGE: {
        "fi": "Jokin luku on liian pieni tai liian suuri.",
        "sv": "Ett tal är för litet eller för stort.",
        "en": "A number is too small or too large.",
    },
    Reason.NOT_VALID: {
        "fi": "Jokin arvo ei kelpaa.",
        "sv": "Ett värde är inte giltigt.",
        "en": "A value is not valid.",
    },
    Reason.UNSTORABLE: {
        "fi": "Jotain tämän muutoksen arvoa ei voi tallentaa.",
        "sv": "Ett värde i ändringen kan inte sparas.",
        "en": "A value of this change cannot be stored.",
    },
    Reason.OUT_OF_ORDER: {
        "fi": "Aiempi muutos ei ole vielä tullut perille; se lähetetään ensin.",
        "sv": "En tidigare ändring har inte kommit fram ännu; den skickas först.",
        "en": "An earlier change has not arrived yet; it is sent first.",
    },
    Reason.FORBIDDEN: {
        "fi": "Sinulla ei ole oikeutta tähän.",
        "sv": "Du har inte rätt att göra detta.",
        "en": "You may not do this.",
    },
    Reason.NOT_FOUND: {
        "fi": "Sitä, mihin muutos viittaa, ei ole (enää) olemassa.",
        "sv": "Det som ändringen gäller finns inte (längre).",
        "en": "What this change refers to does not exist (any more).",
    },
    Reason.TOO_LATE: {
        "fi": "Tämän aika on jo mennyt.",
        "sv": "Tiden för detta har gått ut.",
        "en": "The time for this has passed.",
    },
    Reason.CONFLICT: {
        "fi": "Jokin muuttui välillä. Tarkista tilanne ja yritä uudelleen.",
        "sv": "Något har ändrats under tiden. Kontrollera och försök igen.",
        "en": "Something changed in the meantime. Check and try again.",
    },
}

_BY_CODE: dict[MutationCode, Reason] = {
    MutationCode.UNKNOWN: Reason.UNKNOWN_MUTATION,
    MutationCode.INVALID_ARGS: Reason.NOT_VALID,
    MutationCode.FORBIDDEN: Reason.FORBIDDEN,
    MutationCode.NOT_FOUND: Reason.NOT_FOUND,
    MutationCode.OUT_OF_ORDER: Reason.OUT_OF_ORDER,
    MutationCode.TOO_LATE: Reason.TOO_LATE,
    MutationCode.CONFLICT: Reason.CONFLICT,
}


def language_of(person_language: str | None) -> str:
    """The language reasons are given in: the person's, if it is one of ours, else English."""
    return effective_language(None, person_language)


def say(reason: Reason, language: str) -> str:
    """``reason`` in ``language`` (one of :data:`LANGUAGES`, English otherwise)."""
    texts = TEXTS[reason]
    return texts.get(language, texts[FALLBACK])


def handler_reason(code: MutationCode, sentence: str, language: str) -> str:
    """A handler's own refusal: its English sentence for English, else its code's sentence."""
    if language == "en":
        return sentence
    return say(_BY_CODE[code], language)


# msgspec's messages for a value that does not fit a type, by kind of problem. The message is
# only read to choose a sentence; it is never shown.
_KINDS: tuple[tuple[re.Pattern[str], Reason], ...] = (
    (re.compile(r"missing required field"), Reason.MISSING),
    (re.compile(r"unknown field"), Reason.UNKNOWN_FIELD),
    (re.compile(r"of length <"), Reason.TOO_LONG),
    (re.compile(r"of length >"), Reason.TOO_SHORT),
    (re.compile(r"^Expected `(?:int|float|number)` [<>]"), Reason.OUT_OF_RANGE),
    (re.compile(r"out of range"), Reason.OUT_OF_RANGE),
)


def invalid_value(exc: msgspec.ValidationError) -> tuple[Reason, str | None]:
    """The kind of problem msgspec found, and where (a JSON path into the value), if it says."""
    message, _, path = str(exc).partition(" - at `")
    field = path.rstrip("`") or None
    if match := re.search(r"(?:unknown|required) field `([^`]+)`", message):
        field = f"{field or '$'}.{match.group(1)}"
    for pattern, reason in _KINDS:
        if pattern.search(message):
            return reason, field
    return Reason.NOT_VALID, field
