"""Checking quiet partitions, over memory: the engine's ``check`` and the reference client's
daily check, with the client's HTTP answered by the engine in process (no database).

A partition that rarely changes gets no summary with its (absent) changes, so a damaged copy
of it would go unnoticed; asked to ``check`` it, the engine sends its summary, and the
reference client repairs the copy. ``tests/server/test_quiet_partitions.py`` does the same
over HTTP on both databases.
"""

from __future__ import annotations

import datetime as dt
import json

import httpx
import msgspec

from clients.python import ReppuClient
from schemas.sync import (
    Delete,
    GroupRecord,
    PartitionSummary,
    PullRequest,
    PullResponse,
    Upsert,
)
from sync.pull import pull
from tests.sync.test_convergence_property import MemorySyncStore

BUSY, QUIET, OTHERS = "group:1", "school:1", "group:9"
READABLE = frozenset({BUSY, QUIET})


def _server() -> MemorySyncStore:
    server = MemorySyncStore()
    server.write(1, frozenset({BUSY}), "5A")
    server.write(2, frozenset({QUIET}), "Koulu")
    server.write(3, frozenset({QUIET}), "Koulu 2")
    server.write(4, frozenset({OTHERS}), "6C")
    return server


async def test_a_quiet_partition_gets_its_summary_only_when_asked() -> None:
    server = _server()
    first = await pull(server, readable=READABLE, positions=None, limit=100)
    quiet = await pull(server, readable=READABLE, positions=first.positions, limit=100)
    assert quiet.summaries == {}  # nothing new: today's answer, no summary
    checked = await pull(
        server, readable=READABLE, positions=first.positions, limit=100, check=[QUIET]
    )
    assert checked.summaries == {QUIET: server.state[QUIET].tally}
    assert checked.entries == []
    assert checked.positions == first.positions  # a check moves no cursor


async def test_a_partition_that_may_not_be_read_gets_no_summary() -> None:
    server = _server()
    first = await pull(server, readable=READABLE, positions=None, limit=100)
    asked = await pull(
        server,
        readable=READABLE,
        positions=first.positions,
        limit=100,
        check=[OTHERS, "person:7", QUIET],
    )
    assert set(asked.summaries) == {QUIET}


async def test_a_checked_partition_still_behind_gets_its_summary_at_its_head() -> None:
    server = _server()
    first = await pull(server, readable=READABLE, positions=None, limit=100)
    server.write(5, frozenset({QUIET}), "Koulu 3")
    server.write(6, frozenset({QUIET}), "Koulu 4")
    page = await pull(server, readable=READABLE, positions=first.positions, limit=1, check=[QUIET])
    assert page.has_more
    assert QUIET not in page.summaries  # the copy is not at the head the summary describes
    last = await pull(server, readable=READABLE, positions=page.positions, limit=100)
    assert last.summaries == {QUIET: server.state[QUIET].tally}


class EngineOverHttp:
    """``POST /sync/pull`` answered by the engine over a memory store, for the reference
    client. The cursor is plain JSON here: signing it is the server's business."""

    def __init__(self, server: MemorySyncStore) -> None:
        self.server = server
        self.bodies: list[dict[str, object]] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/sync/pull"
        self.bodies.append(json.loads(request.content))
        body = msgspec.json.decode(request.content, type=PullRequest)
        positions = json.loads(body.cursor) if body.cursor else None
        result = await pull(
            self.server,
            readable=READABLE,
            positions=positions,
            limit=body.limit,
            repair=body.repair,
            check=body.check,
        )
        assert result.floors == {}  # nothing here is compacted
        answer = PullResponse(
            cursor=json.dumps(result.positions),
            has_more=result.has_more,
            added=result.added,
            removed=result.removed,
            changes=[
                Upsert(partition=e.partition, record=msgspec.json.decode(e.data, type=GroupRecord))
                if e.data is not None
                else Delete(partition=e.partition, type="group", id=e.record_id)
                for e in result.entries
            ],
            summaries=[
                PartitionSummary(partition=p, count=t.count, checksum=t.hex)
                for p, t in sorted(result.summaries.items())
            ],
        )
        return httpx.Response(200, content=msgspec.json.encode(answer))


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


async def test_the_reference_client_repairs_a_damaged_quiet_copy_once_a_day() -> None:
    server = _server()
    engine = EngineOverHttp(server)
    clock = Clock(dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC))
    async with httpx.AsyncClient(
        base_url="http://reppu.test", transport=httpx.MockTransport(engine.handle)
    ) as http:
        device = ReppuClient(http, "token", clock=clock)
        first = await device.sync()
        assert first.repaired == []  # nothing held to check yet
        assert first.checked == []
        healthy = device.store.records()

        # The local copy of the quiet partition is damaged (a record lost, say by a bug).
        device.store.db.execute("DELETE FROM holding WHERE partition = ? AND id = 3", (QUIET,))
        device.store.db.execute("DELETE FROM record WHERE id = 3")
        clock.now += dt.timedelta(hours=23)
        later = await device.sync()
        assert later.checked == []  # not due: unnoticed for now
        assert later.repaired == []
        assert "check" not in engine.bodies[-1]
        assert device.store.records() != healthy

        clock.now += dt.timedelta(hours=1)
        daily = await device.sync()
        assert daily.checked == sorted(READABLE)
        assert daily.repaired == [QUIET]
        assert device.store.records() == healthy
        assert device.store.tally(QUIET) == server.state[QUIET].tally
        assert engine.bodies[-1]["repair"] == [QUIET]

        # Checked a moment ago: the next sync asks nothing more.
        clock.now += dt.timedelta(minutes=5)
        assert (await device.sync()).checked == []


async def test_a_clock_set_back_does_not_put_the_check_off() -> None:
    engine = EngineOverHttp(_server())
    clock = Clock(dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC))
    async with httpx.AsyncClient(
        base_url="http://reppu.test", transport=httpx.MockTransport(engine.handle)
    ) as http:
        device = ReppuClient(http, "token", clock=clock)
        await device.sync()
        clock.now -= dt.timedelta(days=300)
        assert (await device.sync()).checked == sorted(READABLE)
        never = ReppuClient(http, "token", device.store, clock=clock, check_every=None)
        clock.now += dt.timedelta(days=900)
        assert (await never.sync()).checked == []
