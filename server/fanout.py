"""The fan-out: from an outbox entry to one delivery row per recipient and channel target.

1. A domain write that must notify calls :func:`enqueue` inside its own transaction, so the
   outbox entry commits (or vanishes) with the message, bulletin or lesson change.
2. A worker claims an open outbox entry with a short, renewed lease (:func:`expand_next`)
   and expands its audience in batches of people, in person-id order. One statement reads a
   batch (:func:`next_batch`): the candidates, whether *the access policy* lets each read the
   item's partition today (the policy's rules as SQL, ``server.access.readers_condition``),
   and their preference rows. Each distinct preference among those let in is planned
   (``notifications/schedule.py``: modes, quiet hours, the urgent lane), and one
   ``INSERT ... SELECT`` per plan writes a delivery for each of its people's logged-in
   devices and channels. The deliveries and the new ``expanded_to`` commit
   in one transaction per batch; the deliveries' unique ``key`` makes a repeated batch (after a
   crash or a lost lease) write nothing twice.
3. Digests: :func:`assemble_digests` gathers due ``digest`` deliveries into one delivery per
   person and channel target (a household gets one digest, not one per child or school).

Recipients are people, so a guardian of three children at three schools who is in a
city-wide audience three times over gets one notification per device.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from notifications.schedule import Channel, Plan, Preferences, plan
from notifications.schedule import Mode as PlanMode
from notifications.webpush import TTL_SECONDS, Kind
from schemas.core import PartitionKind
from schemas.forms import FormDefinition, SigningRule
from schemas.messages import Audience, AudienceRole
from server.access import marks, readers_condition
from server.audiences import bulletin_partitions
from server.clock import school_today, utc_now
from server.db.bulk import insert_values, run_sql
from server.db.engine import write_transaction
from server.db.notify_tables import Delivery, NativeDevice, Outbox, PushSubscription
from server.leases import Heartbeat
from sync.policy import Partition

log = logging.getLogger("reppu.fanout")
_form_definition = msgspec.json.Decoder(FormDefinition)

EXPAND_BATCH = 5000
"""Candidates expanded per transaction: the batch's deliveries are one INSERT ... SELECT, so a
larger batch costs the writer little more, and the audience's next-batch query runs fewer
times (the storm benchmark, docs/benchmarks.md)."""
OUTBOX_LEASE = dt.timedelta(seconds=20)
"""An outbox entry's lease while one of its batches is expanded, renewed every quarter of it
(``server/leases.py``): a killed expander's entry is taken over within this."""


def kind_of(outbox_kind: str, urgent: bool) -> Kind:
    if urgent:
        return Kind.URGENT
    return {
        "bulletin": Kind.BULLETIN,
        "message": Kind.MESSAGE,
        "lesson_change": Kind.LESSON_CHANGE,
        "absence": Kind.ABSENCE,
        "form_due": Kind.FORM_DUE,
    }[outbox_kind]


async def enqueue(kind: str, item_id: int, *, urgent: bool) -> None:
    """Record that ``kind`` ``item_id`` must notify; call inside the item's transaction."""
    now = utc_now()
    ttl = TTL_SECONDS[kind_of(kind, urgent)]
    await Outbox.insert(
        Outbox(
            kind=kind,
            item_id=item_id,
            urgent=urgent,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=ttl),
        )
    )


async def enqueue_many(kind: str, item_ids: Sequence[int], *, urgent: bool) -> None:
    """:func:`enqueue` for several items of one kind, in one statement (a roll call's
    absences); call inside the items' transaction."""
    if not item_ids:
        return
    now = utc_now()
    expires = now + dt.timedelta(seconds=TTL_SECONDS[kind_of(kind, urgent)])
    await insert_values(
        "outbox",
        ("kind", "item_id", "urgent", "created_at", "expires_at", "expanded_to"),
        [(kind, item_id, urgent, now, expires, 0) for item_id in item_ids],
    )


# --- audiences ---------------------------------------------------------------------------

_VALID = "valid_from <= {} AND (valid_to IS NULL OR valid_to >= {})"


@dataclass(frozen=True, slots=True)
class Part:
    """One source of candidates: ``SELECT <column> FROM ... WHERE ...`` and its args."""

    sql: str
    column: str
    args: tuple[Any, ...]


def _pupils_of(groups_sql: str, key: int, day: dt.date) -> Part:
    return Part(
        f'SELECT person FROM membership WHERE "group" IN ({groups_sql}) '
        f"AND role = 'pupil' AND {_VALID}",
        "person",
        (key, day, day),
    )


def _guardians_of(groups_sql: str, key: int, day: dt.date) -> Part:
    return Part(
        "SELECT guardian FROM guardianship WHERE pupil IN ("
        f'SELECT person FROM membership WHERE "group" IN ({groups_sql}) '
        f"AND role = 'pupil' AND {_VALID}) AND {_VALID}",
        "guardian",
        (key, day, day, day, day),
    )


def _teachers_of(groups_sql: str, key: int, day: dt.date) -> Part:
    return Part(
        f'SELECT person FROM membership WHERE "group" IN ({groups_sql}) '
        f"AND role = 'teacher' AND {_VALID}",
        "person",
        (key, day, day),
    )


def _staff_of(orgs_sql: str, key: int, day: dt.date) -> Part:
    return Part(
        f"SELECT person FROM staff_role WHERE organisation IN ({orgs_sql}) AND {_VALID}",
        "person",
        (key, day, day),
    )


@dataclass(frozen=True, slots=True)
class Audit:
    """Who an outbox entry may reach: where its candidates come from, and the partitions the
    policy must let each candidate read."""

    parts: tuple[Part, ...]
    partitions: frozenset[str]
    exclude: int | None = None
    """The author or sender, never notified of their own item."""


def _community_parts(
    groups_sql: str, orgs_sql: str | None, roles: set[str], day: dt.date, key: int
) -> tuple[Part, ...]:
    parts: list[Part] = []
    if AudienceRole.PUPILS.value in roles:
        parts.append(_pupils_of(groups_sql, key, day))
    if AudienceRole.GUARDIANS.value in roles:
        parts.append(_guardians_of(groups_sql, key, day))
    if AudienceRole.STAFF.value in roles:
        parts.append(_teachers_of(groups_sql, key, day))
        if orgs_sql is not None:
            parts.append(_staff_of(orgs_sql, key, day))
    return tuple(parts)


async def audience_of(entry: dict[str, Any], day: dt.date) -> Audit | None:
    """The audience of an outbox entry, or None when its item is gone."""
    kind, item_id = entry["kind"], int(entry["item_id"])
    if kind == "message":
        rows = await Outbox.raw("SELECT m.sender, m.thread FROM message m WHERE m.id = {}", item_id)
        if not rows:
            return None
        sender, thread = rows[0]["sender"], rows[0]["thread"]
        return Audit(
            (Part("SELECT person FROM thread_participant WHERE thread = {}", "person", (thread,)),),
            frozenset(),  # a participant reads the thread in their inbox
            exclude=sender,
        )
    if kind == "absence":
        rows = await Outbox.raw("SELECT pupil FROM attendance WHERE id = {}", item_id)
        if not rows:
            return None
        pupil = int(rows[0]["pupil"])
        guardians = Part(
            f"SELECT guardian FROM guardianship WHERE pupil = {{}} AND {_VALID}",
            "guardian",
            (pupil, day, day),
        )
        return Audit((guardians,), frozenset({f"{PartitionKind.PERSON.value}:{pupil}"}))
    if kind == "form_due":
        return await form_due_audience(item_id, day)
    if kind == "lesson_change":
        rows = await Outbox.raw(
            'SELECT l."group" AS g FROM lesson_change c JOIN lesson l ON l.id = c.lesson '
            "WHERE c.id = {}",
            item_id,
        )
        if not rows:
            return None
        group = rows[0]["g"]
        parts = _community_parts(
            "SELECT CAST({} AS INTEGER)",
            None,
            {AudienceRole.PUPILS.value, AudienceRole.GUARDIANS.value},
            day,
            group,
        )
        return Audit(parts, frozenset({f"{PartitionKind.GROUP.value}:{group}"}))
    rows = await Outbox.raw("SELECT * FROM bulletin WHERE id = {}", item_id)
    if not rows:
        return None
    b = rows[0]
    roles = set(b["roles"].split())
    audience = Audience(b["audience"])
    if audience == Audience.PEOPLE:
        return Audit(
            (
                Part(
                    "SELECT person FROM bulletin_recipient WHERE bulletin = {}",
                    "person",
                    (item_id,),
                ),
            ),
            frozenset(),
            exclude=b["author"],
        )
    if audience == Audience.GROUP:
        groups, orgs, key = "SELECT CAST({} AS INTEGER)", None, b["group"]
    elif audience == Audience.SCHOOL:
        groups, orgs, key = (
            "SELECT id FROM school_group WHERE school = {}",
            "SELECT CAST({} AS INTEGER)",
            b["organisation"],
        )
    else:
        schools = "SELECT id FROM organisation WHERE parent = {}"
        groups = f"SELECT id FROM school_group WHERE school IN ({schools})"
        orgs, key = schools, b["organisation"]
    parts = _community_parts(groups, orgs, roles, day, key)
    # The policy must let each recipient read the bulletin where it lives.
    return Audit(parts, bulletin_partitions(b, []), exclude=b["author"])


async def form_due_audience(request_id: int, day: dt.date) -> Audit | None:
    """The custodial guardians whose signature a form request still needs: those who have
    not signed, and (where one signature is enough) only for responses nobody has signed."""
    rows = await Outbox.raw(
        "SELECT d.body FROM form_request r JOIN form_definition d ON d.id = r.definition "
        "WHERE r.id = {}",
        request_id,
    )
    if not rows:
        return None
    rule = _form_definition.decode(rows[0]["body"]).signing
    pupils = await Outbox.raw("SELECT pupil FROM form_response WHERE request = {}", request_id)
    anyone_signed = (
        "AND NOT EXISTS (SELECT 1 FROM form_signature s2 WHERE s2.response = r.id "
        "AND s2.voided_at IS NULL) "
        if rule == SigningRule.ANY_CUSTODIAN
        else ""
    )
    unsigned = Part(
        "SELECT g.guardian FROM guardianship g JOIN form_response r ON r.pupil = g.pupil "
        "WHERE r.request = {} AND g.kind = 'custodial' AND g.valid_from <= {} "
        "AND (g.valid_to IS NULL OR g.valid_to >= {}) "
        "AND NOT EXISTS (SELECT 1 FROM form_signature s WHERE s.response = r.id "
        f"AND s.signer = g.guardian AND s.voided_at IS NULL) {anyone_signed}",
        "guardian",
        (request_id, day, day),
    )
    partitions = frozenset(f"{PartitionKind.PERSON.value}:{r['pupil']}" for r in pupils)
    return Audit((unsigned,), partitions)


async def remind_forms_due(today: dt.date) -> int:
    """Queue a reminder for each form request due tomorrow (once per request, however often
    this runs); returns how many were queued. Call inside a write transaction."""
    rows = await Outbox.raw(
        "SELECT r.id FROM form_request r WHERE r.due_on = {} AND NOT EXISTS "
        "(SELECT 1 FROM outbox o WHERE o.kind = 'form_due' AND o.item_id = r.id) ORDER BY r.id",
        today + dt.timedelta(days=1),
    )
    for row in rows:
        await enqueue("form_due", int(row["id"]), urgent=False)
    return len(rows)


def _union(audit: Audit, after: int, limit: int) -> tuple[str, list[Any]]:
    """The next ``limit`` candidates after person ``after``, in person-id order, as a query.

    Each source is asked for its own first ``limit`` after ``after`` (an ordered index scan,
    not the whole audience), and the union's first ``limit`` are the answer: the first
    ``limit`` of a union are among the first ``limit`` of its parts.
    """
    selects = []
    args: list[Any] = []
    for index, part in enumerate(audit.parts):
        selects.append(
            f"SELECT p FROM (SELECT DISTINCT {part.column} AS p FROM ({part.sql} "
            f"AND {part.column} > {{}}) AS s{index} ORDER BY p LIMIT {{}}) AS t{index}"
        )
        args += [*part.args, after, limit]
    sql = f"SELECT DISTINCT p FROM ({' UNION '.join(selects)}) AS audience ORDER BY p LIMIT {{}}"
    return sql, [*args, limit]


async def next_batch(audit: Audit, after: int, limit: int, day: dt.date) -> list[dict[str, Any]]:
    """The next ``limit`` candidates after person ``after``, in person-id order, in one
    statement: each with ``allowed`` (1 when the access policy lets them read one of the
    item's partitions on ``day``; ``server.access.readers_condition``, the policy's rules in
    SQL, so a city's 200,000 guardians are never loaded into Python one by one) and their
    preference row's columns (``chosen`` NULL: no row, the defaults)."""
    union, union_args = _union(audit, after, limit)
    if audit.partitions:
        wanted = [Partition.parse(name) for name in audit.partitions]
        allowed, allowed_args = readers_condition("a.p", wanted, day)
    else:
        allowed, allowed_args = "true", []
    rows = await Outbox.raw(
        f"SELECT a.p AS person, CASE WHEN {allowed} THEN 1 ELSE 0 END AS allowed, "
        "np.person AS chosen, np.webpush, np.apprise, np.quiet_start, np.quiet_end, "
        f"np.digest_at FROM ({union}) AS a LEFT JOIN notify_preference np ON np.person = a.p "
        "ORDER BY a.p",
        *allowed_args,
        *union_args,
    )
    return list(rows)


# --- channels and preferences ------------------------------------------------------------

# A batch's deliveries are planned by the database, not row by row in Python: one INSERT ...
# SELECT per plan joins the batch's recipients to their logged-in devices (a revoked or
# expired token's phone hears nothing) and their apprise channels, and gives a recipient with
# neither one ``none`` row (staff must reach them otherwise). Who is in the batch (the access
# policy) and what each plan says (``notifications.schedule.plan``: preferences, quiet hours,
# the urgent lane) are still decided in Python, once per distinct preference, not per row.
# ``{people}`` is the batch as one bound value (a JSON array on SQLite, an integer array on
# PostgreSQL); the other markers are bound values, typed where PostgreSQL cannot infer them.
_PLANNED = """\
WITH people(person) AS ({people})
INSERT INTO delivery (key, outbox, person, channel, target, urgent, status, digest_day,
    not_before, expires_at, attempts, item_count, detail, updated_at)
SELECT {text} || CAST(r.person AS TEXT) || ':' || r.channel || ':' || CAST(r.target AS TEXT),
    {bigint}, r.person, r.channel, r.target, {boolean}, r.status, r.digest_day, r.not_before,
    {timestamp}, 0, 1, '', {timestamp}
FROM (
    SELECT s.person AS person, 'webpush' AS channel, s.id AS target, {text} AS status,
        {date} AS digest_day, {timestamp} AS not_before
    FROM push_subscription s JOIN auth_token t ON t.id = s.device
    WHERE s.person IN (SELECT person FROM people) AND t.revoked_at IS NULL
        AND t.expires_at > {timestamp}
    UNION ALL
    SELECT n.person, n.platform, n.id, {text}, {date}, {timestamp}
    FROM native_device n JOIN auth_token t ON t.id = n.device
    WHERE n.person IN (SELECT person FROM people) AND t.revoked_at IS NULL
        AND t.expires_at > {timestamp}
    UNION ALL
    SELECT c.person, 'apprise', c.id, {text}, {date}, {timestamp}
    FROM notify_channel c WHERE c.person IN (SELECT person FROM people)
    UNION ALL
    SELECT p.person, 'none', 0, 'unreachable', NULL, {timestamp} FROM people p
    WHERE NOT EXISTS (SELECT 1 FROM push_subscription s JOIN auth_token t ON t.id = s.device
            WHERE s.person = p.person AND t.revoked_at IS NULL AND t.expires_at > {timestamp})
        AND NOT EXISTS (SELECT 1 FROM native_device n JOIN auth_token t ON t.id = n.device
            WHERE n.person = p.person AND t.revoked_at IS NULL AND t.expires_at > {timestamp})
        AND NOT EXISTS (SELECT 1 FROM notify_channel c WHERE c.person = p.person)
) AS r WHERE true
ON CONFLICT (key) DO NOTHING
RETURNING id"""
_SQLITE_MARKS = {
    "people": "SELECT value FROM json_each({})",
    **dict.fromkeys(("text", "bigint", "boolean", "date", "timestamp"), "{}"),
}
_POSTGRES_MARKS = {
    "people": "SELECT unnest(CAST({} AS INTEGER[]))",
    **{name: f"CAST({{}} AS {name.upper()})" for name in ("text", "bigint", "boolean", "date")},
    "timestamp": "CAST({} AS TIMESTAMPTZ)",
}
_SQL = {
    backend: _PLANNED.format(**marks_of)
    for backend, marks_of in (("sqlite", _SQLITE_MARKS), ("postgres", _POSTGRES_MARKS))
}


def _backend(engine: Engine[Any]) -> str:
    return "postgres" if isinstance(engine, PostgresEngine) else "sqlite"


def _people_value(engine: Engine[Any], people: Sequence[int]) -> Any:
    """The batch as the one bound value ``{people}`` takes."""
    if isinstance(engine, PostgresEngine):
        return list(people)
    return msgspec.json.encode(list(people)).decode()


_Row = tuple[str, dt.date | None, dt.datetime]
"""A channel's part of a plan: status, digest day, not before."""


def _plan_row(planned: Plan | None, now: dt.datetime) -> _Row:
    if planned is None:
        return ("off", None, now)
    status = "digest" if planned.digest_day is not None else "queued"
    return (status, planned.digest_day, planned.not_before)


def _plans(prefs: Preferences, urgent: bool, now: dt.datetime) -> tuple[_Row, _Row]:
    return (
        _plan_row(plan(prefs, Channel.WEBPUSH, urgent=urgent, now=now), now),
        _plan_row(plan(prefs, Channel.APPRISE, urgent=urgent, now=now), now),
    )


def plan_groups(
    rows: Sequence[dict[str, Any]], urgent: bool, now: dt.datetime
) -> dict[tuple[_Row, _Row], list[int]]:
    """The people of ``rows`` (from :func:`next_batch`: a person and their preference row's
    columns, ``chosen`` NULL without one) grouped by their plans (Web Push, apprise): usually
    a single group, since everyone without a preference row has the defaults."""
    by_prefs: dict[Preferences, tuple[_Row, _Row]] = {}
    groups: dict[tuple[_Row, _Row], list[int]] = defaultdict(list)
    for r in rows:
        person = int(r["person"])
        prefs = _DEFAULTS
        if r["chosen"] is not None:
            try:
                prefs = Preferences(
                    webpush=PlanMode(r["webpush"]),
                    apprise=PlanMode(r["apprise"]),
                    quiet_start=r["quiet_start"],
                    quiet_end=r["quiet_end"],
                    digest_at=r["digest_at"],
                )
            except ValueError:
                # One person's unusable row must never hold up a bulletin for everyone: they
                # get the defaults (the API refuses such rows; this is for what slipped in).
                log.warning("person %s: unusable notification preferences; using defaults", person)
        if prefs not in by_prefs:
            by_prefs[prefs] = _plans(prefs, urgent, now)
        groups[by_prefs[prefs]].append(person)
    return groups


_DEFAULTS = Preferences()


async def insert_planned(
    engine: Engine[Any],
    entry: dict[str, Any],
    groups: dict[tuple[_Row, _Row], list[int]],
    now: dt.datetime,
) -> int:
    """Write the deliveries of each plan group (a key that exists already is left as it is);
    returns how many were new. Call inside a write transaction."""
    sql = _SQL[_backend(engine)]
    written = 0
    for (webpush, apprise_plan), people in groups.items():
        made = await run_sql(
            sql,
            _people_value(engine, people),
            f"{entry['id']}:",
            entry["id"],
            bool(entry["urgent"]),
            entry["expires_at"],
            now,
            *webpush,
            now,
            # Native devices (FCM, APNs) are push like Web Push: the same preference plans them.
            *webpush,
            now,
            *apprise_plan,
            now,
            now,
            now,
        )
        written += len(made)
    return written


_DELIVERY_COLUMNS = (
    "key",
    "outbox",
    "person",
    "channel",
    "target",
    "urgent",
    "status",
    "digest_day",
    "not_before",
    "expires_at",
    "attempts",
    "item_count",
    "detail",
    "updated_at",
)


# --- the worker's steps ------------------------------------------------------------------


async def _claim_outbox(engine: Engine[Any]) -> dict[str, Any] | None:
    skip = " FOR UPDATE SKIP LOCKED" if isinstance(engine, PostgresEngine) else ""
    async with write_transaction(engine):
        now = utc_now()  # once the writer is ours: the lease is not shortened by the wait
        lease = now + OUTBOX_LEASE
        rows = await Outbox.raw(
            "SELECT * FROM outbox WHERE done_at IS NULL AND (lease_until IS NULL OR "
            f"lease_until < {{}}) ORDER BY urgent DESC, id LIMIT 1{skip}",
            now,
        )
        if not rows:
            return None
        await Outbox.update({Outbox.lease_until: lease}).where(Outbox.id == rows[0]["id"])
    entry: dict[str, Any] = rows[0]
    return entry


async def expand_next(engine: Engine[Any], *, batch: int = EXPAND_BATCH) -> int:
    """Expand one batch of one open outbox entry; returns the deliveries written (at least 1
    when an entry was worked on; 0: idle)."""
    now = utc_now()
    entry = await _claim_outbox(engine)
    if entry is None:
        return 0
    renewal = Heartbeat(
        lambda: _renew_outbox(engine, int(entry["id"])),
        OUTBOX_LEASE.total_seconds() / 4,
        "an outbox entry",
    )
    try:
        return await _expand(engine, entry, now, batch)
    finally:
        await renewal.stop()


async def _renew_outbox(engine: Engine[Any], entry_id: int) -> None:
    async with write_transaction(engine):
        await Outbox.update({Outbox.lease_until: utc_now() + OUTBOX_LEASE}).where(
            (Outbox.id == entry_id) & Outbox.lease_until.is_not_null()
        )


async def _expand(engine: Engine[Any], entry: dict[str, Any], now: dt.datetime, batch: int) -> int:
    """Expand the next batch of the claimed ``entry``."""
    day = school_today(now)
    audit = await audience_of(entry, day)
    if audit is None:
        async with write_transaction(engine):
            await Outbox.update({Outbox.done_at: now, Outbox.lease_until: None}).where(
                Outbox.id == entry["id"]
            )
        return 0
    after = int(entry["expanded_to"])
    rows = await next_batch(audit, after, batch, day)
    found = [int(r["person"]) for r in rows]
    chosen = [r for r in rows if r["allowed"] and r["person"] != audit.exclude]
    groups = plan_groups(chosen, bool(entry["urgent"]), now)
    finished = len(found) < batch
    async with write_transaction(engine):
        written = await insert_planned(engine, entry, groups, now)
        values: dict[Any, Any] = {
            Outbox.expanded_to: found[-1] if found else after,
            # Handed back after every batch: the next batch goes to whichever worker asks
            # first (an urgent entry that arrived meanwhile is asked for first).
            Outbox.lease_until: None,
        }
        if finished:
            values[Outbox.done_at] = now
        await Outbox.update(values).where(
            (Outbox.id == entry["id"]) & (Outbox.expanded_to == after)
        )
    return max(written, 1)


async def _open_digest(engine: Engine[Any], base: str, row: tuple[Any, ...]) -> int:
    """The id of the digest delivery ``base`` that may still take items, made if need be.

    A digest that is already being sent, or was sent, takes no more: an item that comes
    after it (a changed ``digest_at``, a batch that committed late) goes in a new one.
    """
    lock = " FOR UPDATE" if isinstance(engine, PostgresEngine) else ""
    rows = await Delivery.raw(
        f"SELECT id, status, lease_until FROM delivery WHERE key LIKE {{}} ORDER BY id{lock}",
        f"{base}#%",
    )
    for r in rows:
        if r["status"] == "queued" and r["lease_until"] is None:
            return int(r["id"])
    key = f"{base}#{len(rows)}"
    await insert_values(
        "delivery", _DELIVERY_COLUMNS, [(key, *row[1:])], tail="ON CONFLICT (key) DO NOTHING"
    )
    made = await run_sql("SELECT id FROM delivery WHERE key = {}", key)
    return int(made[0]["id"])


async def assemble_digests(engine: Engine[Any], *, limit: int = 5000) -> int:
    """Gather due ``digest`` deliveries into one digest delivery per person and target."""
    now = utc_now()
    async with write_transaction(engine):
        lock = " FOR UPDATE SKIP LOCKED" if isinstance(engine, PostgresEngine) else ""
        due = await Delivery.raw(
            "SELECT id, person, channel, target, digest_day, expires_at FROM delivery "
            f"WHERE status = 'digest' AND not_before <= {{}} ORDER BY id LIMIT {{}}{lock}",
            now,
            limit,
        )
        if not due:
            return 0
        groups: dict[tuple[int, str, int, dt.date], list[dict[str, Any]]] = defaultdict(list)
        for row in due:
            groups[(row["person"], row["channel"], row["target"], row["digest_day"])].append(row)
        expires = now + dt.timedelta(seconds=TTL_SECONDS[Kind.DIGEST])
        for (person, channel, target, day), items in groups.items():
            base = f"digest:{day}:{person}:{channel}:{target}"
            row = (base, None, person, channel, target, False, "queued", day, now, expires,
                   0, len(items), "", now)  # fmt: skip
            digest_id = await _open_digest(engine, base, row)
            ids = [i["id"] for i in items]
            await Delivery.raw(
                f"UPDATE delivery SET status = 'digested', digest = {{}}, updated_at = {{}} "
                f"WHERE id IN ({marks(len(ids))})",
                digest_id,
                now,
                *ids,
            )
            await Delivery.raw(
                "UPDATE delivery SET item_count = (SELECT COUNT(*) FROM delivery d "
                "WHERE d.digest = {}) WHERE id = {}",
                digest_id,
                digest_id,
            )
    return len(due)


async def forget_targets(channel: str, target_ids: Sequence[int]) -> None:
    """Deliveries still waiting for these subscriptions or channels will not go: they are
    ``gone``. Call in the transaction that deletes them, so that an id the database hands out
    again can never receive another person's waiting news."""
    if not target_ids:
        return
    await Delivery.raw(
        "UPDATE delivery SET status = 'gone', detail = 'subscription or channel removed', "
        f"lease_until = NULL, updated_at = {{}} WHERE channel = {{}} AND target IN "
        f"({marks(len(target_ids))}) AND status IN ('queued', 'digest')",
        utc_now(),
        channel,
        *target_ids,
    )


async def delete_subscriptions(where: Any) -> None:
    """Delete the push subscriptions matching the Piccolo condition ``where``, and their
    waiting deliveries with them."""
    rows = await PushSubscription.select(PushSubscription.id).where(where)
    ids = [int(r["id"]) for r in rows]
    if ids:
        await forget_targets("webpush", ids)
        await PushSubscription.delete().where(PushSubscription.id.is_in(ids))


async def delete_native_devices(where: Any) -> None:
    """Delete the native devices (FCM, APNs) matching the Piccolo condition ``where``, and
    their waiting deliveries with them."""
    rows = await NativeDevice.select(NativeDevice.id, NativeDevice.platform).where(where)
    by_platform: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        by_platform[str(r["platform"])].append(int(r["id"]))
    for platform, ids in by_platform.items():
        await forget_targets(platform, ids)
        await NativeDevice.delete().where(NativeDevice.id.is_in(ids))
