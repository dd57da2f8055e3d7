"""Timetable calendar feeds (RFC 5545): timetable data in, iCalendar text out.

Pure: no database, no HTTP. ``server/calendar.py`` loads the lessons and changes of one
person and calls :func:`build_feed`; ``server/routes/calendar.py`` serves the text.

What a feed holds (``docs/calendar.md``):

- each weekly lesson is one ``VEVENT`` with ``RRULE:FREQ=WEEKLY;UNTIL=...`` over the days it
  is the person's (the term, the lesson's validity and the person's membership, intersected);
  weeks inside that period that are not the person's (a gap between two memberships) and
  cancelled occurrences are ``EXDATE`` s;
- a changed occurrence (substitute, room, moved time) is an override with ``RECURRENCE-ID``;
- times are local to ``Europe/Helsinki``, whose ``VTIMEZONE`` (EET/EEST) is in the feed.

``SEQUENCE``, ``DTSTAMP`` and ``LAST-MODIFIED`` come from what the feed served before
(:class:`EventState`, kept with the feed): an event whose text changed gets the next
sequence number and the time the change was first seen. The database keeps no history of
lesson changes, so this is the only honest source of "when did this change"; it also makes
the body stable between polls, so its hash is a good ``ETag``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sync.policy import DENIED, AccessFacts, Action, Decision, decide

TZID = "Europe/Helsinki"
HELSINKI = ZoneInfo(TZID)
UID_DOMAIN = "reppu"
PRODID = "-//Reppu//Timetable feed 1//EN"
REFRESH = "PT4H"
"""How often calendar apps are asked to poll (RFC 7986 ``REFRESH-INTERVAL``)."""

# Europe/Helsinki since 1996 (EU rules): EEST from the last Sunday of March 03:00 local
# (01:00 UTC) to the last Sunday of October 04:00 local (01:00 UTC). DTSTART is in the
# offset in force before each change, as RFC 5545 3.6.5 asks.
VTIMEZONE = (
    "BEGIN:VTIMEZONE",
    f"TZID:{TZID}",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0300",
    "TZNAME:EEST",
    "DTSTART:19960331T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0300",
    "TZOFFSETTO:+0200",
    "TZNAME:EET",
    "DTSTART:19961027T040000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
)
"""The time zone as calendar apps need it: the EU's rules, in force in Helsinki since 1996
(earlier years do not matter, the feed holds the current term only)."""

LANGUAGES = ("fi", "sv", "en")
FALLBACK_LANGUAGE = "en"
"""A person whose language is none of Finland's school languages reads English."""

TEXTS: dict[str, dict[str, str]] = {
    "fi": {
        "calendar": "Lukujärjestys",
        "teacher": "Opettaja",
        "substitute": "Sijainen",
        "cancelled": "Peruttu",
        "moved": "Siirretty",
        "note": "Huom.",
        "room_changed": "Luokka vaihtunut",
    },
    "sv": {
        "calendar": "Schema",
        "teacher": "Lärare",
        "substitute": "Vikarie",
        "cancelled": "Inställd",
        "moved": "Flyttad",
        "note": "Obs.",
        "room_changed": "Ny sal",
    },
    "en": {
        "calendar": "Timetable",
        "teacher": "Teacher",
        "substitute": "Substitute",
        "cancelled": "Cancelled",
        "moved": "Moved",
        "note": "Note",
        "room_changed": "Room changed",
    },
}


def feed_language(language: str) -> str:
    """``fi``, ``sv`` or ``en`` for a person's language setting (``sv-FI`` is ``sv``)."""
    base = language.lower().split("-")[0]
    return base if base in LANGUAGES else FALLBACK_LANGUAGE


def texts_for(language: str) -> dict[str, str]:
    """The feed's words in ``language`` (``fi``, ``sv``, ``en``; others get English)."""
    return TEXTS[feed_language(language)]


def _day_text(day: dt.date, language: str) -> str:
    if language in ("fi", "sv"):
        return f"{day.day}.{day.month}.{day.year}"
    return day.isoformat()


# --- who may hold a feed ------------------------------------------------------------------


def may_hold_feed(owner: AccessFacts, subject: AccessFacts, day: dt.date) -> Decision:
    """May ``owner`` hold a timetable feed of ``subject`` on ``day``?

    A feed is for oneself or for one's own child: the subject must be the owner, or a pupil
    of whom the owner is a guardian today (custodial or right to information only: both read
    the child's timetable). The policy's ``person.read_pupil_record`` must grant it too, so a
    rule that narrows guardians' reading narrows feeds with it. A teacher reads pupils'
    records but keeps no feed of them: the feed is a family's, not a school's.
    """
    if owner.person_id == subject.person_id:
        return decide(owner, Action.READ_PUPIL_RECORD, subject, day)
    if not any(w.pupil_id == subject.person_id for w in owner.wards_on(day)):
        return DENIED
    return decide(owner, Action.READ_PUPIL_RECORD, subject, day)


# --- the data a feed is built from ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """Days, both ends inclusive."""

    first: dt.date
    last: dt.date


@dataclass(frozen=True, slots=True)
class FeedLesson:
    """A weekly lesson and the days on which it is the person's."""

    lesson_id: int
    subject: str
    group_name: str
    weekday: int
    """ISO weekday, 1 is Monday."""
    starts_at: dt.time
    ends_at: dt.time
    room: str | None
    teacher_name: str | None
    spans: tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class FeedChange:
    """One dated change of a lesson's occurrence."""

    lesson_id: int
    on_date: dt.date
    cancelled: bool = False
    substitute_name: str | None = None
    room: str | None = None
    starts_at: dt.time | None = None
    ends_at: dt.time | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class EventState:
    """What the feed last served of one event: a hash of its text, its ``SEQUENCE`` and when
    it last changed (Unix seconds). An event that left the feed keeps a state with an empty
    fingerprint, so that its return counts as a change."""

    fingerprint: str
    sequence: int
    changed_at: int


# --- text ----------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and newline escaped,
    other control characters (which TEXT may not hold) dropped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    value = value.replace("\n", "\\n")
    return _CONTROL.sub("", value)


def fold(line: str) -> str:
    """One content line folded at 75 octets (RFC 5545 3.1), never inside a UTF-8 character;
    continuation lines start with a space. Lines end with CRLF."""
    data = line.encode()
    if len(data) <= 75:
        return line + "\r\n"
    parts: list[bytes] = []
    start, limit = 0, 75
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1  # back off to the first byte of a character
        parts.append(data[start:end])
        start, limit = end, 74  # the leading space takes one octet
    return "\r\n ".join(p.decode() for p in parts) + "\r\n"


def _local(day: dt.date, at: dt.time) -> str:
    return f"{day:%Y%m%d}T{at:%H%M%S}"


def _utc(day: dt.date, at: dt.time) -> str:
    moment = dt.datetime.combine(day, at, tzinfo=HELSINKI).astimezone(dt.UTC)
    return f"{moment:%Y%m%dT%H%M%S}Z"


def _stamp(seconds: int) -> str:
    return f"{dt.datetime.fromtimestamp(seconds, dt.UTC):%Y%m%dT%H%M%S}Z"


# --- events --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """One VEVENT before its ``SEQUENCE`` and time stamps are known.

    ``key`` names it in the feed's state: ``lesson:<id>`` for a weekly lesson,
    ``lesson:<id>:<date>`` for an override. ``lines`` are its content lines, unfolded.
    """

    key: str
    lines: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(self.lines).encode()).hexdigest()[:32]


def _occurrences(lesson: FeedLesson) -> list[dt.date]:
    """The lesson's days in its spans, in order, each once."""
    days: set[dt.date] = set()
    for span in lesson.spans:
        offset = (lesson.weekday - span.first.isoweekday()) % 7
        day = span.first + dt.timedelta(days=offset)
        while day <= span.last:
            days.add(day)
            day += dt.timedelta(days=7)
    return sorted(days)


def lesson_events(
    lesson: FeedLesson, changes: Iterable[FeedChange], language: str, uid: str
) -> list[Event]:
    """The master VEVENT of a weekly lesson and its overrides; none if it has no day."""
    words = texts_for(language)
    lang = feed_language(language)
    days = _occurrences(lesson)
    if not days:
        return []
    first, last = days[0], days[-1]
    mine = set(days)
    by_day = {
        c.on_date: c for c in changes if c.lesson_id == lesson.lesson_id and c.on_date in mine
    }
    # Weeks between the first and last day that are not the person's, and cancellations.
    gaps = [
        first + dt.timedelta(days=7 * n)
        for n in range((last - first).days // 7 + 1)
        if first + dt.timedelta(days=7 * n) not in mine
    ]
    cancelled = sorted(d for d, c in by_day.items() if c.cancelled)
    excluded = sorted({*gaps, *cancelled})
    summary = f"{lesson.subject} ({lesson.group_name})" if lesson.group_name else lesson.subject

    description = []
    if lesson.teacher_name:
        description.append(f"{words['teacher']}: {lesson.teacher_name}")
    if cancelled:
        listed = ", ".join(_day_text(d, lang) for d in cancelled)
        description.append(f"{words['cancelled']}: {listed}")

    tz = f";TZID={TZID}"
    lines = [
        f"UID:{uid}",
        f"DTSTART{tz}:{_local(first, lesson.starts_at)}",
        f"DTEND{tz}:{_local(first, lesson.ends_at)}",
        f"RRULE:FREQ=WEEKLY;UNTIL={_utc(last, lesson.starts_at)}",
    ]
    if excluded:
        lines.append(f"EXDATE{tz}:" + ",".join(_local(d, lesson.starts_at) for d in excluded))
    lines.append(f"SUMMARY:{escape_text(summary)}")
    if lesson.room:
        lines.append(f"LOCATION:{escape_text(lesson.room)}")
    if description:
        lines.append(f"DESCRIPTION:{escape_text(chr(10).join(description))}")
    lines += ["STATUS:CONFIRMED", "TRANSP:OPAQUE"]
    events = [Event(f"lesson:{lesson.lesson_id}", tuple(lines))]

    for day in sorted(by_day):
        change = by_day[day]
        if change.cancelled:
            continue
        starts = change.starts_at or lesson.starts_at
        ends = change.ends_at or lesson.ends_at
        room = change.room or lesson.room
        marks = []
        if change.substitute_name:
            marks.append(words["substitute"])
        if (starts, ends) != (lesson.starts_at, lesson.ends_at):
            marks.append(words["moved"])
        if change.room and change.room != lesson.room:
            marks.append(words["room_changed"])
        title = f"{summary}: {', '.join(marks)}" if marks else summary
        notes = []
        if change.substitute_name:
            notes.append(f"{words['substitute']}: {change.substitute_name}")
        elif lesson.teacher_name:
            notes.append(f"{words['teacher']}: {lesson.teacher_name}")
        if change.note:
            notes.append(f"{words['note']} {change.note}")
        override = [
            f"UID:{uid}",
            f"RECURRENCE-ID{tz}:{_local(day, lesson.starts_at)}",
            f"DTSTART{tz}:{_local(day, starts)}",
            f"DTEND{tz}:{_local(day, ends)}",
            f"SUMMARY:{escape_text(title)}",
        ]
        if room:
            override.append(f"LOCATION:{escape_text(room)}")
        if notes:
            override.append(f"DESCRIPTION:{escape_text(chr(10).join(notes))}")
        override += ["STATUS:CONFIRMED", "TRANSP:OPAQUE"]
        events.append(Event(f"lesson:{lesson.lesson_id}:{day.isoformat()}", tuple(override)))
    return events


# --- the feed's memory ------------------------------------------------------------------------

CALENDAR_KEY = "calendar"
"""The state key of the calendar's own properties (its name)."""

FORGET_AFTER = dt.timedelta(days=400)
"""An event gone from the feed this long is forgotten (its key will not come back)."""


def advance(
    previous: Mapping[str, EventState], fingerprints: Mapping[str, str], now: dt.datetime
) -> dict[str, EventState]:
    """The feed's new state, given what it serves now (event key -> fingerprint).

    A new event starts at sequence 0; one whose text changed, or that left or came back,
    goes one up and is stamped ``now``; the rest keep their state.
    """
    stamp = int(now.timestamp())
    state: dict[str, EventState] = {}
    for key, fingerprint in fingerprints.items():
        before = previous.get(key)
        if before is None:
            state[key] = EventState(fingerprint, 0, stamp)
        elif before.fingerprint != fingerprint:
            state[key] = EventState(fingerprint, before.sequence + 1, stamp)
        else:
            state[key] = before
    horizon = stamp - int(FORGET_AFTER.total_seconds())
    for key, before in previous.items():
        if key in state:
            continue
        if before.fingerprint:
            state[key] = EventState("", before.sequence + 1, stamp)
        elif before.changed_at >= horizon:
            state[key] = before
    return state


def last_modified(state: Mapping[str, EventState]) -> dt.datetime | None:
    """When the feed's content last changed: its newest event change (a removal included)."""
    if not state:
        return None
    return dt.datetime.fromtimestamp(max(s.changed_at for s in state.values()), dt.UTC)


# --- the feed --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Feed:
    body: str
    """The iCalendar text, CRLF line ends, folded."""
    etag: str
    """A strong entity tag, quoted."""
    last_modified: dt.datetime
    state: dict[str, EventState]
    """The state to keep for the next request (unchanged if nothing changed)."""
    changed: bool
    """Whether ``state`` differs from the one given."""


def build_feed(
    *,
    subject_id: int,
    subject_name: str,
    language: str,
    lessons: Sequence[FeedLesson],
    changes: Sequence[FeedChange],
    previous: Mapping[str, EventState],
    now: dt.datetime,
) -> Feed:
    """The whole feed of one person's timetable, in the owner's ``language``."""
    words = texts_for(language)
    header = [
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"NAME:{escape_text(words['calendar'] + ': ' + subject_name)}",
        f"X-WR-CALNAME:{escape_text(words['calendar'] + ': ' + subject_name)}",
        f"X-WR-TIMEZONE:{TZID}",
        f"REFRESH-INTERVAL;VALUE=DURATION:{REFRESH}",
        f"X-PUBLISHED-TTL:{REFRESH}",
    ]
    changes_of: dict[int, list[FeedChange]] = {}
    for change in changes:
        changes_of.setdefault(change.lesson_id, []).append(change)
    events: list[Event] = []
    for lesson in sorted(lessons, key=lambda x: x.lesson_id):
        uid = f"lesson-{lesson.lesson_id}-p{subject_id}@{UID_DOMAIN}"
        events += lesson_events(lesson, changes_of.get(lesson.lesson_id, []), language, uid)
    prints = {CALENDAR_KEY: Event(CALENDAR_KEY, tuple(header)).fingerprint}
    prints.update({e.key: e.fingerprint for e in events})
    state = advance(previous, prints, now)
    changed = state != dict(previous)

    out = ["BEGIN:VCALENDAR", *header, *VTIMEZONE]
    for event in events:
        stamp = _stamp(state[event.key].changed_at)
        out += [
            "BEGIN:VEVENT",
            *event.lines,
            f"SEQUENCE:{state[event.key].sequence}",
            f"DTSTAMP:{stamp}",
            f"LAST-MODIFIED:{stamp}",
            "END:VEVENT",
        ]
    out.append("END:VCALENDAR")
    body = "".join(fold(line) for line in out)
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
    modified = last_modified(state)
    assert modified is not None  # the calendar's own key is always there
    return Feed(body=body, etag=etag, last_modified=modified, state=state, changed=changed)


# --- conditional requests and logs ------------------------------------------------------------


def not_modified(
    feed_etag: str,
    modified: dt.datetime,
    if_none_match: str | None,
    if_modified_since: dt.datetime | None,
) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when sent (weak comparison); otherwise
    If-Modified-Since, to the second."""
    if if_none_match is not None:
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return "*" in tags or feed_etag in tags
    if if_modified_since is not None:
        return modified.replace(microsecond=0) <= if_modified_since
    return False


FEED_PATH = re.compile(r"(/calendar/+)(?!feeds(?:[/?\s\"]|$))[^/?\s\"]+")


def redact_feed_paths(text: str) -> str:
    """``text`` with every calendar feed's secret token replaced (for logs)."""
    return FEED_PATH.sub(r"\1<redacted>.ics", text)


def dump_state(state: Mapping[str, EventState]) -> dict[str, list[int | str]]:
    """The state as plain JSON-able data: key -> [fingerprint, sequence, changed_at]."""
    return {k: [s.fingerprint, s.sequence, s.changed_at] for k, s in sorted(state.items())}


def read_state(data: Mapping[str, Sequence[int | str]]) -> dict[str, EventState]:
    """The inverse of :func:`dump_state`; malformed entries are dropped (a fresh start
    for that event is harmless: it only bumps its sequence)."""
    found: dict[str, EventState] = {}
    for key, value in data.items():
        if (
            len(value) == 3
            and isinstance(value[0], str)
            and isinstance(value[1], int)
            and isinstance(value[2], int)
        ):
            found[key] = EventState(value[0], value[1], value[2])
    return found
