"""Forms: one definition per organisation, key and version; one response per request and pupil."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.db.ddl import Index, index_migration

ID = "2026-11-28T13:03:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "form_definition and form_response unique keys."

INDEXES: list[Index] = [
    ("form_definition_version", "form_definition", "organisation, key, version", True),
    ("form_response_request_pupil", "form_response", "request, pupil", True),
]


async def forwards() -> MigrationManager:
    return index_migration(ID, DESCRIPTION, INDEXES)
