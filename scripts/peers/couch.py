"""CouchDB's replication protocol, as pouchdb-server serves it, beside Reppu's sync.

Partitioning: **one database per pupil** (``pupil_<person id>``), the common PouchDB pattern
(CouchDB's ``couch_peruser`` does the same): the device replicates its own database whole, so
no filter runs on the server. Each database holds, as one document each, exactly the records
Reppu's own first sync gave that pupil (``_id`` ``<type>:<id>``, the record's fields as the
body), so both sides carry the same data. What this costs on the write side is not measured
here: a lesson change of a class must be written into each of its pupils' databases.

The client half of the protocol is implemented here (the CouchDB docs' "Replication
Protocol"), one-shot, pull only, into memory, as PouchDB's replicator does it:

1. ``GET /{db}/`` (the source's information, its ``update_seq``);
2. ``GET /{db}/_local/{replication id}`` (the checkpoint the source keeps; 404 the first time);
3. ``GET /{db}/_changes?style=all_docs&since=...&limit=100`` (a batch of changed ids and revs);
4. the revisions missing here (``_revs_diff`` against the local target: no round trip);
5. ``POST /{db}/_bulk_get?revs=true`` (the missing documents of the batch);
6. ``PUT /{db}/_local/{replication id}`` (the new checkpoint), and 3-6 again while batches
   come back full.

A "nothing new" replication is 1-3 with an empty batch: three round trips where Reppu's pull
is one. Bytes are counted as they come off the socket (``benchlib.CountingTransport``), the
same way for both.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from benchlib import (
    BenchError,
    Cleanup,
    Served,
    free_port,
    say,
    wait_until_up,
)

from peers import node_bin

REPLICATION_ID = "reppu-bench-replication"
BATCH = 100
"""PouchDB's default ``batch_size``."""


@dataclass(slots=True)
class Replica:
    """The device's side: documents by id with the revision held, and the checkpoint."""

    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    revs: dict[str, str] = field(default_factory=dict)
    checkpoint: Any = None
    source_log_rev: str | None = None


def database_name(pupil: int) -> str:
    return f"pupil_{pupil}"


async def _json(answer: Awaitable[httpx.Response], expect: Sequence[int] = (200,)) -> Any:
    response = await answer
    if response.status_code not in expect:
        raise BenchError(
            f"pouchdb-server answered {response.status_code} to {response.request.method} "
            f"{response.request.url.path}: {response.text[:200]}"
        )
    return response.json()


async def replicate(http: httpx.AsyncClient, db: str, replica: Replica) -> int:
    """One pull replication of ``db`` into ``replica``; the documents fetched."""
    await _json(http.get(f"/{db}/"))
    log = await http.get(f"/{db}/_local/{REPLICATION_ID}")
    since: Any = 0
    if log.status_code == 200:
        body = log.json()
        replica.source_log_rev = str(body["_rev"])
        if body.get("source_last_seq") == replica.checkpoint and replica.checkpoint is not None:
            since = replica.checkpoint
    elif log.status_code != 404:
        raise BenchError(f"pouchdb-server answered {log.status_code} for the checkpoint")
    fetched = 0
    while True:
        params = {"style": "all_docs", "since": str(since), "limit": str(BATCH)}
        changes = await _json(http.get(f"/{db}/_changes", params=params))
        results = changes["results"]
        missing = [
            {"id": row["id"], "rev": change["rev"]}
            for row in results
            for change in row["changes"]
            if replica.revs.get(row["id"]) != change["rev"]
        ]
        if missing:
            got = await _json(
                http.post(f"/{db}/_bulk_get", params={"revs": "true"}, json={"docs": missing})
            )
            for result in got["results"]:
                for item in result["docs"]:
                    doc = item.get("ok")
                    if doc is None:
                        raise BenchError(f"_bulk_get did not return {result['id']}: {item}")
                    replica.docs[doc["_id"]] = doc
                    replica.revs[doc["_id"]] = doc["_rev"]
                    fetched += 1
        since = changes["last_seq"]
        if results:
            checkpoint: dict[str, Any] = {
                "session_id": "reppu-bench",
                "source_last_seq": since,
                "history": [{"session_id": "reppu-bench", "recorded_seq": since}],
            }
            if replica.source_log_rev is not None:
                checkpoint["_rev"] = replica.source_log_rev
            saved = await _json(
                http.put(f"/{db}/_local/{REPLICATION_ID}", json=checkpoint), (200, 201)
            )
            replica.source_log_rev = str(saved["rev"])
            replica.checkpoint = since
        if len(results) < BATCH:
            return fetched


# -- pouchdb-server ---------------------------------------------------------------------------


async def start_pouchdb(cleanup: Cleanup, folder: Path) -> Served:
    """pouchdb-server on LevelDB (its default) in ``folder``, on a free loopback port."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "pouchdb-server.log"
    config = folder / "config.json"
    config.write_text(json.dumps({"log": {"file": str(folder / "couch-log.txt")}}))
    cmd = [str(node_bin("pouchdb-server")), "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--dir", str(folder / "data"), "--config", str(config)]
    (folder / "data").mkdir(exist_ok=True)
    say(f"pouchdb-server on port {port} (LevelDB in {folder})")
    proc = cleanup.start(cmd, env=dict(os.environ), log=log, cwd=folder)
    base = f"http://127.0.0.1:{port}"
    await wait_until_up(proc, base + "/", log)
    return Served(proc, base, log)


async def load_pupils(
    http: httpx.AsyncClient, records: dict[int, list[dict[str, Any]]], concurrency: int
) -> float:
    """One database per pupil holding its records as documents; the seconds it took."""
    gate = asyncio.Semaphore(concurrency)

    async def one(pupil: int, docs: list[dict[str, Any]]) -> None:
        async with gate:
            db = database_name(pupil)
            await _json(http.put(f"/{db}"), (201, 412))
            body = {"docs": [{"_id": f"{d['type']}:{d['id']}", **d} for d in docs]}
            saved = await _json(http.post(f"/{db}/_bulk_docs", json=body), (201,))
            failed = [s for s in saved if "error" in s]
            if failed:
                raise BenchError(f"_bulk_docs refused {len(failed)} documents: {failed[0]}")

    started = time.monotonic()
    await asyncio.gather(*(one(p, d) for p, d in records.items()))
    return time.monotonic() - started
