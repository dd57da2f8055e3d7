"""People as one person sees another through the access policy."""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas.core import GuardianshipKind, Role

UILanguage = Literal["fi", "sv", "en"]
"""The languages Reppu is written in."""


class ContactDetails(msgspec.Struct, omit_defaults=True):
    email: str | None = None
    phone: str | None = None
    street_address: str | None = None


class PersonCard(msgspec.Struct, omit_defaults=True):
    """A person as the viewer may see them. ``contact`` is absent where the policy refuses it."""

    id: int
    given_name: str
    family_name: str
    language: str
    contact: ContactDetails | None = None


class LanguageIn(msgspec.Struct, forbid_unknown_fields=True):
    """``PUT /me/language``: the language the caller chooses to read Reppu in."""

    language: UILanguage


class LanguageSetting(msgspec.Struct):
    """Which language the caller reads Reppu in, and why (``server/language.py``)."""

    language: UILanguage = "en"
    """The effective language: push texts, rejection reasons and calendar titles use it."""
    chosen: UILanguage | None = None
    """What the person chose (``PUT /me/language``), or None if they have not."""
    roster: str = ""
    """What the school's records say (ISO 639: ``fi``, ``sv``, ``ar`` ...), maybe a language
    Reppu does not have."""
    roster_supported: bool = False
    """Whether Reppu has the roster's language; if not, ``language`` is English until the
    person chooses."""


class Child(msgspec.Struct):
    person: PersonCard
    guardianship: GuardianshipKind
    group_ids: list[int] = []
    """The child's groups today: the app shows each child's timetable from these."""


class Me(msgspec.Struct):
    """Who is logged in, what they are today, and what they may read."""

    person: PersonCard
    roles: list[Role]
    children: list[Child]
    partitions: list[str]
    """Names (``kind:id``) of the partitions this person may read today."""
    language: LanguageSetting = msgspec.field(default_factory=LanguageSetting)
    """The language the person reads Reppu in, chosen or from the roster."""
    pupil_conversation_schools: list[int] = []
    """The schools where this person, as a pupil, may start a conversation with the teachers
    and principals: those whose rules allow it (``pupils_start_conversations``). The app
    offers "New message" to a pupil only there; staff and guardians may start one anyway."""


class Health(msgspec.Struct):
    status: str
    database: str
    """``sqlite`` or ``postgresql``."""
    schema_version: str | None
    """The newest applied migration; None before ``reppu migrate``."""


class Readiness(msgspec.Struct):
    """``GET /health/ready`` when the server can do its whole job (else 503)."""

    status: str
    """``ready``."""
    database: str
    """``sqlite`` or ``postgresql``."""
    schema_version: str
    """The newest applied migration: the newest the code knows."""
    workers_alive: int
    """Delivery workers whose heartbeat is recent (at least one)."""
