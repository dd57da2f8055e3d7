"""Composite indexes and unique constraints that Piccolo's column options cannot express.

Each one serves an access path named beside it. The same SQL runs on SQLite and PostgreSQL.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.db.ddl import Index, index_migration

ID = "2026-11-28T07:45:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Composite indexes for the access policy and timetable reads; unique keys."

# (name, table, columns, unique)
INDEXES: list[Index] = [
    # The policy: "which groups is this person in on day D" and "who is in group G on day D".
    ("membership_person_valid", "membership", "person, valid_from, valid_to", False),
    ("membership_group_valid", "membership", '"group", valid_from, valid_to', False),
    # The policy: "whose guardian is this person" and "who are this pupil's guardians".
    ("guardianship_guardian_valid", "guardianship", "guardian, valid_from, valid_to", False),
    ("guardianship_pupil_valid", "guardianship", "pupil, valid_from, valid_to", False),
    ("staff_role_person_valid", "staff_role", "person, valid_from, valid_to", False),
    ("staff_role_org_role", "staff_role", "organisation, role", False),
    # Timetable reads: a group's lessons, a teacher's lessons; one change per lesson and day.
    ("lesson_group_weekday", "lesson", '"group", weekday', False),
    ("lesson_change_lesson_date", "lesson_change", "lesson, on_date", True),
    ("lesson_change_date", "lesson_change", "on_date", False),
    # Rate limiting counts recent failures of one key.
    ("login_failure_key_time", "login_failure", "key, failed_at", False),
    # Expired tokens are swept by expiry.
    ("auth_token_expires", "auth_token", "expires_at", False),
    ("school_group_school_kind", "school_group", "school, kind", False),
]


async def forwards() -> MigrationManager:
    return index_migration(ID, DESCRIPTION, INDEXES)
