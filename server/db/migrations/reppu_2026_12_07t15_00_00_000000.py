"""Sync health: each run of ``reppu compact`` is recorded (written by hand).

An admin's ``GET /admin/sync-health`` shows when the change log was last compacted and how
much went; ``server/compaction.py`` writes one ``compaction_run`` row in the run's transaction.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

from server.db.ddl import ddl

ID = "2026-12-07T15:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Sync health: compaction_run."


COLUMNS = (
    "finished_at TIMESTAMPTZ NOT NULL, "
    "superseded BIGINT NOT NULL DEFAULT 0, "
    "tombstones BIGINT NOT NULL DEFAULT 0, "
    "partitions_with_new_horizon INTEGER NOT NULL DEFAULT 0, "
    "rows_left BIGINT NOT NULL DEFAULT 0"
)


async def create_table() -> None:
    # The id as Piccolo's Serial makes it: on SQLite only ``INTEGER PRIMARY KEY`` is the
    # rowid that numbers itself (a SERIAL column there would stay NULL).
    engine = engine_finder()
    assert engine is not None
    key = "INTEGER PRIMARY KEY" if isinstance(engine, SQLiteEngine) else "SERIAL PRIMARY KEY"
    await engine.run_ddl(f"CREATE TABLE IF NOT EXISTS compaction_run (id {key}, {COLUMNS})")


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="reppu", description=DESCRIPTION)
    manager.add_raw(create_table)
    manager.add_raw_backwards(ddl("DROP TABLE IF EXISTS compaction_run"))
    return manager
