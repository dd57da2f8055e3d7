"""The timetable feed's text (sync/calendar.py), read back with the icalendar library.

Every feed here is parsed by ``icalendar`` (an independent RFC 5545 implementation) and its
recurrences expanded with ``dateutil``, as a calendar app would, so the tests check what an
app shows, not the strings we happen to write.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from icalendar import Calendar, Event

from schemas.core import GuardianshipKind, MembershipRole, StaffRoleKind
from sync.calendar import (
    EventState,
    Feed,
    FeedChange,
    FeedLesson,
    Span,
    advance,
    build_feed,
    escape_text,
    fold,
    may_hold_feed,
    not_modified,
    redact_feed_paths,
)
from sync.policy import AccessFacts, GroupTie, StaffTie, Validity, WardTie

HELSINKI = ZoneInfo("Europe/Helsinki")
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
TERM = Span(dt.date(2026, 8, 10), dt.date(2026, 12, 19))


def lesson(
    lesson_id: int = 1,
    *,
    weekday: int = 1,
    spans: tuple[Span, ...] = (TERM,),
    subject: str = "Matematiikka",
    room: str | None = "A1",
) -> FeedLesson:
    return FeedLesson(
        lesson_id=lesson_id,
        subject=subject,
        group_name="5A",
        weekday=weekday,
        starts_at=dt.time(8, 15),
        ends_at=dt.time(9, 0),
        room=room,
        teacher_name="Tiina Opettaja",
        spans=spans,
    )


def feed(
    lessons: list[FeedLesson],
    changes: list[FeedChange] | None = None,
    *,
    language: str = "fi",
    previous: dict[str, EventState] | None = None,
    now: dt.datetime = NOW,
) -> tuple[Calendar, Feed]:
    built = build_feed(
        subject_id=7,
        subject_name="Aino Virtanen",
        language=language,
        lessons=lessons,
        changes=changes or [],
        previous=previous or {},
        now=now,
    )
    return Calendar.from_ical(built.body), built


def masters(cal: Calendar) -> list[Event]:
    return [e for e in cal.walk("VEVENT") if "RECURRENCE-ID" not in e]


def overrides(cal: Calendar) -> list[Event]:
    return [e for e in cal.walk("VEVENT") if "RECURRENCE-ID" in e]


def exdates(event: Event) -> set[dt.datetime]:
    found = event.get("EXDATE")
    if found is None:
        return set()
    lists = found if isinstance(found, list) else [found]
    return {d.dt for dl in lists for d in dl.dts}


def occurrences(event: Event) -> list[dt.datetime]:
    """The starts a calendar app shows for a master event: its RRULE less its EXDATEs."""
    start = event.decoded("DTSTART")
    rule = rrulestr(event["RRULE"].to_ical().decode(), dtstart=start)
    excluded = exdates(event)
    return [d for d in rule if d not in excluded]


def at(day: dt.date, hour: int = 8, minute: int = 15) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=HELSINKI)


def test_a_weekly_lesson_is_one_recurring_event_over_the_term() -> None:
    cal, _ = feed([lesson()])
    (event,) = masters(cal)
    days = occurrences(event)
    assert days[0] == at(dt.date(2026, 8, 10))  # the term's first Monday
    assert days[-1] == at(dt.date(2026, 12, 14))  # its last Monday (the 19th is a Saturday)
    assert len(days) == 19
    assert all(d.weekday() == 0 and d.timetz() == dt.time(8, 15, tzinfo=HELSINKI) for d in days)
    assert event.decoded("DTEND") - event.decoded("DTSTART") == dt.timedelta(minutes=45)
    assert event["DTSTART"].params["TZID"] == "Europe/Helsinki"
    assert str(event["UID"]) == "lesson-1-p7@reppu"
    assert str(event["SUMMARY"]) == "Matematiikka (5A)"
    assert str(event["LOCATION"]) == "A1"


def test_a_cancelled_lesson_is_an_exdate_and_named_in_the_language() -> None:
    cancelled = dt.date(2026, 12, 7)
    cal, _ = feed([lesson()], [FeedChange(1, cancelled, cancelled=True)])
    (event,) = masters(cal)
    assert at(cancelled) in exdates(event)
    assert at(cancelled) not in occurrences(event)
    assert at(dt.date(2026, 11, 30)) in occurrences(event)
    assert not overrides(cal)
    assert "Peruttu: 7.12.2026" in str(event["DESCRIPTION"])
    sv, _ = feed([lesson()], [FeedChange(1, cancelled, cancelled=True)], language="sv")
    assert "Inställd: 7.12.2026" in str(masters(sv)[0]["DESCRIPTION"])
    en, _ = feed([lesson()], [FeedChange(1, cancelled, cancelled=True)], language="en")
    assert "Cancelled: 2026-12-07" in str(masters(en)[0]["DESCRIPTION"])


def test_a_substitute_is_an_override_with_recurrence_id_and_sequence() -> None:
    day = dt.date(2026, 12, 7)
    change = FeedChange(1, day, substitute_name="Pekka Rehtori", room="B2", note="Tuo vihko")
    cal, first = feed([lesson()], [change])
    (override,) = overrides(cal)
    assert override.decoded("RECURRENCE-ID") == at(day)
    assert override.decoded("DTSTART") == at(day)
    assert str(override["UID"]) == str(masters(cal)[0]["UID"])
    assert str(override["SUMMARY"]) == "Matematiikka (5A): Sijainen, Luokka vaihtunut"
    assert "Sijainen: Pekka Rehtori" in str(override["DESCRIPTION"])
    assert "Huom. Tuo vihko" in str(override["DESCRIPTION"])
    assert str(override["LOCATION"]) == "B2"
    assert int(override["SEQUENCE"]) == 0
    # The occurrence still belongs to the series: not excluded.
    assert at(day) in occurrences(masters(cal)[0])

    # Another substitute for the same day: the override's sequence goes up, with a new stamp.
    later = NOW + dt.timedelta(hours=3)
    other = FeedChange(1, day, substitute_name="Sari Sijainen")
    cal2, second = feed([lesson()], [other], previous=first.state, now=later)
    (override2,) = overrides(cal2)
    assert int(override2["SEQUENCE"]) == 1
    assert override2.decoded("DTSTAMP") == later
    assert int(masters(cal2)[0]["SEQUENCE"]) == 0  # the series itself did not change
    assert second.etag != first.etag
    assert second.last_modified == later


def test_a_moved_lesson_keeps_its_recurrence_id() -> None:
    day = dt.date(2026, 12, 7)
    change = FeedChange(1, day, starts_at=dt.time(10, 0), ends_at=dt.time(10, 45))
    cal, _ = feed([lesson()], [change], language="en")
    (override,) = overrides(cal)
    assert override.decoded("RECURRENCE-ID") == at(day)
    assert override.decoded("DTSTART") == at(day, 10, 0)
    assert override.decoded("DTEND") == at(day, 10, 45)
    assert str(override["SUMMARY"]) == "Matematiikka (5A): Moved"


def test_the_same_data_gives_the_same_body_and_etag() -> None:
    changes = [FeedChange(1, dt.date(2026, 12, 7), cancelled=True)]
    _, first = feed([lesson()], changes)
    _, again = feed([lesson()], changes, previous=first.state, now=NOW + dt.timedelta(days=1))
    assert again.body == first.body
    assert again.etag == first.etag
    assert not again.changed
    assert again.last_modified == NOW


def test_a_term_boundary_ends_the_series_and_a_class_change_leaves_a_gap() -> None:
    # Autumn term ends on Friday 18 December; the spring term begins on 7 January 2027.
    autumn = Span(dt.date(2026, 8, 10), dt.date(2026, 12, 18))
    cal, _ = feed([lesson(1, weekday=5, spans=(autumn,))])
    days = occurrences(masters(cal)[0])
    assert days[-1] == at(dt.date(2026, 12, 18))
    assert masters(cal)[0]["RRULE"]["UNTIL"][0] == at(dt.date(2026, 12, 18)).astimezone(dt.UTC)
    assert all(d.date() <= autumn.last for d in days)

    # A pupil in 5A until 12 October and back from 9 November (two memberships): the weeks
    # between are excluded, not shown.
    spans = (Span(TERM.first, dt.date(2026, 10, 12)), Span(dt.date(2026, 11, 9), TERM.last))
    cal, _ = feed([lesson(2, spans=spans)])
    days = {d.date() for d in occurrences(masters(cal)[0])}
    assert dt.date(2026, 10, 12) in days
    assert dt.date(2026, 11, 9) in days
    assert not {dt.date(2026, 10, 19), dt.date(2026, 10, 26), dt.date(2026, 11, 2)} & days


def test_daylight_saving_keeps_the_local_time_and_the_vtimezone_is_right() -> None:
    # Summer time ends on Sunday 25 October 2026: Monday lessons stay at 08:15 in Helsinki,
    # which is 05:15 UTC before and 06:15 UTC after.
    cal, _ = feed([lesson()])
    days = {d.date(): d for d in occurrences(masters(cal)[0])}
    before, after = days[dt.date(2026, 10, 19)], days[dt.date(2026, 10, 26)]
    assert before.astimezone(dt.UTC).time() == dt.time(5, 15)
    assert after.astimezone(dt.UTC).time() == dt.time(6, 15)
    assert before.timetz().replace(tzinfo=None) == after.timetz().replace(tzinfo=None)

    # The feed's own VTIMEZONE (not the TZID looked up by name) agrees with the tz database,
    # hour by hour around each change of 2026-2030.
    (vtimezone,) = cal.walk("VTIMEZONE")
    ours = vtimezone.to_tz(lookup_tzid=False)
    for year in range(2026, 2031):
        for month in (3, 10):
            last_sunday = max(
                dt.date(year, month, d)
                for d in range(25, 32)
                if dt.date(year, month, d).isoweekday() == 7
            )
            for hour in range(-30, 30):
                moment = dt.datetime.combine(last_sunday, dt.time(1), tzinfo=dt.UTC)
                moment += dt.timedelta(hours=hour)
                assert (
                    moment.astimezone(ours).utcoffset() == moment.astimezone(HELSINKI).utcoffset()
                ), moment


def test_removing_an_event_changes_last_modified() -> None:
    day = dt.date(2026, 12, 7)
    _, first = feed([lesson()], [FeedChange(1, day, substitute_name="Pekka Rehtori")])
    later = NOW + dt.timedelta(hours=1)
    cal, restored = feed([lesson()], [], previous=first.state, now=later)
    assert not overrides(cal)
    assert restored.changed
    assert restored.last_modified == later
    # The override comes back later: its sequence is above what it had.
    even_later = later + dt.timedelta(hours=1)
    cal, back = feed(
        [lesson()],
        [FeedChange(1, day, substitute_name="Pekka Rehtori")],
        previous=restored.state,
        now=even_later,
    )
    assert int(overrides(cal)[0]["SEQUENCE"]) == 2
    assert back.last_modified == even_later


def test_advance_forgets_long_gone_events() -> None:
    old = int((NOW - dt.timedelta(days=500)).timestamp())
    state = advance({"gone": EventState("", 3, old), "x": EventState("f", 0, old)}, {}, NOW)
    assert "gone" not in state
    assert state["x"] == EventState("", 1, int(NOW.timestamp()))


def test_text_is_escaped_and_lines_are_folded_at_75_octets() -> None:
    assert escape_text("a,b;c\\d\ne\r\nf\x07") == "a\\,b\\;c\\\\d\\ne\\nf"
    long = "DESCRIPTION:" + "äöå€" * 40
    folded = fold(long)
    physical = folded.split("\r\n")[:-1]
    assert all(len(p.encode()) <= 75 for p in physical)
    assert all(p.startswith(" ") for p in physical[1:])
    assert "".join([physical[0], *(p[1:] for p in physical[1:])]) == long

    subject = "Äidinkieli ja kirjallisuus; ruotsi, B1-kieli \\ valinnainen " * 3
    cal, built = feed([lesson(subject=subject, room="Liikuntasali, ala-aula")], language="sv")
    for line in built.body.split("\r\n"):
        assert len(line.encode()) <= 75
    assert str(masters(cal)[0]["SUMMARY"]) == f"{subject} (5A)"
    assert str(masters(cal)[0]["LOCATION"]) == "Liikuntasali, ala-aula"
    assert str(cal["X-WR-CALNAME"]) == "Schema: Aino Virtanen"


def test_unknown_languages_read_english_and_regions_are_ignored() -> None:
    cal, _ = feed([lesson()], language="so")
    assert str(cal["X-WR-CALNAME"]) == "Timetable: Aino Virtanen"
    cancelled = [FeedChange(1, dt.date(2026, 12, 7), cancelled=True)]
    cal, _ = feed([lesson()], cancelled, language="sv-FI")
    assert "Inställd: 7.12.2026" in str(masters(cal)[0]["DESCRIPTION"])


def test_conditional_requests() -> None:
    etag = '"abc"'
    modified = dt.datetime(2026, 11, 28, 12, 0, 0, 500000, tzinfo=dt.UTC)
    assert not_modified(etag, modified, '"abc"', None)
    assert not_modified(etag, modified, 'W/"abc", "x"', None)
    assert not_modified(etag, modified, "*", None)
    assert not not_modified(etag, modified, '"old"', modified + dt.timedelta(days=1))
    assert not_modified(etag, modified, None, modified.replace(microsecond=0))
    assert not not_modified(etag, modified, None, modified - dt.timedelta(seconds=1))
    assert not not_modified(etag, modified, None, None)


def test_feed_tokens_are_redacted() -> None:
    line = '127.0.0.1:5000 - "GET /calendar/AbC-_123xyz.ics?x=1 HTTP/1.1" 200'
    assert redact_feed_paths(line) == (
        '127.0.0.1:5000 - "GET /calendar/<redacted>.ics?x=1 HTTP/1.1" 200'
    )
    assert redact_feed_paths("/calendar/feeds") == "/calendar/feeds"
    assert redact_feed_paths("/calendar/feeds/12") == "/calendar/feeds/12"


LONG_AGO = dt.date(2026, 8, 1)
TODAY = dt.date(2026, 11, 28)


def _pupil(person_id: int) -> AccessFacts:
    return AccessFacts(
        person_id,
        groups=(GroupTie(10, 2, 1, MembershipRole.PUPIL, Validity(LONG_AGO, None)),),
    )


def _guardian(
    person_id: int, pupil: AccessFacts, kind: GuardianshipKind, ended: bool
) -> AccessFacts:
    validity = Validity(LONG_AGO, TODAY - dt.timedelta(days=1) if ended else None)
    return AccessFacts(person_id, wards=(WardTie(pupil.person_id, kind, validity, pupil.groups),))


@pytest.mark.parametrize(
    ("kind", "ended", "allowed"),
    [
        (GuardianshipKind.CUSTODIAL, False, True),
        (GuardianshipKind.INFORMATION_ONLY, False, True),
        (GuardianshipKind.CUSTODIAL, True, False),
    ],
)
def test_guardians_hold_feeds_of_their_children_while_guardians(
    kind: GuardianshipKind, ended: bool, allowed: bool
) -> None:
    child = _pupil(1)
    assert bool(may_hold_feed(_guardian(2, child, kind, ended), child, TODAY)) is allowed


def test_a_feed_of_oneself_but_not_of_a_pupil_one_teaches() -> None:
    child = _pupil(1)
    teacher = AccessFacts(
        3,
        groups=(GroupTie(10, 2, 1, MembershipRole.TEACHER, Validity(LONG_AGO, None)),),
        staff=(StaffTie(2, 1, StaffRoleKind.TEACHER, Validity(LONG_AGO, None)),),
    )
    assert may_hold_feed(child, child, TODAY)
    assert may_hold_feed(teacher, teacher, TODAY)
    assert not may_hold_feed(teacher, child, TODAY)
    assert not may_hold_feed(_pupil(4), child, TODAY)
