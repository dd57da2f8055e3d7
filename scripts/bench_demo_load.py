"""Benchmark: generate the full-scale demo city and load it into SQLite and PostgreSQL.

The requirement (DESIGN.md, "Hard figures"): 160,000 pupils, 200,000 guardians and 15,000
staff with timetables, generated and loaded on a 2-core machine in minutes, under five on
each backend. Each backend gets a fresh, migrated database: a SQLite file in a temporary
data folder, and a PostgreSQL database created (and dropped afterwards) next to the admin
database of ``--postgres-admin-url``. The city is generated once and loaded into both; the
two halves are timed apart. The figures are appended to ``docs/benchmarks.md`` as a dated
entry of its "Demo city load" section (``--no-record`` skips that).

Run: ``.venv/bin/python scripts/bench_demo_load.py [--pupils 160000] [--seed 1]``
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import resource
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from bench_record import describe_commit, describe_machine
from piccolo.engine.base import Engine

from schemas.core import MembershipRole
from server.db.engine import open_database
from server.db.migrate import migrate
from server.db.tables import Person
from server.demo.city import City
from server.demo.generate import generate_city
from server.demo.load import load_city
from server.demo.progress import TextProgress
from server.settings import load_settings
from server.sync_store import seed_sync_state
from server.timetable import all_timetable_writes

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Demo city load"
SECTION_INTRO = """\
`scripts/bench_demo_load.py` generates the demo city (`server/demo/`) and loads it through the
drivers' bulk paths (sqlite3 `executemany`, asyncpg binary `COPY`) into a fresh, migrated SQLite
file and a fresh PostgreSQL database. Requirement: the full-scale city (160,000 pupils) is
generated and loaded in under 5 minutes on a 2-core machine, on each backend. Each run appends
an entry below.
"""
LIMIT_SECONDS = 300.0
DEFAULT_ADMIN_URL = os.environ.get(
    "REPPU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True, slots=True)
class Result:
    backend: str
    seconds: float
    rows: int
    version: str
    size_bytes: int | None
    sync_seconds: float
    """Writing the sync state (change log, partition heads) of the loaded timetable."""


async def _migrate_and_load(
    engine: Engine[Any], city: City, progress: TextProgress
) -> tuple[dict[str, int], float, float]:
    """Migrate, load the city, then write its timetable's sync state as ``reppu demo`` does;
    returns the rows per table, the load's seconds and the sync state's seconds."""
    await migrate(quiet=True)
    started = time.perf_counter()
    counts = await load_city(engine, city, progress)
    loaded = time.perf_counter()
    assert await Person.count().run() == counts["person"]
    synced = time.perf_counter()
    await seed_sync_state(engine, await all_timetable_writes(), progress)
    return counts, loaded - started, time.perf_counter() - synced


async def _load_sqlite(city: City, progress: TextProgress) -> Result:
    data_dir = Path(tempfile.mkdtemp(prefix="reppu-bench-"))
    try:
        path = data_dir / "demo.sqlite3"
        settings = load_settings(
            {"REPPU_DATA_DIR": str(data_dir), "REPPU_DATABASE_URL": f"sqlite:///{path}"}
        )
        async with open_database(settings) as engine:
            counts, seconds, sync_seconds = await _migrate_and_load(engine, city, progress)
        size = sum(p.stat().st_size for p in data_dir.glob("demo.sqlite3*"))
        return Result(
            "SQLite", seconds, sum(counts.values()), sqlite3.sqlite_version, size, sync_seconds
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def _load_postgres(city: City, progress: TextProgress, admin_url: str) -> Result:
    name = f"reppu_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_url, timeout=10)
    try:
        version = str(await admin.fetchval("SHOW server_version"))
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    data_dir = Path(tempfile.mkdtemp(prefix="reppu-bench-"))
    try:
        url = admin_url.rsplit("/", 1)[0] + "/" + name
        settings = load_settings({"REPPU_DATA_DIR": str(data_dir), "REPPU_DATABASE_URL": url})
        async with open_database(settings) as engine:
            counts, seconds, sync_seconds = await _migrate_and_load(engine, city, progress)
            size = await Person.raw("SELECT pg_database_size(current_database()) AS size").run()
        return Result(
            "PostgreSQL",
            seconds,
            sum(counts.values()),
            version,
            int(size[0]["size"]),
            sync_seconds,
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        admin = await asyncpg.connect(admin_url, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def _entry(
    args: argparse.Namespace,
    city: City,
    generate_seconds: float,
    results: list[Result],
    peak_rss_kib: int,
) -> str:
    counts = city.counts()
    total = sum(counts.values())
    command = (
        f"`.venv/bin/python scripts/bench_demo_load.py --pupils {args.pupils} --seed {args.seed}`"
    )
    lines = [
        f"### {dt.date.today().isoformat()}: {args.pupils:,} pupils, seed {args.seed}",
        "",
        f"- Command: {command} (school year of {city.today.isoformat()})",
        f"- Commit: {describe_commit()}",
        f"- Machine: {describe_machine()}; Python {platform.python_version()}",
        f"- People: {_people(city)}",
        f"- Generation: {generate_seconds:.1f} s for {total:,} rows; "
        f"peak memory of the whole run {peak_rss_kib / 1024**2:.2f} GiB",
        "",
        "| table | rows |",
        "| --- | ---: |",
        *(f"| {table} | {count:,} |" for table, count in counts.items() if count),
        f"| **total** | **{total:,}** |",
        "",
        "| backend | load (s) | rows/s | sync state (s) | generate + load + sync state (s) "
        "| database size | under 5 min |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        both = generate_seconds + r.seconds + r.sync_seconds
        size = f"{r.size_bytes / 1024**2:,.0f} MiB" if r.size_bytes else "-"
        lines.append(
            f"| {r.backend} {r.version} | {r.seconds:.1f} | {r.rows / r.seconds:,.0f} | "
            f"{r.sync_seconds:.1f} | {both:.1f} | {size} | "
            f"{'yes' if both < LIMIT_SECONDS else '**no**'} |"
        )
    return "\n".join(lines) + "\n"


def _people(city: City) -> str:
    pupils = {m[2] for m in city.membership if m[3] == MembershipRole.PUPIL}
    guardians = {g[1] for g in city.guardianship}
    staff = {r[1] for r in city.staff_role}
    return f"{len(pupils):,} pupils, {len(guardians):,} guardians, {len(staff):,} staff"


def _record(entry: str) -> None:
    """Insert the entry at the end of the "Demo city load" section, creating what is missing."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    if SECTION not in text:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n{SECTION_INTRO}"
    start = text.index(SECTION) + len(SECTION)
    following = text.find("\n## ", start)
    end = len(text) if following == -1 else following + 1
    before, after = text[:end].rstrip("\n"), text[end:]
    text = f"{before}\n\n{entry}" + (f"\n{after}" if after else "")
    BENCHMARKS.parent.mkdir(parents=True, exist_ok=True)
    BENCHMARKS.write_text(text)


async def _main(args: argparse.Namespace) -> int:
    progress = TextProgress()
    today = dt.date.fromisoformat(args.today) if args.today else dt.date.today()
    print(f"Generating the demo city: {args.pupils:,} pupils, seed {args.seed}, {today}.")
    started = time.perf_counter()
    city = generate_city(pupils=args.pupils, seed=args.seed, today=today, progress=progress)
    generate_seconds = time.perf_counter() - started
    print(f"Generated {sum(city.counts().values()):,} rows in {generate_seconds:.1f} s.")
    results: list[Result] = []
    if "sqlite" in args.backends:
        print("Loading into a fresh SQLite file.")
        results.append(await _load_sqlite(city, progress))
    if "postgres" in args.backends:
        print("Loading into a fresh PostgreSQL database.")
        results.append(await _load_postgres(city, progress, args.postgres_admin_url))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    entry = _entry(args, city, generate_seconds, results, peak)
    print()
    print(entry)
    if not args.no_record:
        _record(entry)
        print(f"Recorded in {BENCHMARKS.relative_to(ROOT)}.")
    return (
        0
        if all(generate_seconds + r.seconds + r.sync_seconds < LIMIT_SECONDS for r in results)
        else 1
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pupils", type=int, default=160_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--today", help="ISO date whose school year to generate (default: today)")
    parser.add_argument(
        "--backends",
        type=lambda text: text.split(","),
        default=["sqlite", "postgres"],
        help="comma-separated: sqlite,postgres",
    )
    parser.add_argument("--postgres-admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--no-record", action="store_true", help="do not touch docs/")
    return asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
