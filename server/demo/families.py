"""Families: pupils, their guardians, siblings, households and their contact details.

A family has 1-3 children at school and one of four shapes, with shares that give about
1.25 guardians per pupil, as in the project's figures (200,000 guardians, 160,000 pupils):

- together: two custodial guardians in one home;
- separated, joint custody: two custodial guardians in two homes;
- separated, sole custody: one custodial guardian and one with a right to information only
  (tiedonsaantioikeus), in two homes;
- single parent: one custodial guardian.

Siblings attend the same school more often than not, but about a third attend another school
of the same language in the same municipality (an alakoulu child with a yläkoulu sibling).
A few families live under address protection (turvakielto): every member is flagged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from schemas.core import GuardianshipKind
from server.demo.draft import Draft, Municipality
from server.demo.names import (
    FI_PLACE_HEADS,
    FI_PLACE_TAILS,
    FINNISH,
    IMMIGRANT,
    STREET_TAILS,
    SWEDISH,
    NamePool,
    email_local_part,
)

TOGETHER, JOINT, SOLE_WITH_INFO, SINGLE = "together", "joint", "sole_with_info", "single"
SHAPES = (TOGETHER, JOINT, SOLE_WITH_INFO, SINGLE)
SHAPE_WEIGHTS = (68, 14, 6, 12)
CHILDREN_WEIGHTS = (60, 30, 10)  # families with 1, 2, 3 children at school
SAME_SCHOOL_SIBLING = 0.65
TURVAKIELTO_SHARE = 0.003
CUSTODY_CHANGE_SHARE = 0.05
"""Of the sole-custody families: the other parent was custodial until a day this school year."""
HOME_DOMAINS = ("posti.example", "koti.example", "verkko.example")

WORLDVIEW_WEIGHTS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    # The religion or ethics group children of a family with this home language attend.
    "fi": (("UE", "ET", "UO"), (78, 19, 3)),
    "sv": (("UE", "ET"), (85, 15)),
    "ru": (("UO", "ET", "UE"), (45, 40, 15)),
    "et": (("ET", "UE", "UO"), (55, 30, 15)),
    "fa": (("UI", "ET"), (50, 50)),
    "en": (("ET", "UE"), (80, 20)),
    "vi": (("ET", "UE"), (80, 20)),
    "zh": (("ET", "UE"), (90, 10)),
}
MUSLIM_MAJORITY = (("UI", "ET"), (80, 20))  # so, ar, ku, sq

IMMIGRANT_LANGUAGES = tuple(IMMIGRANT)
IMMIGRANT_WEIGHTS = tuple(weight for weight, _ in IMMIGRANT.values())


@dataclass(slots=True)
class DemoFamily:
    """Guardians of a family the demo logins point at."""

    guardians: list[int]
    info_guardian: int | None
    children: list[int]


def _pool(language: str) -> NamePool:
    if language == "fi":
        return FINNISH
    if language == "sv":
        return SWEDISH
    return IMMIGRANT[language][1]


class _Pool:
    """Unassigned pupils, drawn at random in O(1) and removed in O(1) (swap with the last)."""

    def __init__(self, pupils: list[int], position: list[int]) -> None:
        self.items = list(pupils)
        self.position = position
        for index, pupil in enumerate(self.items):
            position[pupil] = index

    def remove(self, pupil: int) -> None:
        index, last = self.position[pupil], self.items[-1]
        self.items[index] = last
        self.position[last] = index
        self.items.pop()


class _Families:
    """The family stage: forms families from the pupil slots and writes their rows."""

    def __init__(self, draft: Draft) -> None:
        self.draft = draft
        self.rng = draft.rng
        self.year = draft.term_starts_on.year
        count = len(draft.pupil_class)
        self.assigned = bytearray(count)
        draft.pupil_person = [0] * count
        draft.pupil_language = [""] * count
        draft.pupil_worldview = [""] * count
        self.email_seen: dict[str, int] = {}

    # Contact details ------------------------------------------------------------------

    def email(self, given: str, family: str, domain: str) -> str:
        """A unique, undeliverable address (``.example`` is reserved by RFC 2606)."""
        local = email_local_part(given, family)
        seen = self.email_seen.get(local, 0) + 1
        self.email_seen[local] = seen
        return f"{local}{seen if seen > 1 else ''}@{domain}"

    def phone(self) -> str:
        # "+358 040 ..." keeps the national trunk 0 after the country code: it reads like a
        # Finnish mobile number but no network routes it, so a demo SMS never reaches anyone.
        return f"+358 040 {self.rng.randrange(1_000_000, 10_000_000)}"

    def address(self, municipality: Municipality) -> str:
        rng = self.rng
        street = (
            rng.choice(FI_PLACE_HEADS) + rng.choice(FI_PLACE_TAILS)[1] + rng.choice(STREET_TAILS)
        )
        number = f"{street} {rng.randint(1, 60)}"
        if rng.random() < 0.6:
            number += f" {rng.choice('ABCDE')} {rng.randint(1, 40)}"
        return (
            f"{number}, {municipality.postcode}{rng.randrange(0, 10) * 10:02d} {municipality.name}"
        )

    # Families ---------------------------------------------------------------------------

    def pick_sibling(self, pool: _Pool, grades: set[int]) -> int | None:
        """A random unassigned pupil of ``pool`` in a grade none of the children is in."""
        classes, rng = self.draft.classes, self.rng
        for _ in range(6):
            if not pool.items:
                return None
            pupil = pool.items[rng.randrange(len(pool.items))]
            grade = classes[self.draft.pupil_class[pupil]].grade
            if grade not in grades or rng.random() < 0.03:  # twins happen
                return pupil
        return None

    def adult(
        self,
        pool: NamePool,
        female: bool,
        family_name: str,
        language: str,
        child_birth: dt.date,
        municipality: Municipality,
        home: str,
        turvakielto: bool,
    ) -> int:
        rng = self.rng
        given = rng.choice(pool.women if female else pool.men)
        birth = dt.date(child_birth.year - rng.randint(22, 42), 1, 1) + dt.timedelta(
            days=rng.randrange(365)
        )
        person = self.draft.add_person(
            given,
            family_name,
            language,
            birth,
            turvakielto=turvakielto,
            email=self.email(given, family_name, rng.choice(HOME_DOMAINS)),
            phone=self.phone(),
            street_address=home,
        )
        self.draft.guardians_by_municipality.setdefault(municipality.index, []).append(person)
        return person

    def guardianship(
        self, guardian: int, pupil: int, kind: str, start: dt.date, end: dt.date | None = None
    ) -> None:
        rows = self.draft.city.guardianship
        rows.append((len(rows) + 1, guardian, pupil, kind, start, end))

    def form(self, children: list[int], language: str, shape: str, turvakielto: bool) -> DemoFamily:
        """Write one family's people and guardianships."""
        draft, rng = self.draft, self.rng
        pool = _pool(language)
        school = draft.schools[draft.classes[draft.pupil_class[children[0]]].school]
        municipality = draft.municipalities[school.municipality]
        family_name = rng.choice(pool.families)
        names, weights = WORLDVIEW_WEIGHTS.get(language, MUSLIM_MAJORITY)
        worldview = rng.choices(names, weights=weights)[0]
        # Children: born in the year that puts them in their grade this school year.
        births: list[dt.date] = []
        for pupil in children:
            self.assigned[pupil] = 1
            grade = draft.classes[draft.pupil_class[pupil]].grade
            birth = dt.date(self.year - 6 - grade, 1, 1) + dt.timedelta(days=rng.randrange(365))
            births.append(birth)
            given = rng.choice(pool.girls if rng.random() < 0.5 else pool.boys)
            draft.pupil_person[pupil] = draft.add_person(
                given, family_name, language, birth, turvakielto=turvakielto
            )
            draft.pupil_language[pupil] = language
            draft.pupil_worldview[pupil] = worldview
        eldest = min(births)
        # Parents: usually a mother and a father; a few families have two mothers or fathers.
        first_female = rng.random() < 0.5
        second_female = not first_female if rng.random() < 0.97 else first_female
        home = self.address(municipality)
        first = self.adult(
            pool, first_female, family_name, language, eldest, municipality, home, turvakielto
        )
        guardians, info = [first], None
        if shape != SINGLE:
            second_name = family_name
            if rng.random() < (0.5 if shape != TOGETHER else 0.2):
                second_name = rng.choice(pool.families)
            second_home = home if shape == TOGETHER else self.address(municipality)
            second = self.adult(
                pool,
                second_female,
                second_name,
                language,
                eldest,
                municipality,
                second_home,
                turvakielto,
            )
            guardians.append(second)
        for pupil, birth in zip(children, births, strict=True):
            person = draft.pupil_person[pupil]
            custodial = GuardianshipKind.CUSTODIAL.value
            self.guardianship(first, person, custodial, birth)
            if shape in (TOGETHER, JOINT):
                self.guardianship(guardians[1], person, custodial, birth)
            elif shape == SOLE_WITH_INFO:
                info = guardians[1]
                self.info_guardianship(info, person, birth)
        return DemoFamily(guardians=guardians, info_guardian=info, children=children)

    def info_guardianship(self, guardian: int, pupil: int, birth: dt.date) -> None:
        """A right to information only; sometimes custody ended this school year."""
        rng, draft = self.rng, self.draft
        info = GuardianshipKind.INFORMATION_ONLY.value
        today = draft.city.today
        if rng.random() < CUSTODY_CHANGE_SHARE and today > draft.term_starts_on:
            change = draft.term_starts_on + dt.timedelta(
                days=rng.randrange(1, (today - draft.term_starts_on).days + 1)
            )
            custodial = GuardianshipKind.CUSTODIAL.value
            self.guardianship(guardian, pupil, custodial, birth, change - dt.timedelta(days=1))
            self.guardianship(guardian, pupil, info, change)
            return
        separated = birth + dt.timedelta(days=rng.randrange(365, 365 * 5))
        self.guardianship(guardian, pupil, info, min(separated, draft.term_starts_on))

    def family_language(self, pupil: int) -> str:
        draft, rng = self.draft, self.rng
        school = draft.schools[draft.classes[draft.pupil_class[pupil]].school]
        if school.language == "sv":
            return "sv"
        if rng.random() < draft.municipalities[school.municipality].immigrant_share:
            return rng.choices(IMMIGRANT_LANGUAGES, weights=IMMIGRANT_WEIGHTS)[0]
        return "fi"


def build_families(draft: Draft) -> dict[str, DemoFamily]:
    """Every pupil's person row, their guardians and guardianships.

    Returns the families the demo logins use: ``two_schools`` (children in two schools),
    ``info`` (a guardian with a right to information only), ``turvakielto``.
    """
    stage = _Families(draft)
    rng = draft.rng
    count = len(draft.pupil_class)
    by_school: list[list[int]] = [[] for _ in draft.schools]
    by_track: dict[tuple[int, str], list[int]] = {}
    for school in draft.schools:
        for class_index in school.classes:
            by_school[school.index].extend(draft.classes[class_index].pupils)
        by_track.setdefault((school.municipality, school.language), []).extend(
            by_school[school.index]
        )
    # Each pupil is in one school pool and one track pool (same municipality and language).
    school_position, track_position = [0] * count, [0] * count
    school_pools = [_Pool(pupils, school_position) for pupils in by_school]
    track_pools = {key: _Pool(pupils, track_position) for key, pupils in by_track.items()}

    def claim(pupil: int) -> None:
        """Take a pupil out of both pools: they now belong to a family."""
        index = draft.classes[draft.pupil_class[pupil]].school
        school_pools[index].remove(pupil)
        school = draft.schools[index]
        track_pools[(school.municipality, school.language)].remove(pupil)
        stage.assigned[pupil] = 1

    def take(children: list[int], language: str, shape: str, turvakielto: bool) -> DemoFamily:
        for pupil in children:
            claim(pupil)
        return stage.form(children, language, shape, turvakielto)

    demo: dict[str, DemoFamily] = {}
    # The demo families come first, built on purpose so that they exist in every city.
    first_school = draft.schools[0]  # an alakoulu of the first municipality (see structure)
    young = next(
        p
        for c in first_school.classes
        if draft.classes[c].grade in (3, 4)
        for p in draft.classes[c].pupils
    )
    older = next(
        p
        for s in draft.schools[1:]
        if s.municipality == 0 and s.language == "fi"
        for c in s.classes
        if draft.classes[c].grade == 8
        for p in draft.classes[c].pupils
    )
    demo["two_schools"] = take([young, older], "fi", TOGETHER, False)
    track = track_pools[(0, "fi")]
    demo["info"] = take([track.items[0]], "fi", SOLE_WITH_INFO, False)
    demo["turvakielto"] = take([track.items[0]], "fi", TOGETHER, True)

    for key, pupils in by_track.items():
        order = list(pupils)
        rng.shuffle(order)
        for pupil in order:
            if stage.assigned[pupil]:
                continue
            claim(pupil)
            wanted = rng.choices((1, 2, 3), weights=CHILDREN_WEIGHTS)[0]
            children = [pupil]
            grades = {draft.classes[draft.pupil_class[pupil]].grade}
            school_index = draft.classes[draft.pupil_class[pupil]].school
            while len(children) < wanted:
                same = rng.random() < SAME_SCHOOL_SIBLING
                pool = school_pools[school_index] if same else track_pools[key]
                sibling = stage.pick_sibling(pool, grades)
                if sibling is None:
                    break
                claim(sibling)
                children.append(sibling)
                grades.add(draft.classes[draft.pupil_class[sibling]].grade)
            shape = rng.choices(SHAPES, weights=SHAPE_WEIGHTS)[0]
            turvakielto = rng.random() < TURVAKIELTO_SHARE
            stage.form(children, stage.family_language(pupil), shape, turvakielto)
    return demo
