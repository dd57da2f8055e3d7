"""Timetable calendar feeds: calendar_feed (written by hand, as Piccolo's auto would)."""

from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import Column, OnDelete, OnUpdate
from piccolo.columns.column_types import ForeignKey, Serial, Text, Timestamptz, Varchar
from piccolo.columns.indexes import IndexMethod
from piccolo.table import Table

ID = "2026-11-28T16:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "calendar_feed: secret timetable feed URLs (only their tokens' HMAC)."


class Person(Table, tablename="person", schema=None):
    id = Serial(primary_key=True)


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


def _person_fk() -> dict[str, Any]:
    return _params(
        references=Person,
        on_delete=OnDelete.restrict,
        on_update=OnUpdate.cascade,
        target_column=None,
        index=True,
    )


COLUMNS: list[tuple[str, type[Column], dict[str, Any]]] = [
    ("id", Serial, _params(primary_key=True)),
    ("owner", ForeignKey, _person_fk()),
    ("subject", ForeignKey, _person_fk()),
    ("token_hash", Varchar, _params(length=64, default="", unique=True, index=True)),
    ("created_at", Timestamptz, _params()),
    ("revoked_at", Timestamptz, _params(null=True, default=None)),
    ("state", Text, _params(default="{}")),
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="reppu", description=DESCRIPTION)
    manager.add_table(
        class_name="CalendarFeed", tablename="calendar_feed", schema=None, columns=None
    )
    for name, column_class, params in COLUMNS:
        manager.add_column(
            table_class_name="CalendarFeed",
            tablename="calendar_feed",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
            schema=None,
        )
    return manager
