"""Indexes and unique keys of the sync tables. The same SQL runs on SQLite and PostgreSQL."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.db.ddl import Index, index_migration

ID = "2026-11-28T07:51:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Sync: the pull's log index; one placement per record; one result per mutation."

# (name, table, columns, unique)
INDEXES: list[Index] = [
    # The pull reads a partition's changes after a position, in position order.
    ("change_log_partition_position", "change_log", "partition, id", False),
    # Compaction finds a record's older changes in a partition.
    ("change_log_record", "change_log", "record_type, record_id, partition", False),
    ("sync_record_key", "sync_record", "record_type, record_id", True),
    ("sync_mutation_client_id", "sync_mutation", "client, mutation_id", True),
]


async def forwards() -> MigrationManager:
    return index_migration(ID, DESCRIPTION, INDEXES)
