"""The change log's record index ends with the position (written by hand).

The pull sends of each record only its latest change up to a partition's head: for every
change it reads, it asks whether the same record has a newer change in the same partition.
With the position as the index's last column that question is one step into the index (on
PostgreSQL an index-only scan) instead of a visit to each of the record's older rows.
Compaction asks the same question. The new index replaces ``change_log_record``, whose
columns are its first three, so a write still updates one index.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.db.ddl import ddl

ID = "2026-12-07T04:45:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Sync: the change log's record index ends with the position."


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="reppu", description=DESCRIPTION)
    manager.add_raw(
        ddl(
            "CREATE INDEX IF NOT EXISTS change_log_record_position "
            "ON change_log (record_type, record_id, partition, id)"
        )
    )
    manager.add_raw(ddl("DROP INDEX IF EXISTS change_log_record"))
    manager.add_raw_backwards(
        ddl(
            "CREATE INDEX IF NOT EXISTS change_log_record "
            "ON change_log (record_type, record_id, partition)"
        )
    )
    manager.add_raw_backwards(ddl("DROP INDEX IF EXISTS change_log_record_position"))
    return manager
