"""Teaching groups, the weekly timetable of every group, and the teachers who teach it.

Per school and grade, some lessons are taught in groups that cross the home classes:

- religion or ethics (UE, UO, UI, ET): every pupil is in one such group, all of the grade's
  groups meet at one shared time, when the home classes have no lesson;
- an optional A2 language (grades 4-9, about a quarter of the pupils), after the day's lessons;
- electives (grades 8-9), two double lessons a week at shared times;
- mother-tongue instruction for immigrant pupils, across grades, on Friday afternoon.

A home class's own lessons fill the rest of its days, which start at 08:15 and run without
gaps. Teachers are found first-fit among the school's teachers of the right qualification who
are free at every one of the lesson's times and below their weekly load; when none is, the
school hires one. So no teacher is ever in two places at once, and no pupil either.
"""

from __future__ import annotations

import math

from schemas.core import GroupKind, MembershipRole
from server.demo.curriculum import (
    A2_GRADES,
    A2_SLOTS,
    CLASS_TEACHER_SUBJECTS,
    DOUBLE_LESSON_SUBJECTS,
    ELECTIVE_CODES,
    ELECTIVE_DOUBLES,
    ELECTIVE_GRADES,
    HOME_CLASS_HOURS,
    LANGUAGE_NAMES,
    MOTHER_TONGUE_SLOTS,
    PERIODS,
    SPECIAL_ROOMS,
    TEACHER_FAMILY,
    TEACHER_WEEKLY_LESSONS,
    subject_name,
    weekly_lessons,
)
from server.demo.draft import Draft, HomeClass, School
from server.demo.staff import Staffing

A2_SHARE = 0.25
MOTHER_TONGUE_SHARE = 0.6
MIN_A2_GROUP, MAX_GROUP, MAX_MOTHER_TONGUE_GROUP = 8, 25, 20
MIN_RELIGION_GROUP = 3
"""Fewer pupils than this of a minority religion in a grade attend ethics (ET) instead."""


def _cell(day: int, period: int) -> int:
    return day * 10 + period


def _chunks(pupils: list[int], largest: int) -> list[list[int]]:
    """Split into the fewest groups of at most ``largest``, as even as possible."""
    count = max(1, math.ceil(len(pupils) / largest))
    return [pupils[i::count] for i in range(count)]


class _Timetable:
    """The timetable stage: one school at a time, grade by grade."""

    def __init__(self, draft: Draft, staffing: Staffing) -> None:
        self.draft = draft
        self.staffing = staffing
        self.rng = draft.rng

    def teacher_for(self, school: School, families: list[str], cells: list[int]) -> int:
        """First-fit teacher free at every cell with room in their week; else a new hire."""
        load, busy = self.draft.teacher_load, self.draft.teacher_busy
        for family in families:
            for teacher in self.staffing.qualified(school, family):
                if load[teacher] + len(cells) > TEACHER_WEEKLY_LESSONS:
                    continue
                if busy[teacher].isdisjoint(cells):
                    self.staffing.join(teacher, school)
                    return teacher
        return self.staffing.hire_teacher(school, families[0])

    def lessons(
        self, school: School, group_id: int, code: str, teacher: int, cells: list[int]
    ) -> None:
        """Write the weekly lessons of one subject of one group and book the teacher."""
        draft = self.draft
        draft.teacher_load[teacher] += len(cells)
        draft.teacher_busy[teacher].update(cells)
        draft.teaching[(group_id, teacher)] = None
        special = SPECIAL_ROOMS.get(code)
        room = (
            special[1 if school.language == "sv" else 0] if special else draft.teacher_room[teacher]
        )
        name = subject_name(code, school.language)
        rows = draft.city.lesson
        for cell in cells:
            day, period = divmod(cell, 10)
            starts, ends = PERIODS[period - 1]
            lesson_id = len(rows) + 1
            rows.append(
                (
                    lesson_id,
                    group_id,
                    name,
                    teacher,
                    room,
                    day,
                    starts,
                    ends,
                    draft.first_school_day,
                    draft.last_school_day,
                )
            )
            draft.lesson_slots.append((lesson_id, school.index, day, period))

    def group(
        self,
        school: School,
        code: str,
        grade: int | None,
        name: str,
        pupils: list[int],
        cells: list[int],
        families: list[str],
    ) -> None:
        """A teaching group with its pupils, its lessons and its teacher."""
        draft = self.draft
        subject = subject_name(code, school.language)
        group_id = draft.add_group(school, name, GroupKind.TEACHING_GROUP.value, grade, subject)
        for pupil in pupils:
            draft.add_pupil_membership(group_id, draft.pupil_person[pupil])
        self.lessons(school, group_id, code, self.teacher_for(school, families, cells), cells)

    # The grade's shared groups ---------------------------------------------------------

    def worldview_groups(self, school: School, grade: int, pupils: list[int], cell: int) -> None:
        by_code: dict[str, list[int]] = {"UE": [], "UO": [], "UI": [], "ET": []}
        for pupil in pupils:
            by_code[self.draft.pupil_worldview[pupil]].append(pupil)
        for code in ("UO", "UI"):
            if len(by_code[code]) < MIN_RELIGION_GROUP:
                by_code["ET"].extend(by_code[code])
                by_code[code] = []
        for code, members in by_code.items():
            if not members:
                continue
            if code in ("UE", "ET"):
                families = ["LO", "HIYH"] if grade <= 6 else ["HIYH"]
            else:
                families = [code]
            chunks = _chunks(sorted(members), MAX_GROUP)
            for n, chunk in enumerate(chunks, start=1):
                suffix = f"/{n}" if len(chunks) > 1 else ""
                self.group(school, code, grade, f"{grade} {code}{suffix}", chunk, [cell], families)

    def a2_groups(self, school: School, grade: int, pupils: list[int]) -> None:
        chosen = [p for p in pupils if self.rng.random() < A2_SHARE]
        if len(chosen) < MIN_A2_GROUP:
            return
        cells = [_cell(day, period) for day, period in A2_SLOTS[grade >= 7]]
        chunks = _chunks(chosen, MAX_GROUP)
        for n, chunk in enumerate(chunks, start=1):
            suffix = f"/{n}" if len(chunks) > 1 else ""
            name = f"{grade} {school.a2_code}{suffix}"
            self.group(school, school.a2_code, grade, name, chunk, cells, ["KIE"])

    def elective_groups(
        self, school: School, grade: int, pupils: list[int], cells: list[int]
    ) -> None:
        rng = self.rng
        count = max(1, math.ceil(len(pupils) / 22))
        codes = [ELECTIVE_CODES[i % len(ELECTIVE_CODES)] for i in range(count)]
        rng.shuffle(codes)
        order = list(pupils)
        rng.shuffle(order)
        for n, code in enumerate(codes):
            members = sorted(order[n::count])
            name = f"{grade} {code}" + (f"/{n + 1}" if codes.count(code) > 1 else "")
            self.group(school, code, grade, name, members, cells, [TEACHER_FAMILY[code]])

    def mother_tongue_groups(self, school: School, pupils: list[int]) -> None:
        by_language: dict[str, list[int]] = {}
        for pupil in pupils:
            language = self.draft.pupil_language[pupil]
            if language in LANGUAGE_NAMES and self.rng.random() < MOTHER_TONGUE_SHARE:
                by_language.setdefault(language, []).append(pupil)
        # Schools take turns with the slots, so that one teacher can serve several schools.
        slots = MOTHER_TONGUE_SLOTS[school.index % len(MOTHER_TONGUE_SLOTS)]
        cells = [_cell(day, period) for day, period in slots]
        for language, members in by_language.items():
            if len(members) < 4:
                continue
            chunks = _chunks(members, MAX_MOTHER_TONGUE_GROUP)
            for n, chunk in enumerate(chunks, start=1):
                suffix = f"/{n}" if len(chunks) > 1 else ""
                code = f"OM-{language}"
                self.group(school, code, None, f"OM {language}{suffix}", chunk, cells, [code])

    # Home classes -------------------------------------------------------------------

    def home_class_cells(self, grade: int, shared: set[int]) -> dict[str, list[int]]:
        """Place the class's own lessons in its days, around the grade's shared cells."""
        rng = self.rng
        total = weekly_lessons(grade)
        quota = [total // 5] * 5
        for day in rng.sample(range(5), total % 5):
            quota[day] += 1
        free = {
            day: [p for p in range(1, quota[day - 1] + 1) if _cell(day, p) not in shared]
            for day in range(1, 6)
        }
        placed: dict[str, list[int]] = {}
        days_of: dict[str, set[int]] = {}
        singles: list[str] = []
        for code, hours in HOME_CLASS_HOURS[grade]:
            doubles = hours // 2 if code in DOUBLE_LESSON_SUBJECTS else 0
            for _ in range(doubles):
                options = [
                    (day, p)
                    for day, periods in free.items()
                    if day not in days_of.get(code, ())
                    for p in periods
                    if p + 1 in periods
                ]
                if not options:
                    singles += [code, code]
                    continue
                day, p = rng.choice(options)
                free[day].remove(p)
                free[day].remove(p + 1)
                placed.setdefault(code, []).extend((_cell(day, p), _cell(day, p + 1)))
                days_of.setdefault(code, set()).add(day)
            singles += [code] * (hours - 2 * doubles)
        rng.shuffle(singles)
        for code in singles:
            open_days = [day for day, periods in free.items() if periods]
            fresh = [day for day in open_days if day not in days_of.get(code, ())] or open_days
            most = max(len(free[day]) for day in fresh)
            day = rng.choice([d for d in fresh if len(free[d]) == most])
            period = free[day].pop(rng.randrange(len(free[day])))
            placed.setdefault(code, []).append(_cell(day, period))
            days_of.setdefault(code, set()).add(day)
        return placed

    def home_class(self, school: School, home: HomeClass, shared: set[int]) -> None:
        cells_by_code = self.home_class_cells(home.grade, shared)
        if home.grade <= 6:  # the class teacher teaches in the class's own room
            home.class_teacher = self.staffing.hire_teacher(school, "LO", room=home.room)
        for code, cells in cells_by_code.items():
            if home.class_teacher is not None and code in CLASS_TEACHER_SUBJECTS:
                teacher = home.class_teacher
            else:
                teacher = self.teacher_for(school, [TEACHER_FAMILY[code]], sorted(cells))
            self.lessons(school, home.group_id, code, teacher, sorted(cells))

    def school(self, school: School) -> None:
        draft, rng = self.draft, self.rng
        by_grade: dict[int, list[HomeClass]] = {}
        for class_index in school.classes:
            home = draft.classes[class_index]
            by_grade.setdefault(home.grade, []).append(home)
        for grade in sorted(by_grade):
            homes = by_grade[grade]
            pupils = [p for home in homes for p in home.pupils]
            base = weekly_lessons(grade) // 5
            worldview_cell = _cell(rng.randint(1, 5), rng.randint(1, base))
            shared = {worldview_cell}
            elective_cells: list[int] = []
            if grade in ELECTIVE_GRADES:
                for day in rng.sample(range(1, 6), ELECTIVE_DOUBLES):
                    starts = [
                        p for p in range(1, base) if not {_cell(day, p), _cell(day, p + 1)} & shared
                    ]
                    p = rng.choice(starts)
                    elective_cells += [_cell(day, p), _cell(day, p + 1)]
                    shared.update(elective_cells)
            for home in homes:
                self.home_class(school, home, shared)
            self.worldview_groups(school, grade, pupils, worldview_cell)
            if grade in A2_GRADES:
                self.a2_groups(school, grade, pupils)
            if elective_cells:
                self.elective_groups(school, grade, pupils, elective_cells)
        every = [p for home in (draft.classes[c] for c in school.classes) for p in home.pupils]
        self.mother_tongue_groups(school, every)


def build_timetables(draft: Draft, staffing: Staffing) -> None:
    """Teaching groups, lessons and teachers of every school, and the teachers' memberships."""
    stage = _Timetable(draft, staffing)
    for school in draft.schools:
        stage.school(school)
    teacher = MembershipRole.TEACHER.value
    for group_id, person in draft.teaching:
        draft.add_membership(group_id, person, teacher, draft.term_starts_on, draft.term_ends_on)
