"""OneRoster: one row per sourcedId of a sending system, found by that key."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.db.ddl import Index, index_migration

ID = "2026-11-28T16:00:10:000000"
VERSION = "1.38.0"
DESCRIPTION = "external_ref key."

INDEXES: list[Index] = [
    ("external_ref_key", "external_ref", "source, kind, source_id", True),
]


async def forwards() -> MigrationManager:
    return index_migration(ID, DESCRIPTION, INDEXES)
