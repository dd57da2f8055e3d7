"""The sync routes: pull, push and the live stream. Thin wrappers over the engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent, ServerSentEventMessage

from schemas.errors import ErrorCode
from schemas.sync import (
    MAX_PAGE_RECORDS,
    MIN_SCHEMA_VERSION,
    SCHEMA_VERSION,
    Change,
    Delete,
    PartitionSummary,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    Record,
    Upsert,
    VersionOnly,
)
from server.access import load_access_facts
from server.clock import school_today
from server.db.engine import read_snapshot
from server.db.tables import Person
from server.errors import ReppuError
from server.identity import Principal, token_digest
from server.language import effective_language
from server.live import LiveHub
from server.metrics import count_pull, count_push, stream_open
from server.push import push as apply_push
from server.push_body import read_push
from server.state import AppState
from server.sync_store import SqlPullStore, collect_changes
from server.wire import UNREADABLE, Body, encode_answer, read_body
from sync.cursor import CursorError, decode_cursor, encode_cursor
from sync.policy import AccessFacts, readable_partitions
from sync.pull import LogEntry, pull

_record = msgspec.json.Decoder(Record)


def _check_version(body: Body) -> None:
    """Refuse a protocol version this server does not serve, before reading the rest of the
    body: a newer app's body may hold fields this server has never heard of."""
    try:
        version = body.decode_raw(VersionOnly).schema_version
    except UNREADABLE:
        return  # decoding the body in full says what is wrong with it
    if type(version) is not int:
        return
    if version < MIN_SCHEMA_VERSION:
        raise ReppuError(
            ErrorCode.SYNC_UPDATE_REQUIRED,
            "This version of the app is too old for the server. Update the app.",
            field="$.schema_version",
        )
    if version > SCHEMA_VERSION:
        raise ReppuError(
            ErrorCode.SYNC_VERSION_UNKNOWN,
            f"The server speaks protocol versions {MIN_SCHEMA_VERSION} to {SCHEMA_VERSION}.",
            field="$.schema_version",
        )


def _change(entry: LogEntry) -> Change:
    if entry.data is None:
        return Delete(partition=entry.partition, type=entry.record_type, id=entry.record_id)
    return Upsert(partition=entry.partition, record=_record.decode(entry.data))


async def _viewer(principal: Principal) -> AccessFacts:
    facts = await load_access_facts([principal.person_id])
    return facts.get(principal.person_id, AccessFacts(principal.person_id))


@post(
    "/sync/pull",
    status_code=200,
    tags=["sync"],
    summary="Pull changes since a cursor",
    wire_request=PullRequest,
    wire_answer=PullResponse,
    error_codes=[
        ErrorCode.SYNC_BAD_CURSOR,
        ErrorCode.SYNC_UPDATE_REQUIRED,
        ErrorCode.SYNC_VERSION_UNKNOWN,
    ],
)
async def sync_pull(
    request: Request[Principal, Any, Any], app_state: NamedDependency[AppState]
) -> Any:
    """Changes of every partition the caller may read, since the cursor. See the protocol doc."""
    raw = await read_body(request)
    _check_version(raw)
    body = raw.decode(PullRequest)
    key = await app_state.cursor_key()
    positions: dict[str, int] | None = None
    floors: dict[str, int] = {}
    if body.cursor:
        try:
            positions, floors = decode_cursor(key, body.cursor)
        except CursorError as exc:
            raise ReppuError(
                ErrorCode.SYNC_BAD_CURSOR,
                "The cursor is not valid here; pull again without one.",
                field="$.cursor",
            ) from exc
    person = request.user.person_id
    hub, recent = app_state.live, app_state.recent
    if recent.enabled:
        await hub.start()  # the head cache is trusted only while changes are heard of
        readable_now = recent.readable(person)
        if (
            hub.listening
            and positions is not None
            and not floors
            and not body.repair
            and not body.check  # summaries are read with the heads, from the database
            and readable_now == frozenset(positions)
            and hub.heads.caught_up(positions)
        ):
            # Nothing new, known without the database (see server/live.HeadCache).
            count_pull(nothing_new=True)
            return encode_answer(request, PullResponse())
    store = SqlPullStore()
    ticket = hub.heads.ticket()  # before the snapshot begins: see server/live.HeadCache
    # One snapshot, on one connection, for everything the pull reads: the person's ties,
    # the heads and the changes. Compaction committing in between could otherwise remove a
    # deletion the client has not seen while its horizon looked old.
    async with read_snapshot(app_state.engine):
        viewer = await _viewer(request.user)
        readable = {str(p) for p in readable_partitions(viewer, school_today())}
        result = await pull(
            store,
            readable=readable,
            positions=positions,
            limit=min(body.limit, MAX_PAGE_RECORDS),
            repair=body.repair,
            floors=floors,
            check=body.check,
        )
    if recent.enabled:
        recent.keep_readable(person, frozenset(readable))
        heads = {p: store.last_heads[p].head if p in store.last_heads else 0 for p in readable}
        hub.heads.remember(ticket, heads)
    answer = PullResponse(
        cursor=None
        if (result.positions, result.floors) == (positions, floors)
        else encode_cursor(key, result.positions, result.floors),
        has_more=result.has_more,
        added=result.added,
        removed=result.removed,
        changes=[_change(e) for e in result.entries],
        summaries=[
            PartitionSummary(partition=p, count=t.count, checksum=t.hex)
            for p, t in sorted(result.summaries.items())
        ],
    )
    count_pull(nothing_new=not (answer.changes or answer.added or answer.removed))
    return encode_answer(request, answer)


@post(
    "/sync/push",
    status_code=200,
    tags=["sync"],
    summary="Push queued mutations",
    wire_request=PushRequest,
    wire_answer=PushResponse,
    error_codes=[
        ErrorCode.SYNC_UPDATE_REQUIRED,
        ErrorCode.SYNC_VERSION_UNKNOWN,
        ErrorCode.SYNC_CLIENT_MISMATCH,
    ],
)
async def sync_push(
    request: Request[Principal, Any, Any], app_state: NamedDependency[AppState]
) -> Any:
    """Apply the client's mutations in order, each exactly once; one result per mutation."""
    raw = await read_body(request)
    _check_version(raw)
    envelope, items = read_push(raw)
    # One connection for the caller's facts (SQLite opens one per query outside a
    # transaction; the roll-call burst spent half its time starting them).
    async with read_snapshot(app_state.engine):
        viewer = await _viewer(request.user)
        language = await Person.select(Person.language, Person.ui_language).where(
            Person.id == viewer.person_id
        )
    with collect_changes() as changed:
        try:
            answer = await apply_push(
                app_state.engine,
                viewer=viewer,
                day=school_today(),
                client_id=envelope.client_id,
                items=items,
                device=request.user.device_name,
                language=effective_language(
                    language[0]["ui_language"] if language else None,
                    language[0]["language"] if language else None,
                ),
            )
        finally:
            # This process knows at once (also of what committed before a later part of
            # the push failed); the others hear of it through the database.
            app_state.live.publish(changed)
            app_state.wake_worker()
    count_push((r.status, None if r.code is None else str(r.code)) for r in answer.results)
    return encode_answer(request, answer)


KEEP_ALIVE_SECONDS = 15.0
RECHECK_PARTITIONS_SECONDS = 60.0

LIVE_EVENTS = {
    "ready": (
        "The stream is open: changes from now on are poked; `data` is empty. Pull once, for "
        "what changed before it opened."
    ),
    "poke": (
        "Pull now: something changed. `data`: the names of the changed partitions the "
        "holder may read, separated by single spaces (a client may ignore them)."
    ),
    "end": (
        "The stream ends: the token was revoked or expired (`data`: `log in again`). Log in "
        "again before reconnecting."
    ),
}
LIVE_EVENT_SCHEMA = {
    "type": "object",
    "description": (
        "One Server-Sent Event (`event:` and `data:` lines, then a blank line). Between events "
        f"the server sends a comment (`: keep-alive`) at least every {KEEP_ALIVE_SECONDS:g} "
        "seconds, which EventSource does not dispatch: after longer silence, reconnect. "
        + " ".join(f"`{name}`: {meaning}" for name, meaning in LIVE_EVENTS.items())
    ),
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": list(LIVE_EVENTS)},
        "data": {
            "type": "string",
            "description": "poke: the changed partitions, separated by spaces; end: why.",
        },
    },
    "x-events": LIVE_EVENTS,
}
"""One event of the live stream, for the OpenAPI document (comments keep it open)."""


async def live_events(
    hub: LiveHub,
    readable: set[str],
    recheck: Callable[[], Awaitable[set[str] | None]],
    *,
    keep_alive: float = KEEP_ALIVE_SECONDS,
    recheck_every: float = RECHECK_PARTITIONS_SECONDS,
) -> AsyncGenerator[ServerSentEventMessage, None]:
    """The stream's events: ``poke`` with the changed partitions, comments to keep it open.

    Every ``recheck_every`` seconds the caller's token and partitions are checked again:
    a token revoked or expired ends the stream; partitions gained or lost (a class change, a
    guardianship ending at midnight) are poked, and followed from then on.
    """
    yield ServerSentEventMessage(event="ready", data="")
    loop = asyncio.get_running_loop()
    async with hub.subscribe(readable) as subscription:
        next_check = loop.time() + recheck_every
        while True:
            await subscription.queue.wait(max(0.0, min(keep_alive, next_check - loop.time())))
            changed = subscription.queue.get_nowait()  # one poke for a burst of changes
            if loop.time() >= next_check:
                next_check = loop.time() + recheck_every
                now_readable = await recheck()
                if now_readable is None:
                    yield ServerSentEventMessage(event="end", data="log in again")
                    return
                changed |= now_readable ^ subscription.partitions
                subscription.update(now_readable)
            if changed:
                yield ServerSentEventMessage(event="poke", data=" ".join(sorted(changed)))
            else:
                # A comment alone (no data line): EventSource dispatches nothing for it.
                yield ServerSentEventMessage(comment="keep-alive", data=None)


async def counted(
    events: AsyncGenerator[ServerSentEventMessage, None],
) -> AsyncIterator[ServerSentEventMessage]:
    """``events``, with the stream counted as open while they are sent (``/metrics``).

    ``events`` is closed as soon as this is: its subscription to the hub must end when the
    client goes, not whenever the garbage collector gets to it."""
    with stream_open():
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()


@get(
    "/sync/live",
    tags=["sync"],
    summary="A stream of 'pull now' pokes (Server-Sent Events)",
    response_description=(
        "A text/event-stream of `ready`, then `poke` events, and `end` if the token stops "
        "being valid; keep-alive comments in between (docs/sync-protocol.md, 'Live')."
    ),
    media_type="text/event-stream",
    event_schema=LIVE_EVENT_SCHEMA,
)
async def sync_live(
    request: Request[Principal, Any, Any], app_state: NamedDependency[AppState]
) -> ServerSentEvent:
    """Server-Sent Events: ``poke`` (data: changed partitions) means "pull now"."""
    principal = request.user
    token = (request.headers.get("authorization") or "").partition(" ")[2].strip()
    digest = token_digest(app_state.settings, token)
    access = app_state.stream_access  # many streams' checks in one lookup

    async def still_readable() -> set[str] | None:
        found = await access.still_readable(principal.person_id, digest)
        return None if found is None else set(found)

    readable = set(await access.readable(principal.person_id))
    stream = live_events(app_state.live, readable, still_readable)
    # Counted only when someone reads the count: streams are held by the thousand, and the
    # wrapper is one more generator per stream and one more step per event.
    events = counted(stream) if app_state.settings.metrics_token else stream
    return ServerSentEvent(
        events,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
