"""The language a person reads Reppu in: the one they chose, else the roster's if Reppu has it,
else English.

The roster import sets ``person.language`` from the school's records (any ISO 639 code:
``fi``, ``sv``, ``ar``, ``so`` ...) and sets it again on every import. A person's own choice
(``PUT /me/language``) is kept apart in ``person.ui_language``, which no import touches, so
the next night's roster does not undo it. Reppu is written in Finnish, Swedish and English
only; a person whose records say another language (an Arabic-speaking guardian) reads English
until they choose, because English is the language most such families in Finnish schools
share with the school, and it is what rejection reasons and calendar feeds already fell back
to.
"""

from __future__ import annotations

from typing import get_args

from schemas.people import UILanguage

LANGUAGES: tuple[str, ...] = get_args(UILanguage)
FALLBACK: UILanguage = "en"
_OURS: dict[str, UILanguage] = {"fi": "fi", "sv": "sv", "en": "en"}


def supported(language: str | None) -> UILanguage | None:
    """``language`` as one of Reppu's (``sv-FI`` is ``sv``), or None if Reppu lacks it."""
    return _OURS.get((language or "").strip().lower().split("-")[0])


def effective_language(chosen: str | None, roster: str | None) -> UILanguage:
    """The language texts for this person are written in: chosen, else roster's, else English."""
    return supported(chosen) or supported(roster) or FALLBACK


EFFECTIVE_SQL = "COALESCE({alias}.ui_language, {alias}.language)"
"""The same choice in SQL, for queries that read many people at once; the result still goes
through :func:`effective_language` (a roster's ``ar`` comes out as English there)."""
