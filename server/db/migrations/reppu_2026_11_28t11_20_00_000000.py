"""The delivery lanes' claim: an ordered index scan, not a sort of every queued row."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.db.ddl import Index, index_migration

ID = "2026-11-28T11:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "delivery (status, channel, urgent, not_before, id) for the lanes' claims."

INDEXES: list[Index] = [
    ("delivery_claim", "delivery", "status, channel, urgent, not_before, id", False)
]


async def forwards() -> MigrationManager:
    return index_migration(ID, DESCRIPTION, INDEXES)
