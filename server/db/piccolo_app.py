"""Piccolo's view of Reppu: one app, ``reppu``, with its tables and migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from server.db.schema import EVERY_TABLE

APP_CONFIG = AppConfig(
    app_name="reppu",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=list(EVERY_TABLE),
    migration_dependencies=[],
    commands=[],
)
