"""Roll call and absences: one status per pupil and lesson occurrence, and the look-ups."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.db.ddl import Index, index_migration

ID = "2026-11-28T12:59:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "attendance, roll_mark and absence_notice indexes."

INDEXES: list[Index] = [
    ("attendance_occurrence", "attendance", "pupil, lesson, on_date", True),
    ("attendance_group_day", "attendance", '"group", on_date', False),
    ("attendance_pupil_day", "attendance", "pupil, on_date", False),
    ("roll_mark_occurrence", "roll_mark", "lesson, on_date, pupil", False),
    ("roll_mark_pupil_day", "roll_mark", "pupil, on_date", False),
    ("absence_notice_pupil", "absence_notice", "pupil, to_date", False),
]


async def forwards() -> MigrationManager:
    return index_migration(ID, DESCRIPTION, INDEXES)
