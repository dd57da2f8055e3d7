"""An index for the live stream's watch of partition heads on SQLite."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.db.ddl import Index, index_migration

ID = "2026-11-28T07:55:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "partition_state.head, for 'which partitions moved since position N'."

INDEXES: list[Index] = [("partition_state_head", "partition_state", "head", False)]


async def forwards() -> MigrationManager:
    return index_migration(ID, DESCRIPTION, INDEXES)
