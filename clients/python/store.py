"""The client's local store: records held once, the partitions holding them, the outbox.

Everything a pull answer changes is applied in one SQLite transaction, cursor included, so a
crash mid-apply leaves the store as it was and the same pull can simply be made again.

A mutation the server has answered leaves the outbox for the ``sent`` journal, where the
newest :data:`KEEP_SENT` stay: should the server be restored from a backup older than them,
they are queued again (:meth:`LocalStore.requeue_sent`) and the server, which answers the
ids it still has as replays, applies the ones it lost (docs/sync-protocol.md, "After a
restore").
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

import msgspec

from schemas.sync import Delete, PullResponse, Upsert
from sync.checksum import Tally, record_digest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS record (
    type TEXT NOT NULL, id INTEGER NOT NULL, v INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (type, id));
CREATE TABLE IF NOT EXISTS holding (
    partition TEXT NOT NULL, type TEXT NOT NULL, id INTEGER NOT NULL,
    PRIMARY KEY (partition, type, id));
CREATE INDEX IF NOT EXISTS holding_record ON holding (type, id);
CREATE TABLE IF NOT EXISTS partition_held (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, args TEXT NOT NULL, occurred_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sent (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, args TEXT NOT NULL, occurred_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outcome (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,
    code TEXT, reason TEXT, field TEXT);
"""


KEEP_SENT = 10_000
"""Answered mutations kept to send again after a restore: weeks of a busy teacher's roll calls."""


class LocalStore:
    """One device's copy of what its person may read, and what it has yet to send."""

    def __init__(self, path: str = ":memory:", *, keep_sent: int = KEEP_SENT) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.executescript(_SCHEMA)
        self.keep_sent = keep_sent

    # -- meta ---------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def cursor(self) -> str | None:
        return self.get_meta("cursor")

    # -- reading ------------------------------------------------------------------------
    def partitions(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT name FROM partition_held")}

    def records(self, record_type: str | None = None) -> dict[tuple[str, int], dict[str, Any]]:
        """Every record (of one type), by (type, id)."""
        sql = "SELECT type, id, data FROM record"
        args: tuple[str, ...] = ()
        if record_type is not None:
            sql, args = sql + " WHERE type = ?", (record_type,)
        return {(t, i): json.loads(d) for t, i, d in self.db.execute(sql, args)}

    def tally(self, partition: str) -> Tally:
        """The count and checksum of the local copy of ``partition``."""
        tally = Tally()
        rows = self.db.execute(
            "SELECT r.type, r.id, r.v FROM holding h JOIN record r ON r.type = h.type "
            "AND r.id = h.id WHERE h.partition = ?",
            (partition,),
        )
        for record_type, record_id, version in rows:
            tally = tally.add(record_digest(record_type, record_id, version))
        return tally

    def reset(self) -> None:
        """Forget every record and the cursor (the outbox stays: it is the user's work)."""
        self.db.execute("BEGIN IMMEDIATE")
        for table in ("holding", "record", "partition_held"):
            self.db.execute(f"DELETE FROM {table}")  # noqa: S608 (a fixed table name)
        self.db.execute("DELETE FROM meta WHERE key = 'cursor'")
        self.db.execute("COMMIT")

    # -- applying a pull ----------------------------------------------------------------
    def _drop_partition(self, partition: str) -> None:
        self.db.execute("DELETE FROM holding WHERE partition = ?", (partition,))

    def _collect_orphans(self) -> None:
        self.db.execute(
            "DELETE FROM record WHERE NOT EXISTS (SELECT 1 FROM holding h "
            "WHERE h.type = record.type AND h.id = record.id)"
        )

    def apply(self, answer: PullResponse) -> list[str]:
        """Apply a whole answer atomically; returns partitions whose checksum did not match."""
        encode = msgspec.json.encode
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for partition in answer.removed:
                self._drop_partition(partition)
                self.db.execute("DELETE FROM partition_held WHERE name = ?", (partition,))
            for partition in answer.added:
                self._drop_partition(partition)  # a fresh copy follows
                self.db.execute(
                    "INSERT OR IGNORE INTO partition_held (name) VALUES (?)", (partition,)
                )
            # Records no partition holds any more go before the fresh copies arrive, so a
            # stale version cannot outrank the one a fresh copy brings.
            self._collect_orphans()
            for change in answer.changes:
                if isinstance(change, Upsert):
                    record = change.record
                    record_type = type(record).__struct_config__.tag
                    assert isinstance(record_type, str)
                    # A record seen through two partitions is stored once, at its newest version.
                    self.db.execute(
                        "INSERT INTO record (type, id, v, data) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (type, id) DO UPDATE SET v = excluded.v, data = excluded.data "
                        "WHERE excluded.v >= record.v",
                        (record_type, record.id, record.v, encode(record).decode()),
                    )
                    self.db.execute(
                        "INSERT OR IGNORE INTO holding (partition, type, id) VALUES (?, ?, ?)",
                        (change.partition, record_type, record.id),
                    )
                elif isinstance(change, Delete):
                    self.db.execute(
                        "DELETE FROM holding WHERE partition = ? AND type = ? AND id = ?",
                        (change.partition, change.type, change.id),
                    )
            self._collect_orphans()
            if answer.cursor is not None:
                self.set_meta("cursor", answer.cursor)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return [
            s.partition
            for s in answer.summaries
            if (t := self.tally(s.partition)).count != s.count or t.hex != s.checksum
        ]

    # -- the outbox ---------------------------------------------------------------------
    def queue(self, name: str, args: dict[str, Any], occurred_at: str) -> int:
        """Keep a mutation until the server has answered it; returns its id."""
        next_id = int(self.get_meta("last_mutation_id") or 0) + 1
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute(
            "INSERT INTO outbox (id, name, args, occurred_at) VALUES (?, ?, ?, ?)",
            (next_id, name, json.dumps(args), occurred_at),
        )
        self.set_meta("last_mutation_id", str(next_id))
        self.db.execute("COMMIT")
        return next_id

    def pending(self) -> list[tuple[int, str, dict[str, Any], str]]:
        return [
            (i, n, json.loads(a), o)
            for i, n, a, o in self.db.execute(
                "SELECT id, name, args, occurred_at FROM outbox ORDER BY id"
            )
        ]

    def settle(self, outcomes: Iterable[dict[str, Any]]) -> None:
        """Drop answered mutations from the outbox, keeping their outcome for the user."""
        self.db.execute("BEGIN IMMEDIATE")
        for o in outcomes:
            if o.get("code") == "mutation.out_of_order":
                continue  # not recorded by the server: stays queued
            name = self.db.execute("SELECT name FROM outbox WHERE id = ?", (o["id"],)).fetchone()
            self.db.execute(
                "INSERT OR REPLACE INTO sent SELECT * FROM outbox WHERE id = ?", (o["id"],)
            )
            self.db.execute("DELETE FROM outbox WHERE id = ?", (o["id"],))
            self.db.execute(
                "INSERT OR REPLACE INTO outcome (id, name, status, code, reason, field) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    o["id"],
                    name[0] if name else "",
                    o["status"],
                    o.get("code"),
                    o.get("reason"),
                    o.get("field"),
                ),
            )
        self.db.execute(
            "DELETE FROM sent WHERE id <= (SELECT max(id) FROM sent) - ?", (self.keep_sent,)
        )
        self.db.execute("COMMIT")

    def requeue_sent(self) -> int:
        """Queue every kept answered mutation again (the server may have lost them); how many.

        Sending one the server still has costs a replay: it answers what it answered before.
        """
        self.db.execute("BEGIN IMMEDIATE")
        moved = self.db.execute("INSERT OR IGNORE INTO outbox SELECT * FROM sent").rowcount
        self.db.execute("DELETE FROM sent")
        self.db.execute("COMMIT")
        return moved

    def renumber(self, client_id: str) -> list[int]:
        """Start a new installation's numbering under ``client_id``: the outbox from id 1.

        For a server that lost mutations this store no longer keeps: it expects an id this
        store cannot send, so nothing after it could ever be applied under the old client id.
        Returns the old ids of what is still queued, in order (now ids 1, 2, ...).
        """
        self.db.execute("BEGIN IMMEDIATE")
        old = [row[0] for row in self.db.execute("SELECT id FROM outbox ORDER BY id")]
        self.db.execute("DELETE FROM sent")
        self.db.execute("CREATE TEMP TABLE renumbered AS SELECT * FROM outbox ORDER BY id")
        self.db.execute("DELETE FROM outbox")
        self.db.execute(
            "INSERT INTO outbox SELECT row_number() OVER (ORDER BY id), name, args, occurred_at "
            "FROM renumbered"
        )
        self.db.execute("DROP TABLE renumbered")
        # Outcomes are kept by id: the old installation's would be confused with the new.
        self.db.execute("DELETE FROM outcome")
        self.set_meta("last_mutation_id", str(len(old)))
        self.set_meta("client_id", client_id)
        self.db.execute("COMMIT")
        return old

    def outcomes(self) -> list[dict[str, Any]]:
        keys = ("id", "name", "status", "code", "reason", "field")
        rows = self.db.execute("SELECT id, name, status, code, reason, field FROM outcome")
        return [dict(zip(keys, row, strict=True)) for row in rows]
