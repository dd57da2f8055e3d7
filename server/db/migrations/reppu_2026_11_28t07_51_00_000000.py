"""Indexes and unique keys of the sync tables. The same SQL runs on SQLite and PostgreSQL."""

from collections.abc import Awaitable, Callable

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-28T07:51:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Sync: the pull's log index; one placement per record; one result per mutation."

# (name, table, columns, unique)
INDEXES = [
    # The pull reads a partition's changes after a position, in position order.
    ("change_log_partition_position", "change_log", "partition, id", False),
    # Compaction finds a record's older changes in a partition.
    ("change_log_record", "change_log", "record_type, record_id, partition", False),
    ("sync_record_key", "sync_record", "record_type, record_id", True),
    ("sync_mutation_client_id", "sync_mutation", "client, mutation_id", True),
]


def _ddl(sql: str) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl(sql)

    return run


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="reppu", description=DESCRIPTION)
    for name, table, columns, unique in INDEXES:
        kind = "UNIQUE INDEX" if unique else "INDEX"
        manager.add_raw(_ddl(f"CREATE {kind} IF NOT EXISTS {name} ON {table} ({columns})"))
    for name, *_ in reversed(INDEXES):
        manager.add_raw_backwards(_ddl(f"DROP INDEX IF EXISTS {name}"))
    return manager
