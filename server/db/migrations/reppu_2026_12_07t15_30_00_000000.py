"""A person's chosen language, kept apart from the roster's (written by hand).

``person.language`` is the school's records and every roster import sets it again;
``ui_language`` is what the person chose in the app's settings (``PUT /me/language``), null
until they choose. The same DDL runs on SQLite and PostgreSQL.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.db.ddl import ddl

ID = "2026-12-07T15:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "People: ui_language, the language a person chose."


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="reppu", description=DESCRIPTION)
    manager.add_raw(ddl("ALTER TABLE person ADD COLUMN ui_language VARCHAR(8) NULL"))
    manager.add_raw_backwards(ddl("ALTER TABLE person DROP COLUMN ui_language"))
    return manager
