"""One push subscription per endpoint: a browser shared by two people reaches one of them."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.db.ddl import Index, index_migration

ID = "2026-11-28T10:34:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "push_subscription.endpoint unique."

INDEXES: list[Index] = [("push_subscription_endpoint", "push_subscription", "endpoint", True)]


async def forwards() -> MigrationManager:
    return index_migration(ID, DESCRIPTION, INDEXES)
