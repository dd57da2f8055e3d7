"""The sync engine's tables: the change log, partition heads, record placement, clients.

``docs/sync-protocol.md`` explains how they are used; ``server/sync_store.py`` is the only
code that writes them.
"""

from __future__ import annotations

from piccolo.columns import BigInt, BigSerial, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.table import Table


class ChangeLog(Table, tablename="change_log"):
    """One change of one record in one partition. ``id`` is the position clients sync to."""

    id = BigSerial(primary_key=True)
    partition = Varchar(length=40)
    record_type = Varchar(length=20)
    record_id = BigInt()
    version = BigInt()
    data = Text(null=True, default=None)
    """The record as JSON; NULL when the partition no longer holds the record."""


class PartitionState(Table, tablename="partition_state"):
    """A partition's head (newest change), record count and checksum, kept by the write path."""

    id = Serial(primary_key=True)
    partition = Varchar(length=40, unique=True, index=True)
    head = BigInt(default=0)
    record_count = Integer(default=0)
    checksum = Varchar(length=16, default="0000000000000000")
    horizon = BigInt(default=0)
    """Deletions at or below this position have been compacted away."""


class SyncRecord(Table, tablename="sync_record"):
    """Where a record is now: its version and the partitions that hold it."""

    id = Serial(primary_key=True)
    record_type = Varchar(length=20)
    record_id = BigInt()
    version = BigInt()
    partitions = Text()
    """Space-separated partition names, sorted."""


class SyncClient(Table, tablename="sync_client"):
    """A client installation (one app on one device) and the last mutation it had applied."""

    id = Serial(primary_key=True)
    client_id = Varchar(length=64, unique=True, index=True)
    person = BigInt()
    last_mutation_id = BigInt(default=0)
    created_at = Timestamptz()


class SyncMutation(Table, tablename="sync_mutation"):
    """The result of each pushed mutation, so that a replay gets the same answer."""

    id = BigSerial(primary_key=True)
    client = BigInt()
    mutation_id = BigInt()
    name = Varchar(length=60)
    status = Varchar(length=10)
    code = Varchar(length=60, null=True, default=None)
    reason = Text(null=True, default=None)
    field = Varchar(length=200, null=True, default=None)
    occurred_at = Timestamptz()
    received_at = Timestamptz()


class SyncEpoch(Table, tablename="sync_epoch"):
    """A random name for this database's sync history, made on first use.

    Cursors are signed with a key derived from it, so a cursor made by another database (one
    deleted and loaded afresh, say) is refused cleanly instead of being read as positions in
    this one's log.
    """

    id = Serial(primary_key=True)
    epoch = Varchar(length=32)


class CompactionRun(Table, tablename="compaction_run"):
    """One run of ``reppu compact``, written in its transaction: an admin's sync health shows
    the last one (``GET /admin/sync-health``). A row a day at most; nothing prunes them."""

    id = Serial(primary_key=True)
    finished_at = Timestamptz()
    superseded = BigInt(default=0)
    """Changes removed because a later change of the same record replaced them."""
    tombstones = BigInt(default=0)
    """Old deletions removed (their partitions' horizons rose)."""
    partitions_with_new_horizon = Integer(default=0)
    rows_left = BigInt(default=0)


SYNC_TABLES: tuple[type[Table], ...] = (
    ChangeLog,
    PartitionState,
    SyncRecord,
    SyncClient,
    SyncMutation,
    SyncEpoch,
    CompactionRun,
)
