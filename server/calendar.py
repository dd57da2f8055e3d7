"""Timetable calendar feeds: making and revoking secret feed URLs, and loading what a feed
shows. The feed's text is built by the pure ``sync/calendar.py``; ``docs/calendar.md`` says
what is in it.

A feed's URL carries a 256-bit token; the database keeps only its HMAC-SHA-256 under the
settings' secret key (as for bearer tokens, ``server/identity.py``). The token is a
password in a URL, so it is kept out of the logs: :class:`RedactFeedTokens` rewrites
uvicorn's access log lines, and the error log names the path redacted.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
from piccolo.engine.base import Engine

from schemas.calendar import FeedOut
from schemas.core import MembershipRole
from server.access import load_access_facts, load_group_refs
from server.clock import utc_now
from server.db.calendar_tables import CalendarFeed
from server.db.engine import write_transaction
from server.db.tables import Lesson, LessonChange, SchoolGroup, Term
from server.identity import token_digest
from server.language import effective_language
from server.messaging import names
from server.settings import Settings
from sync.calendar import (
    Feed,
    FeedChange,
    FeedLesson,
    Span,
    build_feed,
    dump_state,
    may_hold_feed,
    read_state,
    redact_feed_paths,
)
from sync.policy import AccessFacts, Action, OccurrenceRef, decide

MAX_FEEDS_PER_PERSON = 20
"""Live feeds one person may hold: a family's children and a spare or two, not a leak."""

_state_decoder = msgspec.json.Decoder(dict[str, list[int | str]])


# --- feeds of a person ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewFeed:
    id: int
    token: str
    created_at: dt.datetime


async def _facts(*person_ids: int) -> dict[int, AccessFacts]:
    return await load_access_facts(person_ids)


async def may_hold(owner_id: int, subject_id: int, day: dt.date) -> bool:
    """Whether the owner may hold a feed of the subject today (``sync.calendar.may_hold_feed``)."""
    facts = await _facts(owner_id, subject_id)
    owner = facts.get(owner_id, AccessFacts(owner_id))
    subject = facts.get(subject_id)
    return subject is not None and bool(may_hold_feed(owner, subject, day))


async def live_feed_count(owner_id: int) -> int:
    return int(
        await CalendarFeed.count().where(
            (CalendarFeed.owner == owner_id) & CalendarFeed.revoked_at.is_null()
        )
    )


async def create_feed(
    engine: Engine[Any], settings: Settings, owner_id: int, subject_id: int
) -> NewFeed:
    """A new feed of ``subject_id``'s timetable for ``owner_id``; the caller has checked
    :func:`may_hold`. The token is returned once and never stored."""
    token = secrets.token_urlsafe(32)
    now = utc_now()
    async with write_transaction(engine):
        row = CalendarFeed(
            owner=owner_id,
            subject=subject_id,
            token_hash=token_digest(settings, token),
            created_at=now,
        )
        await row.save()
    return NewFeed(id=int(row.id), token=token, created_at=now)


async def list_feeds(owner_id: int) -> list[FeedOut]:
    """The owner's live feeds, oldest first, without tokens."""
    rows = (
        await CalendarFeed.select(CalendarFeed.id, CalendarFeed.subject, CalendarFeed.created_at)
        .where((CalendarFeed.owner == owner_id) & CalendarFeed.revoked_at.is_null())
        .order_by(CalendarFeed.id)
    )
    people = await names(r["subject"] for r in rows)
    return [
        FeedOut(
            id=r["id"],
            person_id=r["subject"],
            person_name=people.get(r["subject"], ""),
            created_at=r["created_at"],
        )
        for r in rows
    ]


async def revoke_feed(engine: Engine[Any], owner_id: int, feed_id: int) -> bool:
    """Revoke one of the owner's live feeds; False if there is no such feed of theirs."""
    async with write_transaction(engine):
        revoked = (
            await CalendarFeed.update(
                {CalendarFeed.revoked_at: utc_now(), CalendarFeed.state: "{}"}
            )
            .where(
                (CalendarFeed.id == feed_id)
                & (CalendarFeed.owner == owner_id)
                & CalendarFeed.revoked_at.is_null()
            )
            .returning(CalendarFeed.id)
        )
    return bool(revoked)


# --- what a feed shows ------------------------------------------------------------------------


def _intersect(*spans: Span) -> Span | None:
    first = max(s.first for s in spans)
    last = min(s.last for s in spans)
    return Span(first, last) if first <= last else None


_OPEN_END = dt.date.max


def _validity(row: dict[str, Any]) -> Span:
    return Span(row["valid_from"], row["valid_to"] or _OPEN_END)


async def _group_terms(group_ids: Iterable[int], today: dt.date) -> dict[int, Span]:
    """Each group's current term (or, between terms, the next one): its own term if it names
    one, else the term of its school or its city that holds today or comes next. A group
    whose term has ended has none."""
    ids = sorted(set(group_ids))
    if not ids:
        return {}
    groups = await SchoolGroup.select(
        SchoolGroup.id,
        SchoolGroup.term,
        SchoolGroup.school,
        SchoolGroup.school._.parent.as_alias("city"),
    ).where(SchoolGroup.id.is_in(ids))
    organisations = {g["school"] for g in groups} | {g["city"] for g in groups if g["city"]}
    named = {g["term"] for g in groups if g["term"] is not None}
    terms = await Term.select(Term.id, Term.organisation, Term.starts_on, Term.ends_on).where(
        (Term.ends_on >= today)
        & (Term.id.is_in(sorted(named) or [-1]) | Term.organisation.is_in(sorted(organisations)))
    )
    by_id = {t["id"]: t for t in terms}
    by_organisation: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for t in sorted(terms, key=lambda t: t["starts_on"]):
        by_organisation[t["organisation"]].append(t)
    found: dict[int, Span] = {}
    for g in groups:
        if g["term"] is not None:
            term = by_id.get(g["term"])
        else:
            # The school's own terms before the city's; within them the earliest that has
            # not ended (the current one, or the next between terms).
            candidates = by_organisation.get(g["school"]) or by_organisation.get(g["city"]) or []
            term = candidates[0] if candidates else None
        if term is not None:
            found[g["id"]] = Span(term["starts_on"], term["ends_on"])
    return found


_LESSON_COLUMNS = (
    Lesson.id,
    Lesson.group,
    Lesson.group._.name.as_alias("group_name"),
    Lesson.subject,
    Lesson.weekday,
    Lesson.starts_at,
    Lesson.ends_at,
    Lesson.room,
    Lesson.teacher,
    Lesson.valid_from,
    Lesson.valid_to,
)


async def timetable_of(
    subject: AccessFacts, today: dt.date
) -> tuple[list[FeedLesson], list[FeedChange]]:
    """What ``subject``'s feed shows: the lessons of the groups they are a pupil of (on the
    days of each membership), the lessons they teach, and the occurrences they stand in for,
    all within each group's current term; and the dated changes of those days."""
    person = subject.person_id
    pupil_ties = [t for t in subject.groups if t.role == MembershipRole.PUPIL]
    as_pupil = (
        await Lesson.select(*_LESSON_COLUMNS).where(
            Lesson.group.is_in(sorted({t.group_id for t in pupil_ties}))
        )
        if pupil_ties
        else []
    )
    as_teacher = await Lesson.select(*_LESSON_COLUMNS).where(Lesson.teacher == person)
    standing_in = await LessonChange.select(
        LessonChange.lesson, LessonChange.on_date, LessonChange.lesson._.group.as_alias("group")
    ).where(
        (LessonChange.substitute_teacher == person)
        & LessonChange.cancelled.eq(False)
        # No term is longer than a year: older stand-ins cannot be in a current one.
        & (LessonChange.on_date >= today - dt.timedelta(days=366))
    )
    extra_ids = sorted({r["lesson"] for r in standing_in})
    as_substitute = (
        await Lesson.select(*_LESSON_COLUMNS).where(Lesson.id.is_in(extra_ids)) if extra_ids else []
    )
    # Being named by the timetable is no tie of its own (it may outlive the job): a lesson
    # one teaches or stands in for shows only while the policy lets one read it today.
    refs = await load_group_refs(r["group"] for r in [*as_teacher, *as_substitute])
    teachers = {r["id"]: r["teacher"] for r in as_substitute}

    def readable(group_id: int, teacher_id: int | None, substitute_id: int | None) -> bool:
        ref = refs.get(group_id)
        occurrence = OccurrenceRef(ref, teacher_id, substitute_id) if ref else None
        return occurrence is not None and bool(
            decide(subject, Action.READ_LESSON, occurrence, today)
        )

    as_teacher = [r for r in as_teacher if readable(r["group"], person, None)]
    standing_in = [
        c for c in standing_in if readable(c["group"], teachers.get(c["lesson"]), person)
    ]
    kept = {c["lesson"] for c in standing_in}
    as_substitute = [r for r in as_substitute if r["id"] in kept]
    rows = {r["id"]: r for r in [*as_pupil, *as_teacher, *as_substitute]}
    terms = await _group_terms((r["group"] for r in rows.values()), today)

    spans: dict[int, list[Span]] = defaultdict(list)
    for r in as_pupil:
        term = terms.get(r["group"])
        for tie in pupil_ties:
            if term is not None and tie.group_id == r["group"]:
                validity = Span(tie.validity.valid_from, tie.validity.valid_to or _OPEN_END)
                if span := _intersect(term, _validity(r), validity):
                    spans[r["id"]].append(span)
    for r in as_teacher:
        term = terms.get(r["group"])
        if term is not None and (span := _intersect(term, _validity(r))):
            spans[r["id"]].append(span)
    for c in standing_in:
        term = terms.get(c["group"])
        day = Span(c["on_date"], c["on_date"])
        if term is not None and _intersect(term, _validity(rows[c["lesson"]]), day):
            spans[c["lesson"]].append(day)

    people = await names(
        r["teacher"] for r in rows.values() if r["id"] in spans and r["teacher"] is not None
    )
    lessons = [
        FeedLesson(
            lesson_id=r["id"],
            subject=r["subject"],
            group_name=r["group_name"] or "",
            weekday=r["weekday"],
            starts_at=r["starts_at"],
            ends_at=r["ends_at"],
            room=r["room"],
            teacher_name=people.get(r["teacher"]) if r["teacher"] is not None else None,
            spans=tuple(sorted(set(spans[r["id"]]), key=lambda s: s.first)),
        )
        for r in rows.values()
        if r["id"] in spans
    ]
    if not lessons:
        return [], []
    first = min(s.first for lesson in lessons for s in lesson.spans)
    last = max(s.last for lesson in lessons for s in lesson.spans)
    change_rows = await LessonChange.select(
        LessonChange.lesson,
        LessonChange.on_date,
        LessonChange.cancelled,
        LessonChange.substitute_teacher,
        LessonChange.room,
        LessonChange.starts_at,
        LessonChange.ends_at,
        LessonChange.note,
    ).where(
        LessonChange.lesson.is_in(sorted(spans))
        & (LessonChange.on_date >= first)
        & (LessonChange.on_date <= last)
    )
    substitutes = await names(
        c["substitute_teacher"] for c in change_rows if c["substitute_teacher"] is not None
    )
    changes = [
        FeedChange(
            lesson_id=c["lesson"],
            on_date=c["on_date"],
            cancelled=bool(c["cancelled"]),
            substitute_name=(
                substitutes.get(c["substitute_teacher"])
                if c["substitute_teacher"] is not None
                else None
            ),
            room=c["room"],
            starts_at=c["starts_at"],
            ends_at=c["ends_at"],
            note=c["note"],
        )
        for c in change_rows
    ]
    return lessons, changes


# --- serving a feed ---------------------------------------------------------------------------


_FEED_BY_DIGEST = (
    "SELECT f.id, f.owner, f.subject, f.state, o.language, o.ui_language, a.disabled "
    "FROM calendar_feed f JOIN person o ON o.id = f.owner "
    "LEFT JOIN account a ON a.person = f.owner "
    "WHERE f.token_hash = {} AND f.revoked_at IS NULL"
)


async def serve_feed(
    engine: Engine[Any], settings: Settings, token: str, today: dt.date, now: dt.datetime
) -> Feed | None:
    """The feed of ``token``, or None when there is none to serve: an unknown or revoked
    token, an owner whose account is disabled, or one who may no longer hold it (a
    guardianship that ended). Keeps the feed's new state when its content changed."""
    rows = await CalendarFeed.raw(_FEED_BY_DIGEST, token_digest(settings, token))
    if not rows or rows[0]["disabled"] in (None, True, 1):
        return None
    row = rows[0]
    owner_id, subject_id = int(row["owner"]), int(row["subject"])
    facts = await _facts(owner_id, subject_id)
    owner = facts.get(owner_id, AccessFacts(owner_id))
    subject = facts.get(subject_id)
    if subject is None or not may_hold_feed(owner, subject, today):
        return None
    subject_name = (await names([subject_id])).get(subject_id, "")
    lessons, changes = await timetable_of(subject, today)
    try:
        previous = read_state(_state_decoder.decode(row["state"] or "{}"))
    except msgspec.DecodeError:
        previous = {}  # a damaged state only restarts the sequences
    feed = build_feed(
        subject_id=subject_id,
        subject_name=subject_name,
        # The feed's owner reads it: their chosen language, else the roster's.
        language=effective_language(row["ui_language"], row["language"]),
        lessons=lessons,
        changes=changes,
        previous=previous,
        now=now,
    )
    if feed.changed:
        async with write_transaction(engine):
            await CalendarFeed.update(
                {CalendarFeed.state: msgspec.json.encode(dump_state(feed.state)).decode()}
            ).where((CalendarFeed.id == row["id"]) & CalendarFeed.revoked_at.is_null())
    return feed


# --- logs ---------------------------------------------------------------------------------


class RedactFeedTokens(logging.Filter):
    """Takes feed tokens out of log lines (uvicorn's access log names every path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_feed_paths(a) if isinstance(a, str) else a for a in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = redact_feed_paths(record.msg)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up with :class:`RedactFeedTokens` on its access log."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_feed_tokens"] = {"()": f"{__name__}.RedactFeedTokens"}
    config["handlers"]["access"].setdefault("filters", []).append("redact_feed_tokens")
    return config
