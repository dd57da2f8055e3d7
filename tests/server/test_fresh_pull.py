"""A partition arrives as its current state: of each record only its latest change, and
from position 0 no deletions, on both databases, before any compaction."""

from __future__ import annotations

from typing import Any

from piccolo.engine.base import Engine

from schemas.core import GroupKind
from schemas.sync import GroupRecord
from server.db.engine import write_transaction
from server.sync_store import RecordWrite, SqlPullStore, write_records
from sync.pull import pull

GROUP = "group:1"


def _record(record_id: int, name: str) -> GroupRecord:
    return GroupRecord(
        id=record_id, v=0, name=name, kind=GroupKind.HOME_CLASS, school_id=1, school_name="S"
    )


async def _write(engine: Engine[Any], record_id: int, name: str | None) -> None:
    record = None if name is None else _record(record_id, name)
    async with write_transaction(engine):
        await write_records(engine, [RecordWrite("group", record_id, record, frozenset({GROUP}))])


async def _history(engine: Engine[Any]) -> list[int]:
    """Record 1 written three times, record 2 written then deleted, record 3 once; returns
    the six positions (PostgreSQL's sequence does not start again with each test)."""
    positions = []
    for record_id, name in ((1, "a"), (2, "b"), (1, "a2"), (3, "c"), (2, None), (1, "a3")):
        await _write(engine, record_id, name)
        positions.append((await SqlPullStore().heads([GROUP]))[GROUP].head)
    return positions


async def test_a_fresh_copy_gets_one_entry_per_live_record(fx_db: Engine[Any]) -> None:
    at = await _history(fx_db)
    result = await pull(SqlPullStore(), readable={GROUP}, positions=None, limit=100)
    assert [(e.record_id, e.version) for e in result.entries] == [(3, 1), (1, 3)]
    assert all(e.data is not None for e in result.entries)
    assert result.positions == {GROUP: at[5]}
    assert result.summaries[GROUP].count == 2


async def test_a_copy_behind_gets_latest_versions_and_deletions(fx_db: Engine[Any]) -> None:
    at = await _history(fx_db)
    result = await pull(SqlPullStore(), readable={GROUP}, positions={GROUP: at[1]}, limit=100)
    assert [(e.position, e.record_id, e.version, e.data is None) for e in result.entries] == [
        (at[3], 3, 1, False),
        (at[4], 2, 2, True),
        (at[5], 1, 3, False),
    ]


async def test_pages_resume_after_the_cut_and_skip_nothing(fx_db: Engine[Any]) -> None:
    at = await _history(fx_db)
    store = SqlPullStore()
    first = await pull(store, readable={GROUP}, positions=None, limit=1)
    assert [(e.record_id, e.version) for e in first.entries] == [(3, 1)]
    assert first.has_more
    assert first.positions == {GROUP: at[3]}
    # Record 1 changes again above the head this page was read under: it still arrives.
    await _write(fx_db, 1, "a4")
    second = await pull(store, readable={GROUP}, positions=first.positions, limit=10)
    assert [(e.record_id, e.version, e.data is None) for e in second.entries] == [
        (2, 2, True),
        (1, 4, False),
    ]
    assert not second.has_more


async def test_only_changes_up_to_the_head_count(fx_db: Engine[Any]) -> None:
    """A change committed after the heads were read does not hide the one below the head
    (the summary at that head must match what the client holds)."""
    await _history(fx_db)
    store = SqlPullStore()
    heads = await store.heads([GROUP])
    await _write(fx_db, 3, "c2")  # above the head read
    rows = await store.changes({GROUP: (0, heads[GROUP].head)}, 100)
    assert [(e.record_id, e.version) for e in rows] == [(3, 1), (1, 3)]
