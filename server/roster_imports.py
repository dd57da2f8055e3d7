"""Roster imports over HTTP: an admin uploads a OneRoster zip, reads the dry run's report,
then applies it; every upload stays in the import history (``roster_import``).

1. :func:`check_may_import`: only an admin of every city in the database may import; a
   OneRoster set can touch any school, so a lesser right would let one city's admin change
   another's (deny by default). A deployment with several cities imports each city's set
   with ``reppu import oneroster`` on the server, or gives one person admin of all.
2. :func:`receive_upload` streams the body to a file under ``<data dir>/imports`` with its
   SHA-256, refusing it past ``REPPU_MAX_IMPORT_BYTES`` without holding it in memory.
3. :func:`check_upload`: the dry run. The same reading, parsing, planning and checks of the
   stored rows as the import (``check_oneroster``), writing nothing but the history row.
   A refused set's file is deleted at once; a checked one is kept for a day.
4. :func:`apply_upload` applies a checked upload: the plan is made again (the roster may
   have changed since the dry run), so the answer is what the import did.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import msgspec
from piccolo.engine.base import Engine

from schemas.errors import ErrorCode
from schemas.roster_imports import ImportCounts, ImportProblem, RosterImport
from server.access import load_access_facts
from server.clock import school_today, utc_now
from server.db.bulk import run_sql
from server.db.engine import write_transaction
from server.db.tables import Organisation
from server.errors import ReppuError
from server.oneroster import (
    ImportRefused,
    Summary,
    check_oneroster,
    import_oneroster,
    parse_files,
    read_files,
)
from server.settings import Settings
from sync.policy import AccessFacts, Action, CityRef, decide

KEEP_CHECKED = dt.timedelta(days=1)
"""How long a checked upload waits to be applied before its file is deleted."""
CHUNK = 1 << 20

_FORBIDDEN = "Only an admin of every city in this database may import rosters."


async def check_may_import(viewer_id: int) -> None:
    """Raise ``auth.forbidden`` unless the viewer is an admin of every city."""
    day = school_today()
    facts = await load_access_facts([viewer_id])
    viewer = facts.get(viewer_id, AccessFacts(viewer_id))
    cities = await Organisation.select(Organisation.id).where(Organisation.parent.is_null())
    if cities and all(
        decide(viewer, Action.MANAGE_CITY, CityRef(int(c["id"])), day) for c in cities
    ):
        return
    raise ReppuError(ErrorCode.AUTH_FORBIDDEN, _FORBIDDEN)


def imports_folder(settings: Settings) -> Path:
    """``<data dir>/imports``, readable by Reppu's user only: uploads hold children's data."""
    folder = settings.data_dir / "imports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


async def receive_upload(
    chunks: AsyncIterator[bytes], folder: Path, limit: int
) -> tuple[Path, str, int]:
    """Write ``chunks`` to a new file in ``folder``: ``(path, sha256 hex, size)``. Raises
    ``request.too_large`` past ``limit`` bytes and ``request.invalid`` for an empty body;
    the file is deleted either way."""
    path = folder / f"upload-{secrets.token_hex(8)}.zip"
    digest = hashlib.sha256()
    size = 0
    try:
        # Created for Reppu's user alone, whatever the umask.
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise ReppuError(
                        ErrorCode.REQUEST_TOO_LARGE,
                        f"A roster import may be at most {limit:,} bytes (REPPU_MAX_IMPORT_BYTES).",
                    )
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
        if size == 0:
            raise ReppuError(
                ErrorCode.REQUEST_INVALID, "Send the OneRoster set as a zip in the body."
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest(), size


def _report(
    summary: Summary | None, refused: ImportRefused | None, upload: Path, file_name: str
) -> str:
    counts = {} if summary is None else {k: asdict(c) for k, c in summary.counts.items()}
    problems = [] if refused is None else [asdict(p) for p in refused.problems]
    for problem in problems:
        if problem["file"] == upload.name:  # the zip itself, by the name it was sent as
            problem["file"] = file_name
    total = 0 if refused is None else refused.total
    return json.dumps({"counts": counts, "problems": problems, "problem_count": total})


async def _run_checked(
    engine: Engine[Any], settings: Settings, path: Path, *, apply: bool
) -> tuple[Summary | None, ImportRefused | None]:
    """Read, parse and check (or apply) the set at ``path``: the summary, or the refusal."""
    try:
        # Reading and parsing are CPU work of seconds for a city: not on the event loop.
        batch = await asyncio.to_thread(lambda: parse_files(read_files(path)))
        if apply:
            summary = await import_oneroster(engine, batch, identity=settings.signin)
        else:
            summary = await check_oneroster(engine, batch, identity=settings.signin)
    except ImportRefused as refused:
        return None, refused
    return summary, None


async def expire_uploads(engine: Engine[Any], settings: Settings) -> None:
    """Checked uploads older than :data:`KEEP_CHECKED` lose their file and become expired."""
    cutoff = utc_now() - KEEP_CHECKED
    rows = await run_sql(
        "SELECT id FROM roster_import WHERE status = 'checked' AND uploaded_at < {}", cutoff
    )
    if not rows:
        return
    folder = imports_folder(settings)
    for row in rows:
        (folder / f"{int(row['id'])}.zip").unlink(missing_ok=True)
    async with write_transaction(engine):
        await run_sql(
            "UPDATE roster_import SET status = 'expired' "
            "WHERE status = 'checked' AND uploaded_at < {}",
            cutoff,
        )


async def check_upload(
    engine: Engine[Any],
    settings: Settings,
    *,
    actor: int,
    upload: tuple[Path, str, int],
    file_name: str,
) -> RosterImport:
    """The dry run of an upload, recorded in the history; see the module's docstring."""
    path, sha256, size = upload
    try:
        summary, refused = await _run_checked(engine, settings, path, apply=False)
        status = "checked" if refused is None else "refused"
        async with write_transaction(engine):
            rows = await run_sql(
                "INSERT INTO roster_import (uploaded_by, uploaded_at, file_name, file_sha256, "
                "file_bytes, status, report) VALUES ({}, {}, {}, {}, {}, {}, {}) RETURNING id",
                actor,
                utc_now(),
                file_name,
                sha256,
                size,
                status,
                _report(summary, refused, path, file_name),
            )
        import_id = int(rows[0]["id"])
        if status == "checked":
            path.replace(imports_folder(settings) / f"{import_id}.zip")
    finally:
        path.unlink(missing_ok=True)
    await expire_uploads(engine, settings)
    return await roster_import(import_id)


async def apply_upload(
    engine: Engine[Any], settings: Settings, *, actor: int, import_id: int
) -> RosterImport:
    """Apply a checked upload; ``import.not_applicable`` unless it is checked and kept."""
    await expire_uploads(engine, settings)
    row = await roster_import(import_id)  # import.not_found first
    async with write_transaction(engine):
        # Claimed before the long work: a second apply of the same upload is refused.
        claimed = await run_sql(
            "UPDATE roster_import SET status = 'applying' WHERE id = {} AND status = 'checked' "
            "RETURNING id",
            import_id,
        )
    path = imports_folder(settings) / f"{import_id}.zip"
    if not claimed or not path.exists():
        if claimed:
            await _set_status(engine, import_id, "expired")
        raise ReppuError(
            ErrorCode.IMPORT_NOT_APPLICABLE,
            "This import cannot be applied: it was refused, is applied or being applied, "
            "or its file expired. Upload the set again.",
        )
    try:
        summary, refused = await _run_checked(engine, settings, path, apply=True)
    except BaseException:
        # Nothing was written (the import is one transaction): it may be tried again.
        with contextlib.suppress(Exception):
            await _set_status(engine, import_id, "checked")
        raise
    async with write_transaction(engine):
        await run_sql(
            "UPDATE roster_import SET status = {}, report = {}, applied_by = {}, "
            "applied_at = {} WHERE id = {}",
            "applied" if refused is None else "refused",
            _report(summary, refused, path, row.file_name),
            actor,
            utc_now(),
            import_id,
        )
    path.unlink(missing_ok=True)
    return await roster_import(import_id)


async def _set_status(engine: Engine[Any], import_id: int, status: str) -> None:
    async with write_transaction(engine):
        await run_sql("UPDATE roster_import SET status = {} WHERE id = {}", status, import_id)


_COLUMNS = (
    "SELECT id, status, uploaded_by, uploaded_at, file_name, file_sha256, file_bytes, report, "
    "applied_by, applied_at FROM roster_import"
)


def _as_datetime(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def _answer(row: dict[str, Any]) -> RosterImport:
    report = json.loads(row["report"] or "{}")
    uploaded_at = _as_datetime(row["uploaded_at"])
    assert uploaded_at is not None
    return RosterImport(
        id=int(row["id"]),
        status=str(row["status"]),
        uploaded_by=int(row["uploaded_by"]),
        uploaded_at=uploaded_at,
        file_name=str(row["file_name"]),
        file_sha256=str(row["file_sha256"]),
        file_bytes=int(row["file_bytes"]),
        counts={k: msgspec.convert(v, ImportCounts) for k, v in report.get("counts", {}).items()},
        problems=[msgspec.convert(p, ImportProblem) for p in report.get("problems", [])],
        problem_count=int(report.get("problem_count", 0)),
        applied_by=None if row["applied_by"] is None else int(row["applied_by"]),
        applied_at=_as_datetime(row["applied_at"]),
    )


async def roster_import(import_id: int) -> RosterImport:
    rows = await run_sql(_COLUMNS + " WHERE id = {}", import_id)
    if not rows:
        raise ReppuError(ErrorCode.IMPORT_NOT_FOUND, "No roster import has this id.")
    return _answer(rows[0])


async def roster_imports(limit: int) -> list[RosterImport]:
    rows = await run_sql(_COLUMNS + " ORDER BY id DESC LIMIT {}", limit)
    return [_answer(r) for r in rows]
