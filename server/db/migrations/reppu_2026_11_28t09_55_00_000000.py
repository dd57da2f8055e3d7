"""Unique keys and the fan-out's claim indexes for messages and notifications."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.db.ddl import Index, index_migration

ID = "2026-11-28T09:55:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Unique keys of receipts, participants, subscriptions; delivery claim indexes."

INDEXES: list[Index] = [
    ("thread_participant_key", "thread_participant", "thread, person", True),
    ("bulletin_recipient_key", "bulletin_recipient", "bulletin, person", True),
    ("read_receipt_key", "read_receipt", "person, item_type, item_id", True),
    ("push_subscription_device", "push_subscription", "device", True),
    ("notify_preference_person", "notify_preference", "person", True),
    ("outbox_open", "outbox", "done_at, id", False),
    ("delivery_key", "delivery", "key", True),
    ("delivery_due", "delivery", "status, urgent, not_before", False),
    ("delivery_outbox", "delivery", "outbox, person", False),
    ("delivery_digest", "delivery", "digest", False),
]


async def forwards() -> MigrationManager:
    return index_migration(ID, DESCRIPTION, INDEXES)
