"""The live stream: a write reaches a subscriber's stream as a poke within a second."""

from __future__ import annotations

import asyncio
from typing import Any

from piccolo.engine.base import Engine

from schemas.core import GroupKind
from schemas.sync import GroupRecord
from server.db.engine import write_transaction
from server.live import LiveHub, Subscription, parse_notification
from server.routes.sync import live_events
from server.settings import Settings
from server.sync_store import RecordWrite, collect_changes, write_records


async def _write(engine: Engine[Any], record_id: int, partition: str) -> None:
    record = GroupRecord(
        id=record_id, v=0, name="5A", kind=GroupKind.HOME_CLASS, school_id=1, school_name="S"
    )
    async with write_transaction(engine):
        await write_records(
            engine, [RecordWrite("group", record_id, record, frozenset({partition}))]
        )


async def test_a_write_pokes_the_streams_of_its_partitions_only(
    fx_db: Engine[Any], fx_settings: Settings
) -> None:
    hub = LiveHub(fx_settings, poll_seconds=0.05)
    try:
        async with (
            hub.subscribe({"group:1", "school:9"}) as mine,
            hub.subscribe({"group:2"}) as other,
        ):
            await _write(fx_db, 1, "group:1")
            assert await asyncio.wait_for(mine.queue.get(), timeout=1.0) == {"group:1"}
            await asyncio.sleep(0.2)
            assert other.queue.empty()
    finally:
        await hub.stop()


async def test_the_stream_keeps_alive_pokes_and_notices_new_partitions(
    fx_db: Engine[Any], fx_settings: Settings
) -> None:
    hub = LiveHub(fx_settings, poll_seconds=0.05)
    partitions: set[str] | None = {"group:1"}

    async def recheck() -> set[str] | None:
        return None if partitions is None else set(partitions)

    events = live_events(hub, {"group:1"}, recheck, keep_alive=0.1, recheck_every=0.6)
    try:
        first = await anext(events)
        assert first.event == "ready"
        keep_alive = await asyncio.wait_for(anext(events), 1.0)
        # A comment and nothing else: a data line would make EventSource dispatch an empty
        # message event every 15 seconds.
        assert keep_alive.encode() == b": keep-alive\r\n\r\n"
        writing = asyncio.create_task(_write(fx_db, 5, "group:1"))
        seen = []
        while not any(e.event == "poke" for e in seen):
            seen.append(await asyncio.wait_for(anext(events), 1.0))
        await writing
        assert seen[-1].data == "group:1"
        # The person joins group 2 (say, a class change): the next recheck pokes, and from
        # then on group 2's changes reach the stream.
        partitions = {"group:1", "group:2"}
        while True:
            event = await asyncio.wait_for(anext(events), 2.0)
            if event.event == "poke":
                assert event.data == "group:2"
                break
        writing = asyncio.create_task(_write(fx_db, 6, "group:2"))
        while (event := await asyncio.wait_for(anext(events), 1.0)).event != "poke":
            pass
        await writing
        assert event.data == "group:2"
        # The token is revoked: the stream ends at the next recheck.
        partitions = None
        while (event := await asyncio.wait_for(anext(events), 2.0)).event != "end":
            pass
    finally:
        await events.aclose()
        await hub.stop()


async def test_a_burst_of_changes_is_one_poke_and_a_wait_ends_on_a_poke(
    fx_settings: Settings,
) -> None:
    hub = LiveHub(fx_settings)
    subscription = Subscription(hub, set())
    subscription.update({"group:1", "group:2"})
    pokes = subscription.queue
    await pokes.wait(0)  # nothing yet: the wait ends with its time
    assert pokes.empty()
    waiting = asyncio.create_task(pokes.wait(3600))
    await asyncio.sleep(0)
    hub.publish(["group:1", "school:9"])
    hub.publish(["group:2"])
    await asyncio.wait_for(waiting, 5)  # woken by the poke, not by its hour
    assert pokes.get_nowait() == {"group:1", "group:2"}
    assert pokes.empty()
    # Moving to other partitions keeps what was waiting, and hears the new ones only.
    hub.publish(["group:1"])
    subscription.update({"group:3"})
    hub.publish(["group:1", "group:3"])
    assert await pokes.get() == {"group:1", "group:3"}
    subscription.update(())
    assert hub._subscribers == {}


async def test_one_write_is_one_poke(fx_db: Engine[Any], fx_settings: Settings) -> None:
    """The writing process pokes at once (as the push route does) and then hears of the same
    write again from the database (NOTIFY, or the poll): that second hearing pokes nobody."""
    hub = LiveHub(fx_settings, poll_seconds=0.02)
    try:
        async with hub.subscribe({"group:1"}) as stream:
            for record_id in (1, 2):
                with collect_changes() as changed:
                    await _write(fx_db, record_id, "group:1")
                assert set(changed) == {"group:1"}
                hub.publish(changed)
                assert await asyncio.wait_for(stream.queue.get(), 1.0) == {"group:1"}
                await asyncio.sleep(0.3)  # many polls, and the NOTIFY, have come by now
                assert stream.queue.empty(), "the same write poked twice"
    finally:
        await hub.stop()


def test_a_head_already_poked_pokes_nobody(fx_settings: Settings) -> None:
    hub = LiveHub(fx_settings)
    subscription = Subscription(hub, set())
    subscription.update({"group:1", "group:2"})
    hub.publish({"group:1": 7})
    assert subscription.queue.get_nowait() == {"group:1"}
    hub.publish({"group:1": 7, "group:2": 3})  # group:1 at 7 again, group:2 new
    assert subscription.queue.get_nowait() == {"group:2"}
    hub.publish({"group:1": 5})  # an older head, heard late
    assert subscription.queue.empty()
    hub.publish({"group:1": None})  # a head not known: always poked
    hub.publish(["group:2"])  # nor from a plain list of names
    assert subscription.queue.get_nowait() == {"group:1", "group:2"}
    subscription.update(())
    assert hub._poked == {}, "what was poked is forgotten with the last subscriber"


def test_notifications_carry_partitions_and_heads() -> None:
    assert parse_notification("group:1@5 person:22@7") == {"group:1": 5, "person:22": 7}
    assert parse_notification("group:1 school:9") == {"group:1": None, "school:9": None}
    assert parse_notification("group:1@x") == {"group:1@x": None}
