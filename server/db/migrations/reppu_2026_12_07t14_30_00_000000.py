"""Operations: the delivery workers' heartbeats (written by hand).

Readiness (``GET /health/ready``) and ``/metrics`` ask whether a delivery worker is alive;
each worker beats into this table every few seconds (``server/worker_presence.py``).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.db.ddl import ddl

ID = "2026-12-07T14:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Operations: worker_heartbeat."


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="reppu", description=DESCRIPTION)
    manager.add_raw(
        ddl(
            "CREATE TABLE IF NOT EXISTS worker_heartbeat ("
            "id VARCHAR(80) PRIMARY KEY, "
            "host VARCHAR(255) NOT NULL DEFAULT '', "
            "pid INTEGER NOT NULL DEFAULT 0, "
            "started_at TIMESTAMPTZ NOT NULL, "
            "beat_at TIMESTAMPTZ NOT NULL)"
        )
    )
    manager.add_raw_backwards(ddl("DROP TABLE IF EXISTS worker_heartbeat"))
    return manager
