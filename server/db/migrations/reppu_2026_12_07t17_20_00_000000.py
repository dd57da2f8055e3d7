"""The lanes' claim index holds only queued deliveries (written by hand).

``delivery_claim`` indexed every delivery, sent or not, so each outcome (``queued`` to
``sent``, ``gone``, ``failed``) wrote one more index entry and the index grew with every
storm. Partial, on ``status = 'queued'``, it holds what the claims and the lanes' gauges
(``server/outbox_lanes.py``) ask for, and a finished delivery leaves it. Both engines take
the same DDL; their planners use it for ``WHERE status = 'queued' AND channel = ...``.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.db.ddl import ddl

ID = "2026-12-07T17:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "delivery_claim: only queued deliveries (a partial index)."

_FULL = (
    "CREATE INDEX IF NOT EXISTS delivery_claim ON delivery "
    "(status, channel, urgent, not_before, id)"
)
_QUEUED = (
    "CREATE INDEX IF NOT EXISTS delivery_claim_queued ON delivery "
    "(channel, urgent, not_before, id) WHERE status = 'queued'"
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="reppu", description=DESCRIPTION)
    manager.add_raw(ddl(_QUEUED))
    manager.add_raw(ddl("DROP INDEX IF EXISTS delivery_claim"))
    manager.add_raw_backwards(ddl(_FULL))
    manager.add_raw_backwards(ddl("DROP INDEX IF EXISTS delivery_claim_queued"))
    return manager
