"""Hand-written migrations of indexes that Piccolo's column options cannot express."""

from collections.abc import Awaitable, Callable

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

Index = tuple[str, str, str, bool]
"""(name, table, columns, unique)"""


def ddl(sql: str) -> Callable[[], Awaitable[None]]:
    """A migration step running ``sql`` on the migration's engine (same SQL on both engines)."""

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl(sql)

    return run


def index_migration(migration_id: str, description: str, indexes: list[Index]) -> MigrationManager:
    """A migration creating ``indexes`` (and dropping them, backwards)."""
    manager = MigrationManager(migration_id=migration_id, app_name="reppu", description=description)
    for name, table, columns, unique in indexes:
        kind = "UNIQUE INDEX" if unique else "INDEX"
        manager.add_raw(ddl(f"CREATE {kind} IF NOT EXISTS {name} ON {table} ({columns})"))
    for name, *_ in reversed(indexes):
        manager.add_raw_backwards(ddl(f"DROP INDEX IF EXISTS {name}"))
    return manager
