"""Retention: one mark per day with the change log's head (written by hand, as Piccolo's auto
would)."""

from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import Column
from piccolo.columns.column_types import BigInt, Date, Serial, Timestamptz
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-07T14:35:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Retention: retention_mark."


def _params(**extra: Any) -> dict[str, Any]:
    return {
        "null": False,
        "primary_key": False,
        "unique": False,
        "index": False,
        "index_method": IndexMethod.btree,
        "choices": None,
        "db_column_name": None,
        "secret": False,
        **extra,
    }


COLUMNS: list[tuple[str, type[Column], dict[str, Any]]] = [
    ("id", Serial, _params(primary_key=True)),
    ("day", Date, _params(unique=True, index=True)),
    ("change_log_head", BigInt, _params(default=0)),
    ("recorded_at", Timestamptz, _params()),
    ("daily_claimed_at", Timestamptz, _params(null=True, default=None)),
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="reppu", description=DESCRIPTION)
    manager.add_table(
        class_name="RetentionMark", tablename="retention_mark", schema=None, columns=None
    )
    for name, column_class, params in COLUMNS:
        manager.add_column(
            table_class_name="RetentionMark",
            tablename="retention_mark",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
            schema=None,
        )
    return manager
