"""SQLite's writers queue on a lock file beside the database (``server/db/engine.py``): a
writer cancelled while it waits must not leave the file or the queue held."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

import pytest

from server.db.engine import open_database, write_transaction
from server.settings import load_settings
from tests.conftest import _base_env


async def test_a_writer_cancelled_while_waiting_leaves_nothing_held(tmp_path: Path) -> None:
    database = tmp_path / "queue.sqlite3"
    env = {**_base_env(tmp_path), "REPPU_DATABASE_URL": f"sqlite:///{database}"}
    async with open_database(load_settings(env)) as engine:

        async def write() -> None:
            async with write_transaction(engine):
                await engine.run_ddl("CREATE TABLE IF NOT EXISTS t (x INTEGER)")

        await write()  # makes the lock file
        other_process = os.open(f"{database}-writer", os.O_RDWR)
        try:
            fcntl.flock(other_process, fcntl.LOCK_EX)  # another process is writing
            waiting = asyncio.create_task(write())
            await asyncio.sleep(0.2)
            assert not waiting.done()  # it waits in line for the file
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            fcntl.flock(other_process, fcntl.LOCK_UN)
            # The next writer of this process gets through, and lets the file go after.
            await asyncio.wait_for(write(), timeout=10)
            await asyncio.sleep(0.1)
            fcntl.flock(other_process, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(other_process, fcntl.LOCK_UN)
        finally:
            os.close(other_process)
