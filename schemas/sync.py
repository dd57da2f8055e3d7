"""The sync protocol's messages. ``docs/sync-protocol.md`` explains them with examples.

Records are typed by a tagged union (``type``); changes are typed by another (``op``). Both
evolve by msgspec's rules: a new field gets a default and goes last, nothing is reordered or
retyped, so an older client decodes what a newer server sends. A client states the
``schema_version`` it speaks; the server serves every version from ``MIN_SCHEMA_VERSION``
to ``SCHEMA_VERSION`` and refuses older ones with ``sync.update_required``.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

import msgspec

from schemas.absences import AttendanceRecord, NoticeRecord, RosterRecord
from schemas.core import NO_NUL, GroupKind, Id
from schemas.forms import FormRequestRecord, FormResponseRecord
from schemas.messages import BulletinRecord, MessageRecord, ReceiptRecord, ThreadRecord

SCHEMA_VERSION = 2
"""The newest protocol version this code speaks. Version 2 added ``PullRequest.check``."""
MIN_SCHEMA_VERSION = 1
"""The oldest version still served."""

MAX_PAGE_RECORDS = 1000
"""The most changes one pull answer carries, whatever the client asks for."""
DEFAULT_PAGE_RECORDS = 500
MAX_CHECK = 500
"""The most partitions one pull may ask to ``check``."""


class GroupRecord(msgspec.Struct, tag_field="type", tag="group", omit_defaults=True):
    """A group, as its members see it."""

    id: int
    v: int
    """The record's version: changes whenever the record does."""
    name: str
    kind: GroupKind
    school_id: int
    school_name: str
    grade: int | None = None
    subject: str | None = None


class LessonRecord(msgspec.Struct, tag_field="type", tag="lesson", omit_defaults=True):
    """A recurring weekly lesson: every ``weekday`` from ``valid_from`` to ``valid_to``."""

    id: int
    v: int
    group_id: int
    subject: str
    weekday: int
    """ISO weekday: 1 is Monday."""
    starts_at: dt.time
    """Local time (Europe/Helsinki), as is every time of day."""
    ends_at: dt.time
    valid_from: dt.date
    """The first day of the weekly plan."""
    valid_to: dt.date | None = None
    """The last day of the weekly plan (inclusive); absent: no end set."""
    teacher_id: int | None = None
    teacher_name: str | None = None
    room: str | None = None


class LessonChangeRecord(msgspec.Struct, tag_field="type", tag="lesson_change", omit_defaults=True):
    """One dated occurrence of a lesson changed; fields left out keep the lesson's value."""

    id: int
    v: int
    lesson_id: int
    on_date: dt.date
    """The date of the one occurrence it changes."""
    cancelled: bool = False
    """The occurrence does not take place."""
    substitute_teacher_id: int | None = None
    """Who teaches it instead of the lesson's teacher."""
    substitute_teacher_name: str | None = None
    room: str | None = None
    starts_at: dt.time | None = None
    ends_at: dt.time | None = None
    note: str | None = None


Record = (
    GroupRecord
    | LessonRecord
    | LessonChangeRecord
    | ThreadRecord
    | MessageRecord
    | BulletinRecord
    | ReceiptRecord
    | AttendanceRecord
    | NoticeRecord
    | RosterRecord
    | FormRequestRecord
    | FormResponseRecord
)
RECORD_TYPES: tuple[str, ...] = (
    "group",
    "lesson",
    "lesson_change",
    "thread",
    "message",
    "bulletin",
    "receipt",
    "attendance",
    "absence_notice",
    "roster",
    "form_request",
    "form_response",
)
"""Every record type, in the order snapshots send them."""


class Upsert(msgspec.Struct, tag_field="op", tag="upsert"):
    """Store ``record`` (replacing any older version) as held by ``partition``."""

    partition: str
    """The partition that holds the record (``kind:id``)."""
    record: Record


class Delete(msgspec.Struct, tag_field="op", tag="delete"):
    """``partition`` no longer holds the record. Drop it if no other partition does."""

    partition: str
    """The partition that no longer holds the record."""
    type: str
    """The record's ``type``."""
    id: int
    """The record's ``id``: with ``type``, it names the record."""


Change = Upsert | Delete


class PartitionSummary(msgspec.Struct):
    """What the client's copy of a partition must add up to once it has applied the answer."""

    partition: str
    count: int
    """How many records the partition holds."""
    checksum: str
    """16 hex digits: the sum, modulo 2**64, of ``record_digest`` over the partition's records."""


class PullRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A pull: the changes of every readable partition since ``cursor``."""

    schema_version: int
    """The protocol version the app speaks; read before the rest of the body."""
    cursor: Annotated[str, msgspec.Meta(max_length=65536)] | None = None
    """The cursor of the last answer applied; None (or absent) for a first sync."""
    limit: Annotated[int, msgspec.Meta(ge=1)] = DEFAULT_PAGE_RECORDS
    """Most changes wanted in this answer; the server caps it at ``MAX_PAGE_RECORDS``."""
    repair: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=40)]], msgspec.Meta(max_length=500)
    ] = []
    """Partitions whose checksum did not match: the server sends them afresh."""
    check: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=40)]], msgspec.Meta(max_length=MAX_CHECK)
    ] = []
    """Partitions whose summary the client wants even if nothing in them changed (version 2):
    the answer carries the summary of each one the caller may read that is at its newest change
    after this answer. Others are left out without an error."""


class PullResponse(msgspec.Struct, omit_defaults=True):
    """A pull's answer. Empty fields are left out: "nothing new" is ``{}``."""

    cursor: str | None = None
    """Send it with the next pull, after applying this answer in one local transaction.
    Absent when it did not change: keep the cursor you sent."""
    has_more: bool = False
    """Pull again at once: the answer was cut at the page limit."""
    added: list[str] = []
    """Partitions now readable (or to be sent afresh): clear your copy of each, then apply the
    upserts that follow (a snapshot, maybe over several pages)."""
    removed: list[str] = []
    """Partitions no longer readable: drop every record no remaining partition holds."""
    changes: list[Change] = []
    """Upserts and deletions, in the order to apply them."""
    summaries: list[PartitionSummary] = []
    """Counts and checksums of the partitions this answer brought to their newest change, and
    of those asked to ``check`` (the caller may read them and they are at their newest change)."""


MAX_PUSH_MUTATIONS = 500
"""The most mutations one push may carry."""


class MutationIn(msgspec.Struct, forbid_unknown_fields=True):
    """One thing the user did, possibly offline."""

    id: Annotated[int, msgspec.Meta(ge=1, le=2**62)]
    """Sequential per client, from 1: the server applies each id once, in order."""
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=60, pattern=NO_NUL)]
    """A mutation of the catalogue (``docs/sync-protocol.md``), such as ``lesson.change``."""
    args: dict[str, object]
    occurred_at: dt.datetime
    """When it happened on the device (its clock)."""


ClientId = Annotated[str, msgspec.Meta(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class PushRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A push. The server reads the envelope (``schema_version``, ``client_id``, the list)
    strictly, but each mutation on its own: a mutation that does not fit :class:`MutationIn`
    is rejected alone (``mutation.invalid_args``) and never fails the push."""

    schema_version: int
    """As in :class:`PullRequest`."""
    client_id: ClientId
    """A random id the app makes once per installation and keeps."""
    mutations: Annotated[list[MutationIn], msgspec.Meta(max_length=MAX_PUSH_MUTATIONS)]


class VersionOnly(msgspec.Struct):
    """The one field every version of a pull or push body keeps. The server reads it before
    the rest, so that a newer app's body, with fields this server has never heard of, is
    answered ``sync.version_unknown`` ("this server is older than the app"), not
    ``request.invalid``. Anything else in the body is ignored at this step."""

    schema_version: object = None


class MutationCode(StrEnum):
    """Why a mutation was rejected. Stable strings, like the error catalogue."""

    UNKNOWN = "mutation.unknown"
    """No mutation of that name (the app is newer than the server?)."""
    INVALID_ARGS = "mutation.invalid_args"
    """The arguments do not fit the mutation; ``field`` says where."""
    FORBIDDEN = "mutation.forbidden"
    """The access policy does not let this person do this."""
    NOT_FOUND = "mutation.not_found"
    """What the mutation refers to does not exist (any more)."""
    OUT_OF_ORDER = "mutation.out_of_order"
    """An earlier id is missing; nothing was recorded, send the missing ones first."""
    TOO_LATE = "mutation.too_late"
    """The time for this has passed: a roll-call mark made after its lesson's day, a form
    answered after its due date (by the device's clock)."""
    CONFLICT = "mutation.conflict"
    """It was made on a state that has changed since: a signature over answers that were
    changed after the signer saw them. Show the user the new state and ask again."""


class MutationStatus(StrEnum):
    """What became of a mutation. A new value would be a protocol version of its own."""

    APPLIED = "applied"
    """Recorded; its effects come back through pull."""
    REJECTED = "rejected"
    """Not recorded; ``code`` says why. Only ``mutation.out_of_order`` stays in the outbox."""


class MutationResult(msgspec.Struct, omit_defaults=True):
    id: int
    """The mutation's id. A mutation whose id is not an id (not an integer from 1 to 2**62)
    takes no place in the sequence: it is answered with the id as sent if that is an
    integer, else 0, rejected, and not recorded."""
    status: MutationStatus
    """``applied`` or ``rejected``. A replayed id gets the answer it got the first time."""
    code: MutationCode | None = None
    """Why it was rejected (absent when applied): branch on this, never on ``reason``."""
    reason: str | None = None
    """A sentence the user can read."""
    field: str | None = None
    """Which input was wrong: a JSON path into ``args`` (``$.on_date``), or ``$.occurred_at``,
    ``$.name`` or ``$.id``."""


class PushResponse(msgspec.Struct):
    """A push's answer."""

    results: list[MutationResult]
    """One per mutation sent, in the same order."""


class LessonChangeArgs(msgspec.Struct, forbid_unknown_fields=True):
    """``lesson.change``: set how one occurrence of a lesson differs (replacing any earlier)."""

    lesson_id: Id
    on_date: dt.date
    cancelled: bool = False
    substitute_teacher_id: Id | None = None
    room: Annotated[str, msgspec.Meta(max_length=40, pattern=NO_NUL)] | None = None
    starts_at: dt.time | None = None
    ends_at: dt.time | None = None
    note: Annotated[str, msgspec.Meta(max_length=200, pattern=NO_NUL)] | None = None


class LessonRestoreArgs(msgspec.Struct, forbid_unknown_fields=True):
    """``lesson.restore``: the occurrence goes back to the weekly plan."""

    lesson_id: Id
    on_date: dt.date
