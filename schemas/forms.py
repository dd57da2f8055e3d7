"""Forms: shareable definitions, requests to a group's guardians, responses and signatures.

``docs/forms.md`` explains the model. In short:

- A **definition** is data: questions of seven kinds, required flags, validation rules, text
  in several languages and a signing rule. It is exported and imported as JSON (the
  :class:`FormDefinition` document), so one municipality can hand its forms to another. Each
  stored definition has a ``version``; a new version of the same ``key`` is a new row, and an
  old version never changes.
- A **request** sends one definition version to the guardians of a group's pupils (all of
  them or chosen ones) with a due date. It syncs to each of those pupils' ``person:``
  partition, with the definition inside, so the form can be filled offline.
- A **response** is one pupil's answers, made by custodial guardians through ``form.save``
  (a draft), ``form.submit`` and ``form.sign``. It syncs to the pupil's ``person:`` partition.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

import msgspec

from schemas.core import MAX_ID, NO_NUL, Id

MAX_FIELDS = 100
MAX_OPTIONS = 50
MAX_LABEL_CHARS = 500
MAX_TEXT_CHARS = 1_000
"""The longest a ``text`` answer may ever be (a definition may set a lower ``max_length``)."""
MAX_LONG_TEXT_CHARS = 10_000
"""The longest a ``long_text`` answer may ever be."""
DEFAULT_TEXT_CHARS = 200
DEFAULT_LONG_TEXT_CHARS = 4_000
MAX_REQUEST_PUPILS = 1_000
MAX_DEFINITION_BYTES = 64_000
"""The largest a definition may be as JSON: every request carries it to every pupil's partition."""

Language = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}$")]
"""An ISO 639 code: ``fi``, ``sv``, ``en``, ``se`` (Northern Sámi), ..."""
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_LABEL_CHARS, pattern=NO_NUL)]
LocalText = Annotated[dict[Language, Label], msgspec.Meta(min_length=1, max_length=20)]
"""The same text in each of the definition's languages: ``{"fi": "...", "sv": "..."}``."""
FieldId = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
"""A question's id within its definition: lower-case letters, digits and ``_``."""
FormKey = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,59}$")]


class FieldKind(StrEnum):
    """The kinds of question, and the JSON value each one's answer is."""

    TEXT = "text"
    """One line: a string of at most ``max_length`` characters (no line breaks)."""
    LONG_TEXT = "long_text"
    """Several lines: a string of at most ``max_length`` characters."""
    SINGLE_CHOICE = "single_choice"
    """The ``id`` of one of the options."""
    MULTIPLE_CHOICE = "multiple_choice"
    """A list of distinct option ids, between ``min_choices`` and ``max_choices`` of them."""
    DATE = "date"
    """An ISO date string, ``2026-12-01``, between ``min_date`` and ``max_date``."""
    CONSENT = "consent"
    """``true`` (yes, I consent) or ``false`` (no)."""
    NUMBER = "number"
    """A JSON number between ``min`` and ``max`` (a whole number where ``integer``)."""


class SigningRule(StrEnum):
    """Whose signatures make a response complete. Only custodial guardians ever sign: a
    guardian with a right to information only reads the form and its answers, never signs."""

    ANY_CUSTODIAN = "any_custodian"
    """One custodial guardian's signature is enough."""
    ALL_CUSTODIANS = "all_custodians"
    """Every current custodial guardian of the pupil must sign."""


class ChoiceOption(msgspec.Struct, forbid_unknown_fields=True):
    id: FieldId
    label: LocalText


class FormField(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One question. Rules that do not apply to its ``kind`` must be left out."""

    id: FieldId
    kind: FieldKind
    label: LocalText
    help: LocalText | None = None
    required: bool = False
    """A submitted response must answer it (a consent: yes or no, either counts)."""
    max_length: Annotated[int, msgspec.Meta(ge=1, le=MAX_LONG_TEXT_CHARS)] | None = None
    """Texts: the longest answer (default 200 for ``text``, 4,000 for ``long_text``)."""
    min_length: Annotated[int, msgspec.Meta(ge=1, le=MAX_LONG_TEXT_CHARS)] | None = None
    options: Annotated[list[ChoiceOption], msgspec.Meta(max_length=MAX_OPTIONS)] = []
    """Choices: at least two, with distinct ids."""
    min_choices: Annotated[int, msgspec.Meta(ge=0, le=MAX_OPTIONS)] | None = None
    max_choices: Annotated[int, msgspec.Meta(ge=1, le=MAX_OPTIONS)] | None = None
    min_date: dt.date | None = None
    max_date: dt.date | None = None
    min: float | None = None
    max: float | None = None
    integer: bool = False
    """Numbers: only whole numbers."""


class FormDefinition(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A form as shareable data: what ``GET /forms/definitions/{id}`` exports and
    ``POST /forms/definitions`` imports. Every text has every language of ``languages``."""

    key: FormKey
    """A stable name for the form across versions: ``retkilupa``, ``kuvauslupa``."""
    languages: Annotated[list[Language], msgspec.Meta(min_length=1, max_length=20)]
    """The languages its texts are in; the first is shown where a reader's is missing."""
    title: LocalText
    signing: SigningRule
    fields: Annotated[list[FormField], msgspec.Meta(min_length=1, max_length=MAX_FIELDS)]
    description: LocalText | None = None


class DefinitionIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /forms/definitions``: store ``definition`` as the next version of its ``key`` at
    ``organisation_id`` (a school: its principals; a municipality: its admins)."""

    organisation_id: Id
    definition: FormDefinition


class DefinitionOut(msgspec.Struct):
    id: int
    organisation_id: int
    key: str
    version: int
    """1 for a key's first definition at an organisation, then 2, 3, ..."""
    created_at: dt.datetime
    definition: FormDefinition


class DefinitionSummary(msgspec.Struct):
    id: int
    organisation_id: int
    key: str
    version: int
    title: LocalText
    created_at: dt.datetime


# --- synced records ----------------------------------------------------------------------


class FormRequestRecord(msgspec.Struct, tag_field="type", tag="form_request", omit_defaults=True):
    """A form sent to the guardians of some of a group's pupils; synced to each of those
    pupils' ``person:`` partition and to the group's staff (``group-staff:<g>``). It never
    lists the pupils: families do not learn of one another through it."""

    id: int
    v: int
    definition_id: int
    definition_version: int
    definition: FormDefinition
    school_id: int
    group_id: int
    sender_id: int
    sender_name: str
    sent_at: dt.datetime
    due_on: dt.date
    """The last day (Helsinki) on which a response may be saved, submitted or signed."""
    note: str | None = None


class ResponseStatus(StrEnum):
    NOT_OPENED = "not_opened"
    """No guardian has saved or submitted anything."""
    DRAFT = "draft"
    """A draft was saved; not submitted."""
    SUBMITTED = "submitted"
    """Submitted, and no valid signature yet."""
    PARTLY_SIGNED = "partly_signed"
    """Every custodial guardian must sign, and some have (``signed`` of ``needed``)."""
    COMPLETE = "complete"
    """Submitted and signed as the definition's signing rule asks."""


Answer = str | int | float | bool | list[str] | None
"""One answer; its JSON type follows the question's kind (:class:`FieldKind`). None (or
leaving the question out) is no answer."""
Answers = Annotated[dict[FieldId, Answer], msgspec.Meta(max_length=MAX_FIELDS)]


class Signature(msgspec.Struct):
    signer_id: int
    signer_name: str
    signed_at: dt.datetime
    """When the signer signed, by their device's clock (clamped by the server)."""
    answers_hash: str


class FormResponseRecord(msgspec.Struct, tag_field="type", tag="form_response", omit_defaults=True):
    """One pupil's response to a request; made for every pupil when the request is sent
    (``not_opened``) and synced to that pupil's ``person:`` partition."""

    id: int
    v: int
    request_id: int
    pupil_id: int
    status: ResponseStatus
    needed: int
    """Signatures that make it complete (the pupil's custodial guardians under
    ``all_custodians``, else 1), as of the last change."""
    signed: int = 0
    """Valid signatures that count towards ``needed``."""
    definition_version: int | None = None
    answers: dict[str, Answer] = {}
    answers_hash: str | None = None
    """SHA-256 (hex) of the canonical answers (``docs/forms.md``): what a signature covers."""
    saved_at: dt.datetime | None = None
    submitted_at: dt.datetime | None = None
    submitted_by_id: int | None = None
    submitted_by_name: str | None = None
    signatures: list[Signature] = []
    """Valid signatures only: a signature over answers that changed since is void."""


# --- mutation args -----------------------------------------------------------------------


class FormRequestArgs(msgspec.Struct, forbid_unknown_fields=True):
    """``form.request``: send definition ``definition_id`` to the guardians of the current
    pupils of ``group_id`` (or of ``pupil_ids`` among them), due on ``due_on``.

    The group's teachers, the school's principals and the city's admins may; the definition
    must belong to the group's school or its municipality."""

    definition_id: Id
    group_id: Id
    due_on: dt.date
    pupil_ids: Annotated[list[Id], msgspec.Meta(max_length=MAX_REQUEST_PUPILS)] = []
    """Chosen pupils of the group; empty: all of its current pupils."""
    note: Annotated[str, msgspec.Meta(max_length=2_000, pattern=NO_NUL)] | None = None


class FormAnswerArgs(msgspec.Struct, forbid_unknown_fields=True):
    """``form.save`` (a draft: only what is given is checked, nothing is required) and
    ``form.submit`` (checked in full against the definition): custodial guardians only."""

    request_id: Id
    pupil_id: Id
    definition_version: Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
    """The version of the definition the answers were filled for."""
    answers: Answers


class FormSignArgs(msgspec.Struct, forbid_unknown_fields=True):
    """``form.sign``: a custodial guardian signs the answers they saw, which must still be
    the response's answers (else ``mutation.conflict``)."""

    request_id: Id
    pupil_id: Id
    definition_version: Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
    answers: Answers


# --- staff views -------------------------------------------------------------------------


class PupilFormStatus(msgspec.Struct, omit_defaults=True):
    pupil_id: int
    name: str
    status: ResponseStatus
    signed: int
    needed: int
    submitted_at: dt.datetime | None = None


class FormRequestStatus(msgspec.Struct):
    """``GET /forms/requests/{id}/status``: each pupil's response, in name order."""

    request_id: int
    definition_id: int
    definition_version: int
    group_id: int
    due_on: dt.date
    counts: dict[str, int]
    """Pupils per :class:`ResponseStatus`."""
    pupils: list[PupilFormStatus]
