"""Retention: how long Reppu keeps what it no longer needs, ``reppu retain`` and the daily run.

``docs/retention.md`` gives the settings, their defaults and the reasons. Four kinds go, each
after its own period (``Settings.retain_*``; 0 keeps that kind for ever):

1. **Audit trails** (``retain_audit_days``): roll marks of lessons before the cutoff day,
   decisions on leave that ended before it, and account events before the cutoff. None of
   them is synced; the derived rows they explain (``attendance``, ``absence_notice``) stay.
   A correction reaches at most 30 days back (explanations) and the shortest period allowed
   is a year, so attendance is never derived again from a trail that has lost rows.
2. **Deliveries** (``retain_deliveries_days``): notification deliveries that are finished
   (sent, failed, gone, expired, off, unreachable, digested) and were last touched before the
   cutoff, unless their outbox entry is still being expanded (its keys keep a retried
   expansion from notifying twice); then finished outbox entries with no delivery left.
   Queued deliveries and digests still waiting stay however old. Not synced.
3. **Deletions in the change log** (``retain_changes_days``): the tombstones at or below
   the position the log had reached that many days ago, removed the way compaction removes
   them (``server/compaction.py``): each partition's horizon rises, and a client positioned
   below it is sent the partition afresh, never a wrong state. The change log has no
   timestamps, so every run records the day's head in ``retention_mark``.
4. **Signed forms** (``retain_signed_forms_years``): a form request whose due date and every
   act on it (sending, saving, submitting, signing, voiding) are older than the cutoff goes
   as a whole, with its responses and signatures. Requests and responses are synced, so
   they go through the one write path: their deletions enter the change log in the same
   transaction as the rows go, and devices drop them on their next pull.

Rows go oldest first in batches, each batch its own short write transaction (SQLite has one
writer; a long transaction would hold up every roll call), never cut off half way
(``to_the_end``). The newest row of a table always stays: SQLite hands out ``max(id) + 1``,
and ids are remembered elsewhere (the live stream watches account events by id, deliveries
point at their digest's id). Every step is idempotent, so a second run, or a second worker
running at the same moment, deletes only what the first did not.

The daily run (:class:`DailyRetention`) runs inside every delivery worker from
``DAILY_AT`` Helsinki time; the first worker to claim the day in ``retention_mark`` runs it,
the others skip it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from server.clock import SCHOOL_TIMEZONE, school_today, utc_now
from server.compaction import remove_deletions_up_to
from server.db.bulk import run_sql
from server.db.engine import write_transaction
from server.leases import to_the_end
from server.settings import Settings
from server.sync_store import RecordWrite, write_records

log = logging.getLogger("reppu.retention")

BATCH_ROWS = 1000
"""Rows per write transaction: a few milliseconds of the write lock on SQLite."""
FORM_BATCH = 50
"""Form requests per write transaction (each with a class's responses and signatures)."""
DAILY_AT = dt.time(3, 0)
"""The daily run starts from this Helsinki time: nobody marks roll calls at three."""
DAILY_POLL_SECONDS = 60.0

FINISHED_DELIVERY = ("sent", "failed", "gone", "expired", "off", "unreachable", "digested")
"""Delivery statuses after which nothing more happens to the row."""

Progress = Callable[[str, int], None]
"""Called after each batch with the table and how many rows of it went so far."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """The periods; 0 keeps that kind for ever."""

    audit_days: int
    deliveries_days: int
    changes_days: int
    signed_forms_years: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            audit_days=settings.retain_audit_days,
            deliveries_days=settings.retain_deliveries_days,
            changes_days=settings.retain_changes_days,
            signed_forms_years=settings.retain_signed_forms_years,
        )


@dataclass(slots=True)
class RetentionReport:
    """Rows removed per table (or, in a dry run, rows that would be)."""

    dry_run: bool
    removed: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.removed.values())


@dataclass(frozen=True, slots=True)
class _Rule:
    """Rows of ``table`` matching ``where`` (``{}`` for each of ``args``) may go."""

    table: str
    where: str
    args: tuple[Any, ...]


def _not_newest(table: str) -> str:
    return f"id < (SELECT max(id) FROM {table})"


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _start_of(day: dt.date) -> dt.datetime:
    """Midnight at the start of ``day`` in Helsinki, in UTC."""
    return dt.datetime.combine(day, dt.time(0), SCHOOL_TIMEZONE).astimezone(dt.UTC)


def _audit_rules(days: int, now: dt.datetime) -> list[_Rule]:
    if not days:
        return []
    day = school_today(now) - dt.timedelta(days=days)
    return [
        # A lesson's marks go together: its day decides, not when each mark arrived.
        _Rule("roll_mark", f"on_date < {{}} AND {_not_newest('roll_mark')}", (day,)),
        # A leave's decisions go once the leave itself has ended before the cutoff day.
        _Rule(
            "leave_decision",
            "notice IN (SELECT id FROM absence_notice WHERE to_date < {}) "
            f"AND {_not_newest('leave_decision')}",
            (day,),
        ),
        _Rule("account_event", f"at < {{}} AND {_not_newest('account_event')}", (_start_of(day),)),
    ]


def _delivery_rules(days: int, now: dt.datetime) -> list[_Rule]:
    if not days:
        return []
    cutoff = _start_of(school_today(now) - dt.timedelta(days=days))
    finished = ", ".join(f"'{s}'" for s in FINISHED_DELIVERY)
    return [
        _Rule(
            "delivery",
            f"status IN ({finished}) AND updated_at < {{}} AND (outbox IS NULL OR NOT EXISTS "
            "(SELECT 1 FROM outbox o WHERE o.id = delivery.outbox AND o.done_at IS NULL)) "
            f"AND {_not_newest('delivery')}",
            (cutoff,),
        ),
        # After the deliveries: an entry goes only once none of its deliveries is left.
        _Rule(
            "outbox",
            "done_at IS NOT NULL AND done_at < {} "
            "AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.outbox = outbox.id) "
            f"AND {_not_newest('outbox')}",
            (cutoff,),
        ),
    ]


_FORM_REQUESTS = (
    "due_on < {} AND sent_at < {} "
    "AND NOT EXISTS (SELECT 1 FROM form_response p WHERE p.request = form_request.id "
    "AND (p.saved_at >= {} OR p.submitted_at >= {})) "
    "AND NOT EXISTS (SELECT 1 FROM form_signature s JOIN form_response p ON s.response = p.id "
    "WHERE p.request = form_request.id AND (s.received_at >= {} OR s.voided_at >= {}))"
)


def _form_rule(years: int, now: dt.datetime) -> _Rule | None:
    if not years:
        return None
    day = _years_before(school_today(now), years)
    at = _start_of(day)
    return _Rule("form_request", _FORM_REQUESTS, (day, at, at, at, at, at))


def _placeholders(values: list[Any]) -> str:
    return ", ".join("{}" for _ in values)


async def _count(rule: _Rule) -> int:
    rows = await run_sql(f"SELECT count(*) AS n FROM {rule.table} WHERE {rule.where}", *rule.args)
    return int(rows[0]["n"])


async def _delete_batch(engine: Engine[Any], rule: _Rule, batch: int) -> int:
    async with write_transaction(engine):
        gone = await run_sql(
            f"DELETE FROM {rule.table} WHERE id IN (SELECT id FROM {rule.table} "
            f"WHERE {rule.where} ORDER BY id LIMIT {{}}) RETURNING id",
            *rule.args,
            batch,
        )
    return len(gone)


async def _delete(engine: Engine[Any], rule: _Rule, batch: int, progress: Progress) -> int:
    total = 0
    # Until a batch finds nothing: a batch can come back short while rows are left (another
    # worker took some of the same rows), so a short batch does not mean the end.
    while removed := await to_the_end(_delete_batch(engine, rule, batch)):
        total += removed
        progress(rule.table, total)
    return total


async def _retire_forms_batch(engine: Engine[Any], rule: _Rule, batch: int) -> tuple[int, ...]:
    """One batch of requests, with their responses and signatures; their records leave sync
    through the one write path in the same transaction."""
    async with write_transaction(engine):
        # PostgreSQL: a second run at the same moment skips the requests this one holds
        # instead of writing a second deletion of the same record.
        lock = " FOR UPDATE SKIP LOCKED" if isinstance(engine, PostgresEngine) else ""
        found = await run_sql(
            f"SELECT id FROM form_request WHERE {rule.where} ORDER BY id LIMIT {{}}{lock}",
            *rule.args,
            batch,
        )
        requests = [int(r["id"]) for r in found]
        if not requests:
            return (0, 0, 0)
        responses = [
            int(r["id"])
            for r in await run_sql(
                f"SELECT id FROM form_response WHERE request IN ({_placeholders(requests)})",
                *requests,
            )
        ]
        # The domain rows first, then the sync tables, in the order a form mutation takes
        # them, so that the two never wait for each other crosswise.
        signatures: list[dict[str, Any]] = []
        if responses:
            marks = _placeholders(responses)
            signatures = await run_sql(
                f"DELETE FROM form_signature WHERE response IN ({marks}) RETURNING id", *responses
            )
            await run_sql(f"DELETE FROM form_response WHERE id IN ({marks})", *responses)
        await run_sql(
            f"DELETE FROM form_request WHERE id IN ({_placeholders(requests)})", *requests
        )
        await write_records(
            engine,
            [RecordWrite("form_request", i, None, frozenset()) for i in requests]
            + [RecordWrite("form_response", i, None, frozenset()) for i in responses],
        )
    return (len(requests), len(responses), len(signatures))


async def _retire_forms(
    engine: Engine[Any], rule: _Rule, batch: int, progress: Progress
) -> dict[str, int]:
    totals = {"form_request": 0, "form_response": 0, "form_signature": 0}
    while True:
        counts = await to_the_end(_retire_forms_batch(engine, rule, batch))
        if not counts[0]:
            return totals
        for table, count in zip(totals, counts, strict=True):
            totals[table] += count
        progress("form_request", totals["form_request"])


async def _count_forms(rule: _Rule) -> dict[str, int]:
    requests = f"SELECT id FROM form_request WHERE {rule.where}"
    responses = f"SELECT id FROM form_response WHERE request IN ({requests})"
    return {
        "form_request": await _count(rule),
        "form_response": await _count(
            _Rule("form_response", f"request IN ({requests})", rule.args)
        ),
        "form_signature": await _count(
            _Rule("form_signature", f"response IN ({responses})", rule.args)
        ),
    }


async def _newest_position() -> int:
    rows = await run_sql("SELECT max(id) AS head FROM change_log")
    return int(rows[0]["head"] or 0)


async def record_mark(engine: Engine[Any], now: dt.datetime) -> None:
    """Remember the change log's head for today (the first run of the day's head stays)."""
    async with write_transaction(engine):
        await _insert_mark(now)


async def _insert_mark(now: dt.datetime) -> None:
    await run_sql(
        "INSERT INTO retention_mark (day, change_log_head, recorded_at) VALUES ({}, {}, {}) "
        "ON CONFLICT (day) DO NOTHING",
        school_today(now),
        await _newest_position(),
        now,
    )


async def _changes_position(days: int, now: dt.datetime) -> int | None:
    """The newest head recorded on a day at least ``days`` days ago, if any."""
    rows = await run_sql(
        "SELECT max(change_log_head) AS head FROM retention_mark WHERE day <= {}",
        school_today(now) - dt.timedelta(days=days),
    )
    head = rows[0]["head"]
    return None if head is None else int(head)


def _no_progress(table: str, done: int) -> None:
    del table, done


async def retain(
    engine: Engine[Any],
    policy: RetentionPolicy,
    now: dt.datetime,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    batch: int = BATCH_ROWS,
    form_batch: int = FORM_BATCH,
) -> RetentionReport:
    """Remove what ``policy`` no longer keeps at ``now``; with ``dry_run`` only count it
    (and record nothing). Safe to run again, and beside another run."""
    report = RetentionReport(dry_run=dry_run)
    tell = progress or _no_progress
    for rule in _audit_rules(policy.audit_days, now) + _delivery_rules(policy.deliveries_days, now):
        report.removed[rule.table] = (
            await _count(rule) if dry_run else await _delete(engine, rule, batch, tell)
        )
    forms = _form_rule(policy.signed_forms_years, now)
    if forms is not None:
        report.removed.update(
            await _count_forms(forms)
            if dry_run
            else await _retire_forms(engine, forms, form_batch, tell)
        )
    if not dry_run:
        await to_the_end(record_mark(engine, now))
    if policy.changes_days:
        position = await _changes_position(policy.changes_days, now)
        removed = 0
        if position is not None and dry_run:
            cutoff = min(position, await _newest_position() - 1)
            rows = await run_sql(
                "SELECT count(*) AS n FROM change_log WHERE data IS NULL AND id <= {}", cutoff
            )
            removed = int(rows[0]["n"])
        elif position is not None:
            removed = await remove_deletions_up_to(engine, position, batch=batch)
            tell("change_log", removed)
        report.removed["change_log"] = removed
    return report


async def _claim_day(engine: Engine[Any], now: dt.datetime) -> bool:
    """Claim today's daily run; False if another worker (or an earlier start) has it."""
    async with write_transaction(engine):
        await _insert_mark(now)
        claimed = await run_sql(
            "UPDATE retention_mark SET daily_claimed_at = {} "
            "WHERE day = {} AND daily_claimed_at IS NULL RETURNING id",
            now,
            school_today(now),
        )
    return bool(claimed)


class DailyRetention:
    """Runs :func:`retain` once a day from ``at`` (Helsinki time), in one worker of many."""

    def __init__(
        self, engine: Engine[Any], policy: RetentionPolicy, *, at: dt.time = DAILY_AT
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.at = at
        self._seen_day: dt.date | None = None

    async def run_if_due(self, now: dt.datetime) -> RetentionReport | None:
        """Run today's retention if it is time and no worker has claimed the day yet."""
        local = now.astimezone(SCHOOL_TIMEZONE)
        if local.time() < self.at or self._seen_day == local.date():
            return None
        claimed = await to_the_end(_claim_day(self.engine, now))
        # Claimed or not, this worker is done with today; a run that fails after its claim
        # is not retried until tomorrow, whose run catches up (every step is by age).
        self._seen_day = local.date()
        if not claimed:
            return None
        report = await retain(self.engine, self.policy, now)
        log.info("retention: removed %s", dict(sorted(report.removed.items())))
        return report

    async def run_forever(self, poll: float = DAILY_POLL_SECONDS) -> None:
        """Look every ``poll`` seconds whether the day's run is due; until cancelled."""
        while True:
            try:
                await self.run_if_due(utc_now())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("retention: the daily run failed; it runs again tomorrow")
            await asyncio.sleep(poll)
