"""Migrations: forwards and backwards on both engines, and the indexes the policy relies on."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

import asyncpg
import pytest
from piccolo.engine.base import Engine

from server.db.engine import write_transaction
from server.db.migrate import migrate, pending_migrations, schema_version, unmigrate
from server.db.schema import EVERY_TABLE
from server.db.tables import Membership

POLICY_INDEXES = {
    "membership_person_valid",
    "membership_group_valid",
    "guardianship_guardian_valid",
    "guardianship_pupil_valid",
    "staff_role_person_valid",
    "lesson_change_lesson_date",
    "login_failure_key_time",
    "change_log_partition_position",
    "change_log_record_position",
    "sync_record_key",
}


async def _index_names(engine: Engine[Any], backend: str) -> set[str]:
    if backend == "sqlite":
        rows = await engine.run_ddl("SELECT name FROM sqlite_master WHERE type = 'index'")
    else:
        rows = await engine.run_ddl("SELECT indexname AS name FROM pg_indexes")
    return {row["name"] for row in rows}


async def test_schema_is_current_with_its_indexes(fx_db: Engine[Any], fx_backend: str) -> None:
    assert await pending_migrations() == []
    assert await schema_version() is not None
    assert await _index_names(fx_db, fx_backend) >= POLICY_INDEXES
    for table in EVERY_TABLE:
        assert await table.table_exists()


async def test_backwards_then_forwards(fx_db: Engine[Any], fx_backend: str) -> None:
    version = await schema_version()
    try:
        await unmigrate(quiet=True)
        assert not POLICY_INDEXES & await _index_names(fx_db, fx_backend)
        for table in EVERY_TABLE:
            assert not await table.table_exists()
        assert len(await pending_migrations()) >= 2
    finally:
        await migrate(quiet=True)
    assert await schema_version() == version
    assert await pending_migrations() == []


async def test_foreign_keys_hold_inside_a_write_transaction(fx_db: Engine[Any]) -> None:
    # server/db/engine.py drops Piccolo's per-statement foreign-keys pragma on SQLite: the
    # connections must still refuse a row pointing nowhere, inside a transaction as outside.
    with pytest.raises((sqlite3.IntegrityError, asyncpg.ForeignKeyViolationError)):
        async with write_transaction(fx_db):
            await Membership.insert(
                Membership(
                    group=2**31 - 1, person=2**31 - 1, role="pupil", valid_from=dt.date.today()
                )
            )
    assert await Membership.count() == 0
