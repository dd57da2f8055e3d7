"""The OneRoster import's memory: external_ref (written by hand, as Piccolo's auto would)."""

from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import Column
from piccolo.columns.column_types import Boolean, Integer, Serial, Text, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-28T16:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "external_ref: OneRoster sourcedIds and the rows they became."


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
    ("source", Varchar, _params(length=64, default="")),
    ("kind", Varchar, _params(length=16, default="")),
    ("source_id", Varchar, _params(length=255, default="")),
    ("local_id", Integer, _params(null=True, default=None)),
    ("modified", Varchar, _params(length=40, default="")),
    ("digest", Varchar, _params(length=32, default="")),
    ("data", Text, _params(default="")),
    ("ended", Boolean, _params(default=False)),
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="reppu", description=DESCRIPTION)
    manager.add_table(class_name="ExternalRef", tablename="external_ref", schema=None, columns=None)
    for name, column_class, params in COLUMNS:
        manager.add_column(
            table_class_name="ExternalRef",
            tablename="external_ref",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
            schema=None,
        )
    return manager
