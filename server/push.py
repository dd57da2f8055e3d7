"""The push: a client's queued mutations, applied in order, each exactly once.

For each mutation, in the order sent:

- an id at or below the client's last applied id is a replay: it gets the answer it got the
  first time, and nothing is applied again;
- an id past the next expected one means an earlier mutation never arrived: it is refused
  with ``mutation.out_of_order`` and *not* recorded, so the client can send the missing ones
  and then this one again;
- otherwise the mutation is looked up in the catalogue, its args checked against its type,
  and its handler run; a rejection rolls the handler's writes back (to a savepoint) and
  records the rejection instead. Either way the client's position advances: one rejected
  mutation never blocks the ones behind it.

The mutations of one push are applied in write transactions of up to :data:`PER_TRANSACTION`
mutations each, together with their results and the client's new position: a crash loses a
whole transaction's mutations or none, and the client, never having had the answer, sends
them again. A run of consecutive calls of a mutation with a batch handler (``attendance.mark``:
a roll call) is applied in one go, at the cost of one call, without a savepoint; should the
database refuse a value in it, the transaction is undone and applied again one call at a time.
Before the first transaction, mutations with a ``prepare`` step read what their checks need
(a roll call's lesson and pupils), so that the transactions hold the writer for less.

Two pushes from one installation at once (a retry racing the original) take turns: each
transaction first locks the client's row (PostgreSQL; SQLite has one writer anyway) and reads
the client's position under that lock, so the second finds the ids taken and answers them as
replays.

A push's body is read by ``server/push_body.py``: a mutation that cannot be read is rejected
alone, in its place if it has an id. Reasons are given in the person's language
(``server/rejections.py``).
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import asyncpg
import msgspec
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteTransaction

from schemas.errors import ErrorCode
from schemas.sync import MutationCode, MutationIn, MutationResult, MutationStatus, PushResponse
from server.access import marks
from server.catalogue import CATALOGUE
from server.clock import utc_now
from server.db.bulk import run_sql
from server.db.engine import DUPLICATE, write_transaction
from server.db.sync_tables import SyncClient
from server.errors import ReppuError
from server.mutations import MutationContext, MutationRejectedError, clamp_device_time
from server.push_body import Item, Refused, Unplaced
from server.rejections import Reason, handler_reason, invalid_value, say
from sync.policy import AccessFacts

APPLIED = MutationStatus.APPLIED
REJECTED = MutationStatus.REJECTED
_DUPLICATE = DUPLICATE
_UNSTORABLE = (asyncpg.DataError, OverflowError, sqlite3.DataError)
log = logging.getLogger("reppu.push")
PER_TRANSACTION = 50
"""Mutations applied per write transaction: a long push does not hold the writer for long, and
PostgreSQL keeps a transaction's subtransactions (a savepoint each) in its fast cache of 64."""
RETRIES = 3
_CONFLICTING = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
# Filled with bound-parameter placeholders only.
_STORED = (
    "SELECT mutation_id, status, code, reason, field FROM sync_mutation "
    "WHERE client = {{}} AND mutation_id IN ({ids})"
)
_CLIENT = "SELECT id, person FROM sync_client WHERE client_id = {}"
_ADVANCE = "UPDATE sync_client SET last_mutation_id = {} WHERE id = {} AND last_mutation_id < {}"
_POSITION = "SELECT last_mutation_id FROM sync_client WHERE id = {{}}{lock}"
_RESULTS = (
    "INSERT INTO sync_mutation (client, mutation_id, name, status, code, reason, field, "
    "occurred_at, received_at) VALUES {values}"
)


async def _stored_results(client: int, ids: list[int]) -> dict[int, MutationResult]:
    """The results recorded for ``ids``."""
    found: dict[int, MutationResult] = {}
    for first in range(0, len(ids), PER_TRANSACTION):
        chunk = ids[first : first + PER_TRANSACTION]
        rows = await run_sql(_STORED.format(ids=marks(len(chunk))), client, *chunk)
        for row in rows:
            found[int(row["mutation_id"])] = MutationResult(
                id=int(row["mutation_id"]),
                status=MutationStatus(row["status"]),
                code=MutationCode(row["code"]) if row["code"] else None,
                reason=row["reason"],
                field=row["field"],
            )
    # Not reached today: every result is written with its mutation. Should result rows ever
    # be pruned, an id at or below the client's last was still applied once.
    return {i: found.get(i, MutationResult(id=i, status=APPLIED)) for i in ids}


async def _register_client(client_id: str, person_id: int) -> int:
    """The client's row id, registering it on first use."""
    for _ in range(2):
        # Raw: building this query in Piccolo cost more than running it, on every push.
        rows = await run_sql(_CLIENT, client_id)
        row = rows[0] if rows else None
        if row is not None:
            if row["person"] != person_id:
                raise ReppuError(
                    ErrorCode.SYNC_CLIENT_MISMATCH,
                    "This client id belongs to another person's installation; make a new one.",
                    field="$.client_id",
                )
            return int(row["id"])
        try:
            inserted = await SyncClient.insert(
                SyncClient(
                    client_id=client_id,
                    person=person_id,
                    last_mutation_id=0,
                    created_at=utc_now(),
                )
            ).returning(SyncClient.id)
            return int(inserted[0]["id"])
        except _DUPLICATE:
            continue  # registered by a concurrent push a moment ago: read it
    raise RuntimeError("could not register the client")  # pragma: no cover


async def _position(engine: Engine[Any], client: int) -> int:
    """The client's last applied id, its row locked until the transaction ends (PostgreSQL)."""
    lock = " FOR UPDATE" if isinstance(engine, PostgresEngine) else ""
    rows = await run_sql(_POSITION.format(lock=lock), client)
    return int(rows[0]["last_mutation_id"])


async def _record(
    engine: Engine[Any], client: int, done: list[tuple[MutationIn, MutationResult]], last: int
) -> None:
    """Write the results of ``done`` and the client's new position: in two statements, or in
    one on PostgreSQL (a data-modifying WITH runs to its end whatever follows it)."""
    received = utc_now()
    combined = isinstance(engine, PostgresEngine) and len(done) <= PER_TRANSACTION
    for first in range(0, len(done), PER_TRANSACTION):
        chunk = done[first : first + PER_TRANSACTION]
        values = ", ".join("({}, {}, {}, {}, {}, {}, {}, {}, {})" for _ in chunk)
        sql = _RESULTS.format(values=values)
        await run_sql(
            f"WITH results AS ({sql}) {_ADVANCE}" if combined else sql,
            *(
                value
                for mutation, result in chunk
                for value in (
                    client,
                    mutation.id,
                    mutation.name[:60],
                    result.status,
                    result.code.value if result.code else None,
                    result.reason,
                    result.field,
                    mutation.occurred_at,
                    received,
                )
            ),
            *((last, client, last) if combined else ()),
        )
    if not combined:
        await run_sql(_ADVANCE, last, client, last)


def rejection(
    mutation_id: int, code: MutationCode, reason: str, field: str | None = None
) -> MutationResult:
    """A rejected result, its ``field`` fit to store (``sync_mutation.field``: 200 characters,
    and PostgreSQL's text cannot hold NUL; a path can name a field the client made up)."""
    if field is not None:
        field = field.replace("\x00", "")[:200] or None
    return MutationResult(id=mutation_id, status=REJECTED, code=code, reason=reason, field=field)


def _rejected(
    mutation: MutationIn, refused: MutationRejectedError, ctx: MutationContext
) -> MutationResult:
    reason = handler_reason(refused.code, refused.reason, ctx.language)
    return rejection(mutation.id, refused.code, reason, refused.field)


def _unstorable(mutation: MutationIn, exc: Exception, ctx: MutationContext) -> MutationResult:
    # A value the database refuses (the args types should have caught it): the mutation is
    # rejected and recorded, so the ones behind it are not blocked.
    log.warning("mutation %s: the database refused a value: %s", mutation.name, type(exc).__name__)
    return rejection(mutation.id, MutationCode.INVALID_ARGS, say(Reason.UNSTORABLE, ctx.language))


def _precheck(
    mutation: MutationIn, refusals: dict[int, MutationResult], language: str
) -> tuple[Any, MutationResult | None]:
    """Decode the args; a rejection if the mutation could not be read, or its name or its
    args do not fit the catalogue."""
    if mutation.id in refusals:
        return None, refusals[mutation.id]
    spec = CATALOGUE.get(mutation.name)
    if spec is None:
        return None, rejection(
            mutation.id, MutationCode.UNKNOWN, say(Reason.UNKNOWN_MUTATION, language), "$.name"
        )
    try:
        # Strict: a number sent as a string is a wrong type, refused where it stands (as
        # docs/errors.md says), not read as the number; dates and times still come as strings.
        return msgspec.convert(mutation.args, spec.args_type, strict=True), None
    except msgspec.ValidationError as exc:
        reason, field = invalid_value(exc)
        return None, rejection(mutation.id, MutationCode.INVALID_ARGS, say(reason, language), field)
    except RecursionError:  # args nested deeper than converting them can go
        return None, rejection(
            mutation.id, MutationCode.INVALID_ARGS, say(Reason.NOT_VALID, language), "$.args"
        )


Transaction = SQLiteTransaction | PostgresTransaction


async def _apply_one(
    transaction: Transaction, mutation: MutationIn, args: Any, ctx: MutationContext
) -> MutationResult:
    savepoint = await transaction.savepoint()
    try:
        await CATALOGUE[mutation.name].handler(ctx, args)
    except MutationRejectedError as refused:
        await savepoint.rollback_to()  # type: ignore[no-untyped-call]
        return _rejected(mutation, refused, ctx)
    except _UNSTORABLE as exc:
        await savepoint.rollback_to()  # type: ignore[no-untyped-call]
        return _unstorable(mutation, exc, ctx)
    await savepoint.release()  # type: ignore[no-untyped-call]
    return MutationResult(id=mutation.id, status=APPLIED)


class _BatchFailedError(Exception):
    """A batched run met a value the database refused. Its writes are not behind a savepoint,
    so the whole transaction is undone and applied again with every call on its own, where
    the call that carries the value is rejected alone."""


async def _apply_run(run: list[tuple[MutationIn, Any, MutationContext]]) -> list[MutationResult]:
    """A run of one batched mutation's calls at once. No savepoint: a batch refuses its calls
    before it writes anything, so only a database error can leave half of it written, and
    that undoes the transaction (:class:`_BatchFailedError`). Two statements fewer for every
    roll call, and on PostgreSQL no subtransaction."""
    batch = CATALOGUE[run[0][0].name].batch
    assert batch is not None
    try:
        outcomes = await batch([(ctx, args) for _, args, ctx in run])
    except _UNSTORABLE as exc:
        raise _BatchFailedError from exc
    return [
        MutationResult(id=m.id, status=APPLIED) if refused is None else _rejected(m, refused, ctx)
        for (m, _, ctx), refused in zip(run, outcomes, strict=True)
    ]


async def _apply(
    engine: Engine[Any],
    client: int,
    mutations: list[MutationIn],
    context: Callable[[MutationIn], MutationContext],
    refusals: dict[int, MutationResult],
    language: str,
    *,
    installation: str = "",
    batched: bool = True,
) -> dict[int, MutationResult]:
    """Apply ``mutations`` in one write transaction; their results by id. ``installation``
    names the client in the log (its ``client_id`` and person). Without ``batched``, runs of a
    batched mutation are applied one call at a time too."""
    results: dict[int, MutationResult] = {}
    async with write_transaction(engine) as transaction:
        last = await _position(engine, client)
        replays = [m.id for m in mutations if m.id <= last]
        results.update(await _stored_results(client, replays))
        done: list[tuple[MutationIn, MutationResult]] = []
        pending = [m for m in mutations if m.id > last]
        if pending and not replays and pending[0].id > last + 1:
            # An installation drops an id from its outbox only once it is answered, so the
            # ids in between were answered and then lost: the database was restored from a
            # backup (docs/operations.md). The reference client sends them again.
            log.warning(
                "installation %s pushed from id %s, but the database holds up to %s: "
                "mutations it was answered were lost (restored from a backup?)",
                installation or client,
                pending[0].id,
                last,
            )
        index = 0
        while index < len(pending):
            mutation = pending[index]
            if mutation.id != last + 1:
                results[mutation.id] = rejection(
                    mutation.id, MutationCode.OUT_OF_ORDER, say(Reason.OUT_OF_ORDER, language)
                )
                index += 1
                continue
            args, refused = _precheck(mutation, refusals, language)
            spec = CATALOGUE.get(mutation.name)
            if refused is not None:
                outcome = [refused]
            elif spec is not None and spec.batch is not None and batched:
                run = [(mutation, args, context(mutation))]
                while index + len(run) < len(pending):
                    following = pending[index + len(run)]
                    if following.name != mutation.name or following.id != run[-1][0].id + 1:
                        break
                    more, refused = _precheck(following, refusals, language)
                    if refused is not None:
                        break
                    run.append((following, more, context(following)))
                outcome = await _apply_run(run)
            else:
                outcome = [await _apply_one(transaction, mutation, args, context(mutation))]
            for applied, result in zip(pending[index : index + len(outcome)], outcome, strict=True):
                results[applied.id] = result
                done.append((applied, result))
            index += len(outcome)
            last = done[-1][0].id
        if done:
            await _record(engine, client, done, last)
    return results


async def _prepare(
    mutations: list[MutationIn],
    refusals: dict[int, MutationResult],
    language: str,
    context: Callable[[MutationIn], MutationContext],
) -> None:
    """Let each mutation with a ``prepare`` step read what its calls in this push will need,
    once for the push and before any write transaction: reads done here do not hold the
    writer (a roll call's lesson, its day's change and its group's pupils)."""
    calls: dict[str, list[tuple[MutationContext, Any]]] = {}
    for mutation in mutations:
        spec = CATALOGUE.get(mutation.name)
        if spec is None or spec.prepare is None:
            continue
        args, refused = _precheck(mutation, refusals, language)
        if refused is None:
            calls.setdefault(mutation.name, []).append((context(mutation), args))
    for name, group in calls.items():
        prepare = CATALOGUE[name].prepare
        assert prepare is not None
        await prepare(group)


async def push(
    engine: Engine[Any],
    *,
    viewer: AccessFacts,
    day: dt.date,
    client_id: str,
    items: list[Item],
    device: str,
    language: str = "en",
) -> PushResponse:
    """Apply the push's mutations (``items``, as ``server/push_body.read_push`` read them) for
    ``viewer`` as the module's docstring says; reasons in ``language``."""
    client = await _register_client(client_id, viewer.person_id)
    memo: dict[object, Any] = {}

    def context(mutation: MutationIn) -> MutationContext:
        received_at = utc_now()
        return MutationContext(
            engine=engine,
            viewer=viewer,
            day=day,
            occurred_at=clamp_device_time(mutation.occurred_at, received_at),
            received_at=received_at,
            client_id=client_id,
            mutation_id=mutation.id,
            device=device,
            memo=memo,
            language=language,
        )

    # A mutation refused while reading takes its place in the sequence as a stand-in with no
    # args, whose precheck answers the refusal; one without an id is answered where it stood.
    mutations: list[MutationIn] = []
    refusals: dict[int, MutationResult] = {}
    for item in items:
        if isinstance(item, Unplaced):
            continue
        if isinstance(item, Refused):
            if all(m.id != item.id for m in mutations):  # else a copy, answered as the first
                refusals[item.id] = rejection(
                    item.id, MutationCode.INVALID_ARGS, say(item.reason, language), item.field
                )
            mutations.append(MutationIn(item.id, item.name, {}, utc_now()))
        else:
            mutations.append(item)
    await _prepare(mutations, refusals, language, context)
    results: dict[int, MutationResult] = {}
    for first in range(0, len(mutations), PER_TRANSACTION):
        chunk = mutations[first : first + PER_TRANSACTION]
        # An id sent twice in one push: the first, in its place, is applied; the second is
        # answered as the first was.
        unique: list[MutationIn] = []
        for mutation in chunk:
            if all(m.id != mutation.id for m in unique):
                unique.append(mutation)
        attempt, batched = 1, True
        while True:
            try:
                results.update(
                    await _apply(
                        engine,
                        client,
                        unique,
                        context,
                        refusals,
                        language,
                        installation=f"{client_id!r} of person {viewer.person_id}",
                        batched=batched,
                    )
                )
                break
            except _BatchFailedError as exc:
                # Nothing of the transaction was kept: apply it again, one call at a time.
                log.warning(
                    "push: a batch met a value the database refused (%s); applying its calls "
                    "one by one",
                    type(exc.__cause__).__name__,
                )
                batched = False
                memo.clear()
            except _CONFLICTING as exc:
                # Two transactions took the same rows' locks in opposite orders (PostgreSQL
                # chose this one to fail): nothing of it was applied, so apply it again.
                if attempt == RETRIES:
                    raise
                log.info("push: %s; trying again (%d)", type(exc).__name__, attempt)
                attempt += 1
                memo.clear()
    return PushResponse(results=[_answer(item, results, language) for item in items])


def _answer(item: Item, results: dict[int, MutationResult], language: str) -> MutationResult:
    if isinstance(item, Unplaced):
        return rejection(
            item.echo, MutationCode.INVALID_ARGS, say(item.reason, language), item.field
        )
    return results[item.id]
