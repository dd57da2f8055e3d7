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
a roll call) is applied in one go, at the cost of one call.

Two pushes from one installation at once (a retry racing the original) take turns: each
transaction first locks the client's row (PostgreSQL; SQLite has one writer anyway) and reads
the client's position under that lock, so the second finds the ids taken and answers them as
replays.
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
from schemas.sync import MutationCode, MutationIn, MutationResult, PushRequest, PushResponse
from server.access import marks
from server.catalogue import CATALOGUE
from server.clock import utc_now
from server.db.bulk import run_sql
from server.db.engine import DUPLICATE, write_transaction
from server.db.sync_tables import SyncClient
from server.errors import ReppuError
from server.mutations import MutationContext, MutationRejectedError, clamp_device_time
from sync.policy import AccessFacts

APPLIED = "applied"
REJECTED = "rejected"
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
                status=row["status"],
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
        row = (
            await SyncClient.select(SyncClient.id, SyncClient.person)
            .where(SyncClient.client_id == client_id)
            .first()
        )
        if row is not None:
            if row["person"] != person_id:
                raise ReppuError(
                    ErrorCode.SYNC_CLIENT_MISMATCH,
                    "This client id belongs to another person's installation; make a new one.",
                    field="$.client_id",
                )
            return int(row["id"])
        try:
            await SyncClient.insert(
                SyncClient(
                    client_id=client_id,
                    person=person_id,
                    last_mutation_id=0,
                    created_at=utc_now(),
                )
            )
        except _DUPLICATE:
            continue  # registered by a concurrent push a moment ago: read it
    raise RuntimeError("could not register the client")  # pragma: no cover


async def _position(engine: Engine[Any], client: int) -> int:
    """The client's last applied id, its row locked until the transaction ends (PostgreSQL)."""
    lock = " FOR UPDATE" if isinstance(engine, PostgresEngine) else ""
    rows = await run_sql(_POSITION.format(lock=lock), client)
    return int(rows[0]["last_mutation_id"])


async def _record(client: int, done: list[tuple[MutationIn, MutationResult]], last: int) -> None:
    """Write the results of ``done`` and the client's new position, in two statements."""
    received = utc_now()
    for first in range(0, len(done), PER_TRANSACTION):
        chunk = done[first : first + PER_TRANSACTION]
        values = ", ".join("({}, {}, {}, {}, {}, {}, {}, {}, {})" for _ in chunk)
        await run_sql(
            _RESULTS.format(values=values),
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
        )
    await SyncClient.update({SyncClient.last_mutation_id: last}).where(
        (SyncClient.id == client) & (SyncClient.last_mutation_id < last)
    )


def _rejected(mutation: MutationIn, refused: MutationRejectedError) -> MutationResult:
    return MutationResult(
        id=mutation.id,
        status=REJECTED,
        code=refused.code,
        reason=refused.reason,
        field=refused.field,
    )


def _unstorable(mutation: MutationIn, exc: Exception) -> MutationResult:
    # A value the database refuses (the args types should have caught it): the mutation is
    # rejected and recorded, so the ones behind it are not blocked.
    log.warning("mutation %s: the database refused a value: %s", mutation.name, type(exc).__name__)
    return MutationResult(
        id=mutation.id,
        status=REJECTED,
        code=MutationCode.INVALID_ARGS,
        reason="A value of this change cannot be stored.",
    )


def _precheck(mutation: MutationIn) -> tuple[Any, MutationResult | None]:
    """Decode the args; a rejection if the name or the args do not fit the catalogue."""
    spec = CATALOGUE.get(mutation.name)
    if spec is None:
        return None, MutationResult(
            id=mutation.id,
            status=REJECTED,
            code=MutationCode.UNKNOWN,
            reason=f"There is no mutation called {mutation.name!r}.",
        )
    try:
        return msgspec.convert(mutation.args, spec.args_type, strict=False), None
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(" - at `")
        field = path.rstrip("`") or None
        return None, MutationResult(
            id=mutation.id,
            status=REJECTED,
            code=MutationCode.INVALID_ARGS,
            reason=message,
            field=field,
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
        return _rejected(mutation, refused)
    except _UNSTORABLE as exc:
        await savepoint.rollback_to()  # type: ignore[no-untyped-call]
        return _unstorable(mutation, exc)
    await savepoint.release()  # type: ignore[no-untyped-call]
    return MutationResult(id=mutation.id, status=APPLIED)


async def _apply_run(
    transaction: Transaction, run: list[tuple[MutationIn, Any, MutationContext]]
) -> list[MutationResult]:
    """A run of one batched mutation's calls at once; one by one if the batch fails."""
    batch = CATALOGUE[run[0][0].name].batch
    assert batch is not None
    savepoint = await transaction.savepoint()
    try:
        outcomes = await batch([(ctx, args) for _, args, ctx in run])
    except _UNSTORABLE:
        await savepoint.rollback_to()  # type: ignore[no-untyped-call]
        return [await _apply_one(transaction, m, args, ctx) for m, args, ctx in run]
    await savepoint.release()  # type: ignore[no-untyped-call]
    return [
        MutationResult(id=m.id, status=APPLIED) if refused is None else _rejected(m, refused)
        for (m, _, _), refused in zip(run, outcomes, strict=True)
    ]


async def _apply(
    engine: Engine[Any],
    client: int,
    mutations: list[MutationIn],
    context: Callable[[MutationIn], MutationContext],
) -> dict[int, MutationResult]:
    """Apply ``mutations`` in one write transaction; their results by id."""
    results: dict[int, MutationResult] = {}
    async with write_transaction(engine) as transaction:
        last = await _position(engine, client)
        replays = [m.id for m in mutations if m.id <= last]
        results.update(await _stored_results(client, replays))
        done: list[tuple[MutationIn, MutationResult]] = []
        pending = [m for m in mutations if m.id > last]
        index = 0
        while index < len(pending):
            mutation = pending[index]
            if mutation.id != last + 1:
                results[mutation.id] = MutationResult(
                    id=mutation.id,
                    status=REJECTED,
                    code=MutationCode.OUT_OF_ORDER,
                    reason=f"Mutation {last + 1} has not arrived; send it first.",
                )
                index += 1
                continue
            args, rejection = _precheck(mutation)
            spec = CATALOGUE.get(mutation.name)
            if rejection is not None:
                outcome = [rejection]
            elif spec is not None and spec.batch is not None:
                run = [(mutation, args, context(mutation))]
                while index + len(run) < len(pending):
                    following = pending[index + len(run)]
                    if following.name != mutation.name or following.id != run[-1][0].id + 1:
                        break
                    more, refused = _precheck(following)
                    if refused is not None:
                        break
                    run.append((following, more, context(following)))
                outcome = await _apply_run(transaction, run)
            else:
                outcome = [await _apply_one(transaction, mutation, args, context(mutation))]
            for applied, result in zip(pending[index : index + len(outcome)], outcome, strict=True):
                results[applied.id] = result
                done.append((applied, result))
            index += len(outcome)
            last = done[-1][0].id
        if done:
            await _record(client, done, last)
    return results


async def push(
    engine: Engine[Any],
    *,
    viewer: AccessFacts,
    day: dt.date,
    request: PushRequest,
    device: str,
) -> PushResponse:
    """Apply ``request``'s mutations for ``viewer`` as described in the module's docstring."""
    client = await _register_client(request.client_id, viewer.person_id)
    memo: dict[object, Any] = {}

    def context(mutation: MutationIn) -> MutationContext:
        received_at = utc_now()
        return MutationContext(
            engine=engine,
            viewer=viewer,
            day=day,
            occurred_at=clamp_device_time(mutation.occurred_at, received_at),
            received_at=received_at,
            client_id=request.client_id,
            mutation_id=mutation.id,
            device=device,
            memo=memo,
        )

    results: dict[int, MutationResult] = {}
    mutations = request.mutations
    for first in range(0, len(mutations), PER_TRANSACTION):
        chunk = mutations[first : first + PER_TRANSACTION]
        # An id sent twice in one push: the first, in its place, is applied; the second is
        # answered as the first was.
        unique: list[MutationIn] = []
        for mutation in chunk:
            if all(m.id != mutation.id for m in unique):
                unique.append(mutation)
        for attempt in range(1, RETRIES + 1):
            try:
                results.update(await _apply(engine, client, unique, context))
                break
            except _CONFLICTING as exc:
                # Two transactions took the same rows' locks in opposite orders (PostgreSQL
                # chose this one to fail): nothing of it was applied, so apply it again.
                if attempt == RETRIES:
                    raise
                log.info("push: %s; trying again (%d)", type(exc).__name__, attempt)
                memo.clear()
    return PushResponse(results=[results[m.id] for m in mutations])
