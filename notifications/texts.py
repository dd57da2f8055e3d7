"""What a notification says, in the reader's language (``fi``, ``sv``, ``en``).

The delivery worker picks the language per recipient (``server/language.py``: chosen, else
the roster's, else English) and fills in these templates. A bulletin's title and body are
the staff's own words and go as written; a message's push names only its sender.
"""

from __future__ import annotations

PUSH_TEXTS: dict[str, dict[str, str]] = {
    "fi": {
        "digest": "{count} uutta",
        "message": "Uusi viesti lähettäjältä {sender}",
        "absence_title": "Poissaolo",
        "absence_body": "{name} merkittiin tänään poissaolevaksi ({subject} {starts}). "
        "Jos tiedät syyn, selvitä se Repussa.",
        "change_title": "Lukujärjestysmuutos",
        "change_cancelled": "{subject} {day}: peruttu",
        "change_changed": "{subject} {day}: muuttunut",
        "form_due": "Lomakkeen määräpäivä on huomenna",
    },
    "sv": {
        "digest": "{count} nya",
        "message": "Nytt meddelande från {sender}",
        "absence_title": "Frånvaro",
        "absence_body": "{name} markerades frånvarande i dag ({subject} {starts}). "
        "Om du vet varför, förklara det i Reppu.",
        "change_title": "Schemaändring",
        "change_cancelled": "{subject} {day}: inställd",
        "change_changed": "{subject} {day}: ändrad",
        "form_due": "Blanketten ska lämnas in i morgon",
    },
    "en": {
        "digest": "{count} new",
        "message": "New message from {sender}",
        "absence_title": "Absence",
        "absence_body": "{name} was marked absent today ({subject} {starts}). "
        "If you know why, explain it in Reppu.",
        "change_title": "Timetable change",
        "change_cancelled": "{subject} on {day}: cancelled",
        "change_changed": "{subject} on {day}: changed",
        "form_due": "Form due tomorrow",
    },
}


def push_text(language: str, key: str, **values: object) -> str:
    """The template ``key`` in ``language`` (English for a language not in the catalogue)."""
    return PUSH_TEXTS.get(language, PUSH_TEXTS["en"])[key].format(**values)
