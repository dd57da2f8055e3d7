"""The lease heartbeat (server/leases.py): it beats until stopped and survives a failed beat.
(That stopping it never swallows a worker's own cancellation is shown end to end by
tests/server/test_fanout.py's worker stopped mid-batch, which hung when it did.)"""

from __future__ import annotations

import asyncio

from server.leases import Heartbeat


async def test_it_beats_until_stopped_and_a_failed_beat_is_retried() -> None:
    beats: list[int] = []

    async def beat() -> None:
        beats.append(len(beats))
        if len(beats) == 2:
            raise RuntimeError("the database was busy")

    heartbeat = Heartbeat(beat, 0.01, "a test")
    for _ in range(500):
        if len(beats) >= 4:
            break
        await asyncio.sleep(0.01)
    await heartbeat.stop()
    stopped_at = len(beats)
    assert stopped_at >= 4, "the beat after a failure came"
    await asyncio.sleep(0.05)
    assert len(beats) == stopped_at, "no beat after stop()"
