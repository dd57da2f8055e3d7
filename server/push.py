"""The push: a client's queued mutations, applied in order, each exactly once.

For each mutation, in the order sent:

- an id at or below the client's last applied id is a replay: it gets the answer it got the
  first time, and nothing is applied again;
- an id past the next expected one means an earlier mutation never arrived: it is refused
  with ``mutation.out_of_order`` and *not* recorded, so the client can send the missing ones
  and then this one again;
- otherwise the mutation is looked up in the catalogue, its args checked against its type,
  and its handler run in one write transaction together with the record of its result. A
  rejection rolls the handler's writes back and records the rejection instead. Either way
  the client's position advances: one rejected mutation never blocks the ones behind it.

Two pushes of the same mutation at once (a retry racing the original) cannot both apply it:
the result row, unique per client and id, is written first in the transaction, so the second
waits for the first and then finds the id taken, rolls back, and answers as a replay.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from typing import Any

import asyncpg
import msgspec
from piccolo.engine.base import Engine

from schemas.errors import ErrorCode
from schemas.sync import MutationCode, MutationIn, MutationResult, PushRequest, PushResponse
from server.catalogue import CATALOGUE
from server.db.engine import DUPLICATE, write_transaction
from server.db.sync_tables import SyncClient, SyncMutation
from server.errors import ReppuError
from server.mutations import MutationContext, MutationRejectedError, clamp_device_time
from sync.policy import AccessFacts

APPLIED = "applied"
REJECTED = "rejected"
_DUPLICATE = DUPLICATE
_UNSTORABLE = (asyncpg.DataError, OverflowError, sqlite3.DataError)
log = logging.getLogger("reppu.push")


class _ReplayedError(Exception):
    """Another push recorded this mutation first."""


async def _claim_client(client_id: str, person_id: int) -> tuple[int, int]:
    """The client's row id and last applied mutation id, registering it on first use."""
    for _ in range(2):
        row = await SyncClient.select().where(SyncClient.client_id == client_id).first()
        if row is not None:
            if row["person"] != person_id:
                raise ReppuError(
                    ErrorCode.SYNC_CLIENT_MISMATCH,
                    "This client id belongs to another person's installation; make a new one.",
                    field="$.client_id",
                )
            return int(row["id"]), int(row["last_mutation_id"])
        try:
            await SyncClient.insert(
                SyncClient(
                    client_id=client_id,
                    person=person_id,
                    last_mutation_id=0,
                    created_at=dt.datetime.now(dt.UTC),
                )
            )
        except _DUPLICATE:
            continue  # registered by a concurrent push a moment ago: read it
    raise RuntimeError("could not register the client")  # pragma: no cover


async def _stored_result(client: int, mutation_id: int) -> MutationResult:
    row = (
        await SyncMutation.select()
        .where((SyncMutation.client == client) & (SyncMutation.mutation_id == mutation_id))
        .first()
    )
    if row is None:
        # Not reached today: every result is written with its mutation. Should result rows
        # ever be pruned, an id at or below the client's last was still applied once.
        return MutationResult(id=mutation_id, status=APPLIED)
    return MutationResult(
        id=mutation_id,
        status=row["status"],
        code=MutationCode(row["code"]) if row["code"] else None,
        reason=row["reason"],
        field=row["field"],
    )


async def _record(client: int, mutation: MutationIn, result: MutationResult) -> None:
    """Write the result first thing in the transaction: the unique key is the guard."""
    try:
        await SyncMutation.insert(
            SyncMutation(
                client=client,
                mutation_id=mutation.id,
                name=mutation.name[:60],
                status=result.status,
                code=result.code.value if result.code else None,
                reason=result.reason,
                field=result.field,
                occurred_at=mutation.occurred_at,
                received_at=dt.datetime.now(dt.UTC),
            )
        )
    except _DUPLICATE as exc:
        raise _ReplayedError from exc
    await SyncClient.update({SyncClient.last_mutation_id: mutation.id}).where(
        (SyncClient.id == client) & (SyncClient.last_mutation_id < mutation.id)
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


async def _apply(
    engine: Engine[Any], client: int, mutation: MutationIn, ctx: MutationContext
) -> MutationResult:
    args, rejection = _precheck(mutation)
    try:
        if rejection is None:
            applied = MutationResult(id=mutation.id, status=APPLIED)
            try:
                async with write_transaction(engine):
                    await _record(client, mutation, applied)
                    await CATALOGUE[mutation.name].handler(ctx, args)
                return applied
            except MutationRejectedError as refused:
                rejection = MutationResult(
                    id=mutation.id,
                    status=REJECTED,
                    code=refused.code,
                    reason=refused.reason,
                    field=refused.field,
                )
            except _UNSTORABLE as exc:
                # A value the database refuses (the args types should have caught it): the
                # mutation is rejected and recorded, so the ones behind it are not blocked.
                log.warning(
                    "mutation %s: the database refused a value: %s",
                    mutation.name,
                    type(exc).__name__,
                )
                rejection = MutationResult(
                    id=mutation.id,
                    status=REJECTED,
                    code=MutationCode.INVALID_ARGS,
                    reason="A value of this change cannot be stored.",
                )
        async with write_transaction(engine):
            await _record(client, mutation, rejection)
        return rejection
    except _ReplayedError:
        return await _stored_result(client, mutation.id)


async def push(
    engine: Engine[Any],
    *,
    viewer: AccessFacts,
    day: dt.date,
    request: PushRequest,
    device: str = "",
) -> PushResponse:
    """Apply ``request``'s mutations for ``viewer`` as described in the module's docstring."""
    client, last = await _claim_client(request.client_id, viewer.person_id)
    results: list[MutationResult] = []
    memo: dict[object, Any] = {}
    for mutation in request.mutations:
        if mutation.id <= last:
            results.append(await _stored_result(client, mutation.id))
            continue
        if mutation.id != last + 1:
            results.append(
                MutationResult(
                    id=mutation.id,
                    status=REJECTED,
                    code=MutationCode.OUT_OF_ORDER,
                    reason=f"Mutation {last + 1} has not arrived; send it first.",
                )
            )
            continue
        received_at = dt.datetime.now(dt.UTC)
        ctx = MutationContext(
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
        results.append(await _apply(engine, client, mutation, ctx))
        last = mutation.id
    return PushResponse(results=results)
