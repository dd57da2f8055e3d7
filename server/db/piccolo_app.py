"""Piccolo's view of Reppu: one app, ``reppu``, with its tables and migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from server.db.sync_tables import SYNC_TABLES
from server.db.tables import ALL_TABLES

APP_CONFIG = AppConfig(
    app_name="reppu",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=[*ALL_TABLES, *SYNC_TABLES],
    migration_dependencies=[],
    commands=[],
)
