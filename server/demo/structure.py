"""Municipalities, school years, schools and home classes of the demo city.

Schools are built from home classes, not the other way round, so that both realism rules hold
at once: home classes of 18-25 pupils and schools of 300-800. Finnish schools come in three
kinds: alakoulu (grades 1-6), yläkoulu (7-9) and yhtenäiskoulu (1-9). An "ala unit" is one
class in each of grades 1-6 (about 130 pupils), a "ylä unit" one class in each of grades 7-9
(about 65); a school takes a whole number of units, chosen so that even with every class at
18 or at 25 pupils it stays within 300-800.
"""

from __future__ import annotations

import datetime as dt
import math
import random

from schemas.core import GroupKind, OrganisationKind
from server.demo.curriculum import A2_CODES
from server.demo.draft import Draft, HomeClass, Municipality, School
from server.demo.names import FI_PLACE_HEADS, FI_PLACE_TAILS, SV_PLACE_HEADS, SV_PLACE_TAILS

# (name, weight in pupils, share of Swedish-language pupils, share of immigrant families in
# the Finnish schools, postcode prefix). Neighbouring cities picked for the demo, sized
# roughly like their schools; this is not a statement about the project's real members.
MUNICIPALITIES: tuple[tuple[str, float, float, float, str], ...] = (
    ("Vantaa", 25.0, 0.05, 0.24, "013"),
    ("Espoo", 33.0, 0.09, 0.20, "023"),
    ("Porvoo", 5.0, 0.30, 0.08, "061"),
    ("Kerava", 4.0, 0.03, 0.14, "042"),
    ("Järvenpää", 4.5, 0.03, 0.10, "044"),
    ("Tuusula", 4.5, 0.04, 0.07, "043"),
    ("Kirkkonummi", 4.5, 0.17, 0.10, "024"),
)
SEVERAL_MUNICIPALITIES_FROM = 50_000
"""Below this many pupils the city is Vantaa alone; from it, all seven share the pupils."""
MIN_PUPILS = 500
"""Below this, grade cohorts are too small for home classes of 18-25 pupils."""
MIN_CLASS, MAX_CLASS, MEAN_CLASS = 18, 25, 21.5
MIN_SCHOOL_UNITS, MAX_SCHOOL_UNITS = 17, 32
"""A school's classes (6 per ala unit, 3 per ylä unit) times 18..25 must stay in 300..800."""
A2_WEIGHTS = (40, 25, 15, 20)


def school_year(today: dt.date) -> tuple[dt.date, dt.date, dt.date, dt.date]:
    """The school year containing ``today``: (starts, ends, first school day, last school day).

    By law the Finnish school year runs from 1 August to 31 July; schoolwork starts on a
    Wednesday in mid-August and ends on the Saturday of ISO week 22.
    """
    year = today.year if today.month >= 8 else today.year - 1
    starts, ends = dt.date(year, 8, 1), dt.date(year + 1, 7, 31)
    aug8 = dt.date(year, 8, 8)
    first_day = aug8 + dt.timedelta(days=(2 - aug8.weekday()) % 7)
    last_day = dt.date.fromisocalendar(year + 1, 22, 6)
    return starts, ends, first_day, last_day


def _class_sizes(cohort: int, rng: random.Random) -> list[int]:
    """Split a grade's cohort into home classes of 18-25 pupils around 21-22 each."""
    fewest, most = math.ceil(cohort / MAX_CLASS), max(1, cohort // MIN_CLASS)
    count = min(max(round(cohort / MEAN_CLASS), fewest), max(fewest, most))
    sizes = [cohort // count + (1 if i < cohort % count else 0) for i in range(count)]
    for _ in range(count):  # some variety, within the bounds
        a, b, step = rng.randrange(count), rng.randrange(count), rng.randint(1, 3)
        if a != b and sizes[a] - step >= MIN_CLASS and sizes[b] + step <= MAX_CLASS:
            sizes[a] -= step
            sizes[b] += step
    return sizes


def _valid_cohort_at_most(cohort: int) -> int:
    """The largest cohort <= ``cohort`` (and >= 18) that splits into classes of 18-25."""
    for value in range(cohort, MIN_CLASS - 1, -1):
        if math.ceil(value / MAX_CLASS) <= value // MIN_CLASS:
            return value
    return MIN_CLASS


def _pick_units(
    available_a: int, available_y: int, rng: random.Random, first: str | None
) -> tuple[int, int] | None:
    """How many ala and ylä units the next school takes, or None if no full school fits.

    A choice is allowed only if what remains can still be made into full schools (or is
    nothing), so the packing ends with sizes in range instead of a tiny last school.
    """

    def rest_ok(rest: int, minimum: int) -> bool:
        return rest == 0 or rest >= minimum

    ala = [(j, 0) for j in (3, 4, 5) if j <= available_a and rest_ok(available_a - j, 3)]
    yla = [(0, j) for j in range(6, 11) if j <= available_y and rest_ok(available_y - j, 6)]
    both = [
        (a, y)
        for a in range(1, 4)
        for y in range(1, 6)
        if a <= available_a
        and y <= available_y
        and MIN_SCHOOL_UNITS <= 6 * a + 3 * y <= MAX_SCHOOL_UNITS
        and rest_ok(available_a - a, 3)
        and rest_ok(available_y - y, 6)
    ]
    if first == "ala" and ala:
        return rng.choice(ala)
    if first == "yla" and yla:
        return rng.choice(yla)
    kinds = [(ala, float(available_a)), (yla, available_y * 0.5), (both, 0.3 * available_a)]
    kinds = [(options, weight) for options, weight in kinds if options and weight > 0]
    if not kinds:
        return None
    options = rng.choices([k[0] for k in kinds], weights=[k[1] for k in kinds])[0]
    return rng.choice(options)


def _pack(units_a: int, units_y: int, rng: random.Random, split: bool) -> list[list[int]]:
    """Plans of schools as ``[ala units, ylä units]``, using every unit.

    ``split`` starts with a separate alakoulu and yläkoulu, so a track always has two schools
    (siblings in two schools need them); otherwise a small track becomes one yhtenäiskoulu.
    """
    if not split and 6 * units_a + 3 * units_y <= MAX_SCHOOL_UNITS:
        return [[units_a, units_y]]
    plans: list[list[int]] = []
    firsts: list[str | None] = ["ala", "yla"] if split else []
    while units_a or units_y:
        pick = _pick_units(units_a, units_y, rng, firsts.pop(0) if firsts else None)
        if pick is None:
            break
        plans.append(list(pick))
        units_a, units_y = units_a - pick[0], units_y - pick[1]
    # What is left is too little for a full school: give it to the smallest schools of the
    # same kind that stay in range, and only as a last resort open a small school of its own.
    for index, left in ((0, units_a), (1, units_y)):
        while left:
            weight = 6 if index == 0 else 3
            fits = [
                p for p in plans if p[index] and 6 * p[0] + 3 * p[1] + weight <= MAX_SCHOOL_UNITS
            ]
            if not fits:
                plans.append([left, 0] if index == 0 else [0, left])
                break
            min(fits, key=lambda p: 6 * p[0] + 3 * p[1])[index] += 1
            left -= 1
    return plans


def _school_name(language: str, grades: set[int], names: list[tuple[str, str]]) -> str:
    head, tail = names.pop()
    if language == "sv":
        return f"{head}{tail} {'högstadieskola' if min(grades) >= 7 else 'skola'}"
    if min(grades) >= 7:
        return f"{head}{tail} yläkoulu"
    return f"{head}{tail} {'yhtenäiskoulu' if max(grades) >= 7 else 'koulu'}"


def _build_track(
    draft: Draft, municipality: Municipality, language: str, pupils: int, split: bool
) -> None:
    """Schools and home classes for one language track of one municipality."""
    rng = draft.rng
    pools = {
        g: _class_sizes(pupils // 9 + (1 if g <= pupils % 9 else 0), rng) for g in range(1, 10)
    }
    for sizes in pools.values():
        rng.shuffle(sizes)
    units_a = min(len(pools[g]) for g in range(1, 7))
    units_y = min(len(pools[g]) for g in range(7, 10))
    plans = _pack(units_a, units_y, rng, split)
    if language == "sv":
        names = [(h, t) for h in SV_PLACE_HEADS for t in SV_PLACE_TAILS]
    else:
        names = [(h, tail[1]) for h in FI_PLACE_HEADS for tail in FI_PLACE_TAILS]
    rng.shuffle(names)
    plan_classes: list[dict[int, list[int]]] = []
    for ala, yla in plans:
        taken: dict[int, list[int]] = {}
        for grade in range(1, 10):
            units = ala if grade <= 6 else yla
            if units:
                taken[grade] = [pools[grade].pop() for _ in range(units)]
        plan_classes.append(taken)
    # Grades with one class more than the others go to the smallest school that has the grade.
    for grade in range(1, 10):
        while pools[grade]:
            having = [c for c in plan_classes if grade in c] or plan_classes
            smallest = min(having, key=lambda c: sum(sum(s) for s in c.values()))
            smallest.setdefault(grade, []).append(pools[grade].pop())
    for taken in plan_classes:
        school_id = len(draft.city.organisation) + 1
        school = School(
            id=school_id,
            index=len(draft.schools),
            municipality=municipality.index,
            language=language,
            name=_school_name(language, set(taken), names),
            a2_code=rng.choices(A2_CODES, weights=A2_WEIGHTS)[0],
        )
        draft.city.organisation.append(
            (school_id, OrganisationKind.SCHOOL.value, school.name, municipality.id, language)
        )
        draft.schools.append(school)
        for grade in sorted(taken):
            for letter, size in zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", taken[grade], strict=False):
                name = f"{grade}{letter}"
                group_id = draft.add_group(school, name, GroupKind.HOME_CLASS.value, grade, None)
                home = HomeClass(group_id, school.index, grade, name, draft.next_room(school))
                first = len(draft.pupil_class)
                home.pupils = list(range(first, first + size))
                school.classes.append(len(draft.classes))
                draft.pupil_class.extend([len(draft.classes)] * size)
                draft.classes.append(home)


def build_structure(draft: Draft, pupils: int) -> None:
    """Municipalities (with their term), schools and home classes with pupil slots."""
    if pupils < MIN_PUPILS:
        raise ValueError(f"a demo city needs at least {MIN_PUPILS} pupils, got {pupils}")
    chosen = MUNICIPALITIES if pupils >= SEVERAL_MUNICIPALITIES_FROM else MUNICIPALITIES[:1]
    total_weight = sum(m[1] for m in chosen)
    shares = [int(pupils * m[1] / total_weight) for m in chosen]
    shares[0] += pupils - sum(shares)
    year = draft.term_starts_on.year
    for (name, _, swedish_share, immigrant_share, postcode), share in zip(
        chosen, shares, strict=True
    ):
        municipality_id = len(draft.city.organisation) + 1
        folded = name.lower().replace("ä", "a").replace("ö", "o")
        municipality = Municipality(
            id=municipality_id,
            index=len(draft.municipalities),
            name=name,
            domain=f"{folded}.example",
            postcode=postcode,
            immigrant_share=immigrant_share,
        )
        draft.city.organisation.append(
            (municipality_id, OrganisationKind.MUNICIPALITY.value, name, None, "fi")
        )
        municipality.term_id = len(draft.city.term) + 1
        draft.city.term.append(
            (
                municipality.term_id,
                municipality_id,
                f"Lukuvuosi {year}\N{EN DASH}{year + 1}",
                draft.term_starts_on,
                draft.term_ends_on,
            )
        )
        draft.municipalities.append(municipality)
        # A Swedish track needs at least one class per grade; its cohort is also rounded
        # to a size that splits into classes of 18-25. The Finnish track takes the rest.
        swedish = 0
        if share * swedish_share >= 9 * MIN_CLASS or share >= 1500:
            swedish = 9 * _valid_cohort_at_most(max(MIN_CLASS, round(share * swedish_share / 9)))
        _build_track(draft, municipality, "fi", share - swedish, split=True)
        if swedish:
            _build_track(draft, municipality, "sv", swedish, split=False)
