"""What Finnish basic education teaches, week by week: subjects, hours per grade, the bell.

The hours follow the national distribution of lesson hours (Valtioneuvoston asetus 422/2012,
with English as A1 from grade 1 since 2020) spread over the grades the way a typical city
school does it. Subjects are named in the school's language: Finnish or Swedish.
"""

from __future__ import annotations

import datetime as dt

SUBJECT_NAMES: dict[str, tuple[str, str]] = {
    # code: (Finnish name, Swedish name)
    "AI": ("Äidinkieli ja kirjallisuus", "Modersmål och litteratur"),
    "MA": ("Matematiikka", "Matematik"),
    "EN": ("Englanti", "Engelska"),
    "B1": ("Ruotsi", "Finska"),  # the second national language: Swedish, or Finnish
    "YM": ("Ympäristöoppi", "Omgivningslära"),
    "BI": ("Biologia", "Biologi"),
    "GE": ("Maantieto", "Geografi"),
    "FY": ("Fysiikka", "Fysik"),
    "KE": ("Kemia", "Kemi"),
    "TE": ("Terveystieto", "Hälsokunskap"),
    "HI": ("Historia", "Historia"),
    "YH": ("Yhteiskuntaoppi", "Samhällslära"),
    "MU": ("Musiikki", "Musik"),
    "KU": ("Kuvataide", "Bildkonst"),
    "KS": ("Käsityö", "Slöjd"),
    "LI": ("Liikunta", "Gymnastik"),
    "KO": ("Kotitalous", "Huslig ekonomi"),
    "OP": ("Oppilaanohjaus", "Elevhandledning"),
    # Religion or ethics: every pupil is in one of these groups, by the family's background.
    "UE": ("Evankelisluterilainen uskonto", "Evangelisk-luthersk religion"),
    "UO": ("Ortodoksinen uskonto", "Ortodox religion"),
    "UI": ("Islam", "Islam"),
    "ET": ("Elämänkatsomustieto", "Livsåskådningskunskap"),
    # Optional A2 languages (grades 4-9), one offered per school.
    "SAA2": ("Saksa (A2)", "Tyska (A2)"),
    "RAA2": ("Ranska (A2)", "Franska (A2)"),
    "VEA2": ("Venäjä (A2)", "Ryska (A2)"),
    "ESA2": ("Espanja (A2)", "Spanska (A2)"),
    # Electives of grades 8-9.
    "VKU": ("Valinnainen kuvataide", "Valfri bildkonst"),
    "VLI": ("Valinnainen liikunta", "Valfri gymnastik"),
    "VOH": ("Ohjelmointi", "Programmering"),
    "VKO": ("Valinnainen kotitalous", "Valfri huslig ekonomi"),
    "VDR": ("Draama", "Drama"),
    "VMU": ("Valinnainen musiikki", "Valfri musik"),
    "VTN": ("Teknologia", "Teknologi"),
}

WORLDVIEW_CODES: tuple[str, ...] = ("UE", "UO", "UI", "ET")
A2_CODES: tuple[str, ...] = ("SAA2", "RAA2", "VEA2", "ESA2")
ELECTIVE_CODES: tuple[str, ...] = ("VKU", "VLI", "VOH", "VKO", "VDR", "VMU", "VTN")

# Mother-tongue instruction (oma äidinkieli) for the immigrant languages: (Finnish, Swedish).
LANGUAGE_NAMES: dict[str, tuple[str, str]] = {
    "ru": ("venäjä", "ryska"),
    "so": ("somali", "somaliska"),
    "ar": ("arabia", "arabiska"),
    "et": ("viro", "estniska"),
    "en": ("englanti", "engelska"),
    "ku": ("kurdi", "kurdiska"),
    "fa": ("persia", "persiska"),
    "sq": ("albania", "albanska"),
    "vi": ("vietnam", "vietnamesiska"),
    "zh": ("kiina", "kinesiska"),
}


def subject_name(code: str, language: str) -> str:
    """The subject's name as the school writes it; ``OM-xx`` is mother tongue ``xx``."""
    if code.startswith("OM-"):
        fi, sv = LANGUAGE_NAMES[code[3:]]
        return f"Modersmål: {sv}" if language == "sv" else f"Oma äidinkieli: {fi}"
    fi, sv = SUBJECT_NAMES[code]
    return sv if language == "sv" else fi


def _hours(text: str) -> tuple[tuple[str, int], ...]:
    """``"AI:7 MA:3"`` -> ``(("AI", 7), ("MA", 3))``."""
    return tuple((code, int(hours)) for code, hours in (item.split(":") for item in text.split()))


# Lessons a home class has together each week (the worldview, A2, elective and mother-tongue
# lessons are those of teaching groups, placed at times shared by the whole grade).
HOME_CLASS_HOURS: dict[int, tuple[tuple[str, int], ...]] = {
    1: _hours("AI:7 MA:3 EN:1 YM:2 MU:1 KU:1 KS:2 LI:2"),
    2: _hours("AI:7 MA:3 EN:2 YM:2 MU:1 KU:1 KS:2 LI:2"),
    3: _hours("AI:5 MA:4 EN:2 YM:3 MU:1 KU:2 KS:2 LI:2"),
    4: _hours("AI:5 MA:4 EN:2 YM:3 MU:2 KU:1 KS:2 LI:3"),
    5: _hours("AI:4 MA:4 EN:2 YM:3 HI:2 YH:1 MU:1 KU:2 KS:2 LI:2"),
    6: _hours("AI:4 MA:4 EN:2 B1:2 YM:2 HI:1 YH:2 MU:1 KU:1 KS:2 LI:3"),
    7: _hours("AI:3 MA:3 EN:2 B1:2 BI:1 GE:1 FY:1 KE:1 TE:1 HI:2 MU:2 KU:2 KS:2 KO:3 LI:2 OP:1"),
    8: _hours("AI:3 MA:4 EN:2 B1:1 BI:2 GE:1 FY:2 KE:1 TE:1 HI:2 MU:1 LI:3 OP:1"),
    9: _hours("AI:3 MA:4 EN:2 B1:2 BI:1 GE:1 FY:1 KE:2 TE:1 YH:3 LI:2 OP:1 KU:1"),
}


WORLDVIEW_LESSONS = 1
ELECTIVE_DOUBLES = 2
"""Grades 8-9 have two double lessons of electives a week."""
ELECTIVE_GRADES = (8, 9)
A2_GRADES = (4, 5, 6, 7, 8, 9)

DOUBLE_LESSON_SUBJECTS = frozenset({"KS", "KU", "KO", "LI"})
"""Subjects a school prefers to teach 90 minutes at a time (crafts, art, cooking, sports)."""

CLASS_TEACHER_SUBJECTS = frozenset({"AI", "MA", "YM", "HI", "YH", "MU", "KU", "KS", "LI"})
"""What the class teacher (luokanopettaja) of grades 1-6 teaches the class."""

TEACHER_FAMILY: dict[str, str] = {
    # The qualification a subject teacher (aineenopettaja) needs for each subject.
    "AI": "AI", "VDR": "AI",
    "MA": "MAFY", "FY": "MAFY", "KE": "MAFY", "VOH": "MAFY",
    "EN": "KIE", "B1": "KIE", "SAA2": "KIE", "RAA2": "KIE", "VEA2": "KIE", "ESA2": "KIE",
    "BI": "BIGE", "GE": "BIGE", "TE": "BIGE", "YM": "BIGE",
    "HI": "HIYH", "YH": "HIYH", "UE": "HIYH", "ET": "HIYH",
    "UO": "UO", "UI": "UI",
    "MU": "MU", "VMU": "MU", "KU": "KU", "VKU": "KU", "KS": "KS", "VTN": "KS",
    "LI": "LI", "VLI": "LI", "KO": "KO", "VKO": "KO", "OP": "OP",
}  # fmt: skip

SPECIAL_ROOMS: dict[str, tuple[str, str]] = {
    "LI": ("Liikuntasali", "Gymnastiksal"),
    "VLI": ("Liikuntasali", "Gymnastiksal"),
    "KS": ("Käsityöluokka", "Slöjdsal"),
    "VTN": ("Tekninen työ", "Teknisk slöjd"),
    "KO": ("Kotitalousluokka", "Hemkunskapsklass"),
    "VKO": ("Kotitalousluokka", "Hemkunskapsklass"),
    "MU": ("Musiikkiluokka", "Musiksal"),
    "VMU": ("Musiikkiluokka", "Musiksal"),
    "KU": ("Kuvataideluokka", "Bildkonstsal"),
    "VKU": ("Kuvataideluokka", "Bildkonstsal"),
    "FY": ("Fysiikan ja kemian luokka", "Fysik- och kemisal"),
    "KE": ("Fysiikan ja kemian luokka", "Fysik- och kemisal"),
}


def _t(hhmm: str) -> dt.time:
    hours, minutes = hhmm.split(":")
    return dt.time(int(hours), int(minutes))


PERIODS: tuple[tuple[dt.time, dt.time], ...] = tuple(
    (_t(start), _t(end))
    for start, end in (
        ("08:15", "09:00"),
        ("09:10", "09:55"),
        ("10:15", "11:00"),
        ("11:30", "12:15"),  # after lunch, 11:00-11:30
        ("12:25", "13:10"),
        ("13:20", "14:05"),
        ("14:15", "15:00"),
        ("15:10", "15:55"),
    )
)
"""The bell: 45-minute lessons from 08:15. Period ``p`` (1-based) is ``PERIODS[p - 1]``."""

A2_SLOTS: dict[bool, tuple[tuple[int, int], ...]] = {
    # (weekday, period) of the A2 lessons: lower grades Mon+Wed, upper grades Tue+Thu,
    # after the home class's day, so no pupil misses a lesson of the class.
    False: ((1, 7), (3, 7)),
    True: ((2, 7), (4, 7)),
}
MOTHER_TONGUE_SLOTS: tuple[tuple[tuple[int, int], ...], ...] = (
    ((5, 7), (5, 8)),
    ((1, 8), (3, 8)),
    ((2, 8), (4, 8)),
)
"""Mother-tongue instruction: two lessons a week for all grades, at times no A2 lesson takes;
each school uses one of these patterns."""

TEACHER_WEEKLY_LESSONS = 24
"""The most lessons a week the generator gives one teacher (a class teacher's obligation)."""


def weekly_lessons(grade: int) -> int:
    """Lessons a pupil of ``grade`` has at the times shared by their home class and grade."""
    total = sum(hours for _, hours in HOME_CLASS_HOURS[grade]) + WORLDVIEW_LESSONS
    if grade in ELECTIVE_GRADES:
        total += 2 * ELECTIVE_DOUBLES
    return total
