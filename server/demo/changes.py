"""What changes during the term: pupils who move class, and this week's lesson changes.

A mover's old home-class membership ends the day before the move and the new one starts on
the day (validity dates are inclusive), so on every date the pupil has exactly one home
class. The lesson changes fall in the ISO week of ``today``: cancellations, substitutes, room
changes and a few lessons moved to the afternoon.
"""

from __future__ import annotations

import datetime as dt

from schemas.core import MembershipRole
from server.demo.curriculum import PERIODS
from server.demo.draft import Draft

MOVER_SHARE = 0.003
CHANGE_SHARE = 0.015
"""Share of this week's lessons that have a change."""
MIN_CLASS, MAX_CLASS = 18, 25

NOTES: dict[str, tuple[str, str]] = {
    "cancelled": ("Tunti peruttu, opettaja poissa", "Lektionen inställd, läraren frånvarande"),
    "substitute": ("Sijainen", "Vikarie"),
    "room": ("Luokkamuutos", "Byte av klassrum"),
    "moved": ("Tunti siirretty iltapäivään", "Lektionen flyttad till eftermiddagen"),
}
CHANGE_ROOMS = ("Auditorio", "Kirjasto", "Ruokala", "Aula")


def _move_day(draft: Draft, earliest: dt.date, latest: dt.date) -> dt.date:
    """A Monday between the two dates (``earliest`` itself if there is none)."""
    first_monday = earliest + dt.timedelta(days=-earliest.weekday() % 7)
    weeks = (latest - first_monday).days // 7
    if weeks < 0:
        return earliest
    return first_monday + dt.timedelta(weeks=draft.rng.randint(0, weeks))


def build_home_memberships(draft: Draft, keep: set[int]) -> list[int]:
    """Every pupil's home-class membership; returns the movers (pupil indices), in order.

    Movers stay in their school and grade (their teaching groups do not change); a class is
    left only if it keeps at least 18 pupils and joined only if it stays at most 25. Pupils
    in ``keep`` never move.
    """
    rng, today = draft.rng, draft.city.today
    earliest = draft.first_school_day + dt.timedelta(days=14)
    latest = min(today, draft.last_school_day)
    if latest < earliest:  # early in the term: the moves are still to come
        latest = earliest + dt.timedelta(weeks=8)
    sizes = [len(home.pupils) for home in draft.classes]
    siblings: dict[tuple[int, int], list[int]] = {}
    for index, home in enumerate(draft.classes):
        siblings.setdefault((home.school, home.grade), []).append(index)
    movable = [
        i for i, home in enumerate(draft.classes) if len(siblings[home.school, home.grade]) > 1
    ]
    wanted = max(1, round(len(draft.pupil_class) * MOVER_SHARE))
    moves: dict[int, tuple[int, dt.date]] = {}
    for _ in range(wanted * 5):
        if len(moves) >= wanted or not movable:
            break
        source = movable[rng.randrange(len(movable))]
        home = draft.classes[source]
        targets = [
            c for c in siblings[home.school, home.grade] if c != source and sizes[c] < MAX_CLASS
        ]
        pupil = home.pupils[rng.randrange(len(home.pupils))]
        if sizes[source] <= MIN_CLASS or not targets or pupil in moves or pupil in keep:
            continue
        target = rng.choice(targets)
        moves[pupil] = (target, _move_day(draft, earliest, latest))
        sizes[source] -= 1
        sizes[target] += 1
    pupil_role = MembershipRole.PUPIL.value
    for home in draft.classes:
        for pupil in home.pupils:
            person = draft.pupil_person[pupil]
            if pupil not in moves:
                draft.add_pupil_membership(home.group_id, person)
                continue
            target, day = moves[pupil]
            draft.add_membership(
                home.group_id, person, pupil_role, draft.term_starts_on, day - dt.timedelta(days=1)
            )
            draft.add_membership(
                draft.classes[target].group_id, person, pupil_role, day, draft.term_ends_on
            )
    # The movers whose move has happened come first: the demo login shows one of them.
    return [p for p in moves if moves[p][1] <= today] + [p for p in moves if moves[p][1] > today]


def week_days(draft: Draft) -> dict[int, dt.date]:
    """School days of the ISO week of ``today``: ISO weekday -> date."""
    today = draft.city.today
    monday = today - dt.timedelta(days=today.isoweekday() - 1)
    days = (monday + dt.timedelta(days=i) for i in range(5))
    return {d.isoweekday(): d for d in days if draft.first_school_day <= d <= draft.last_school_day}


def build_lesson_changes(draft: Draft, force_groups: list[int]) -> None:
    """This week's changes; every group in ``force_groups`` gets at least one."""
    rng, rows, lessons = draft.rng, draft.city.lesson_change, draft.city.lesson
    days = week_days(draft)
    if not days:
        return
    taken: set[tuple[int, int, int]] = set()  # (teacher, weekday, period) of substitutes

    def change(lesson_id: int, school_index: int, weekday: int, period: int, kind: str) -> None:
        lesson = lessons[lesson_id - 1]
        language = draft.schools[school_index].language
        note = NOTES[kind][1 if language == "sv" else 0]
        cell = weekday * 10 + period
        substitute, room, starts, ends = None, None, None, None
        if kind == "substitute":
            teachers = draft.schools[school_index].teachers
            for _ in range(20):
                candidate = teachers[rng.randrange(len(teachers))]
                if (
                    candidate != lesson[3]
                    and cell not in draft.teacher_busy[candidate]
                    and (candidate, weekday, period) not in taken
                ):
                    substitute = candidate
                    taken.add((candidate, weekday, period))
                    break
            else:
                kind, note = "cancelled", NOTES["cancelled"][1 if language == "sv" else 0]
        elif kind == "room":
            room = rng.choice(CHANGE_ROOMS)
        elif kind == "moved" and period < 7:
            starts, ends = PERIODS[6]
        elif kind == "moved":  # already in the afternoon: give it another room instead
            kind, note = "room", NOTES["room"][1 if language == "sv" else 0]
            room = rng.choice(CHANGE_ROOMS)
        rows.append(
            (
                len(rows) + 1,
                lesson_id,
                days[weekday],
                kind == "cancelled",
                substitute,
                room,
                starts,
                ends,
                note,
            )
        )

    kinds = ("cancelled", "substitute", "room", "moved")
    changed: set[int] = set()
    for lesson_id, school_index, weekday, period in draft.lesson_slots:
        if weekday in days and rng.random() < CHANGE_SHARE:
            change(
                lesson_id,
                school_index,
                weekday,
                period,
                rng.choices(kinds, weights=(30, 45, 20, 5))[0],
            )
            changed.add(lesson_id)
    for group_id in force_groups:
        own = [s for s in draft.lesson_slots if lessons[s[0] - 1][1] == group_id]
        if any(s[0] in changed for s in own):
            continue
        candidates = [s for s in own if s[2] in days]
        if candidates:
            lesson_id, school_index, weekday, period = rng.choice(candidates)
            change(lesson_id, school_index, weekday, period, "substitute")
            changed.add(lesson_id)
