"""Benchmark: the demo city exported as OneRoster 1.2 CSV and imported into fresh databases.

The demo city (``--pupils``, default the full 160,000) is generated and bulk-loaded into a
scratch SQLite file, exported with ``reppu export oneroster`` (a zip), and that zip is
imported with ``reppu import oneroster`` into a fresh SQLite file and a fresh PostgreSQL
database (created next to the admin database of ``--postgres-admin-url`` and dropped
afterwards). Each import is one transaction: parsing, planning, the rows, their
``external_ref`` rows and the sync records of every group and roster. The same zip is then
imported a second time, which must change nothing. The figures are appended to
``docs/benchmarks.md`` as a dated entry of its "OneRoster import" section (``--no-record``
skips that).

Run: ``.venv/bin/python scripts/bench_oneroster.py [--pupils 160000] [--seed 1]``
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

import asyncpg
from bench_record import describe_commit, describe_machine
from benchlib import BENCHMARKS, DEFAULT_ADMIN_URL, ROOT, record_entry

from server.db.engine import open_database
from server.db.migrate import migrate
from server.demo.generate import generate_city
from server.demo.load import load_city
from server.demo.progress import TextProgress
from server.oneroster import export_oneroster, import_oneroster, parse_files, read_files
from server.oneroster.apply import Summary
from server.settings import Settings, load_settings

SECTION = "## OneRoster import"
SECTION_INTRO = """\
`scripts/bench_oneroster.py` exports the demo city as a OneRoster 1.2 CSV bulk set
(`reppu export oneroster`, a zip) and imports it (`reppu import oneroster`) into a fresh SQLite
file and a fresh PostgreSQL database, each import one transaction through the sync write path
(`docs/oneroster.md`); then it imports the same zip again, which must change nothing. Each run
appends an entry below.
"""


@dataclass(frozen=True, slots=True)
class Result:
    backend: str
    version: str
    parse_seconds: float
    first: Summary
    again: Summary


def _sqlite_settings(data_dir: Path, name: str) -> Settings:
    path = data_dir / f"{name}.sqlite3"
    return load_settings(
        {"REPPU_DATA_DIR": str(data_dir), "REPPU_DATABASE_URL": f"sqlite:///{path}"}
    )


async def _export(
    args: argparse.Namespace, data_dir: Path, zip_path: Path
) -> tuple[dict[str, int], float]:
    progress = TextProgress()
    today = dt.date.today()
    print(f"Generating the demo city: {args.pupils:,} pupils, seed {args.seed}, {today}.")
    city = generate_city(pupils=args.pupils, seed=args.seed, today=today, progress=progress)
    async with open_database(_sqlite_settings(data_dir, "source")) as engine:
        await migrate(quiet=True)
        await load_city(engine, city, progress)
        print("Exporting it as OneRoster 1.2 CSV.")
        started = time.perf_counter()
        counts = await export_oneroster(engine, zip_path, progress=progress)
        return counts, time.perf_counter() - started


async def _import_twice(settings: Settings, zip_path: Path, backend: str, version: str) -> Result:
    progress = TextProgress()
    async with open_database(settings) as engine:
        await migrate(quiet=True)
        started = time.perf_counter()
        batch = parse_files(read_files(zip_path))
        parse_seconds = time.perf_counter() - started
        first = await import_oneroster(engine, batch, progress=progress)
        print(first.describe())
        batch = parse_files(read_files(zip_path))
        again = await import_oneroster(engine, batch, progress=progress)
        print(again.describe())
    if again.changed:
        raise SystemExit(f"{backend}: importing the same files again changed {again.changed} rows")
    return Result(backend, version, parse_seconds, first, again)


async def _postgres(admin_url: str, zip_path: Path, data_dir: Path) -> Result:
    name = f"reppu_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_url, timeout=10)
    try:
        version = str(await admin.fetchval("SHOW server_version"))
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        url = admin_url.rsplit("/", 1)[0] + "/" + name
        settings = load_settings({"REPPU_DATA_DIR": str(data_dir), "REPPU_DATABASE_URL": url})
        return await _import_twice(settings, zip_path, "PostgreSQL", version)
    finally:
        admin = await asyncpg.connect(admin_url, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def _entry(
    args: argparse.Namespace,
    counts: dict[str, int],
    zip_bytes: int,
    export_seconds: float,
    results: list[Result],
    peak_rss_kib: int,
) -> str:
    rows = sum(counts.values())
    command = (
        f"`.venv/bin/python scripts/bench_oneroster.py --pupils {args.pupils} --seed {args.seed}`"
    )
    lines = [
        f"### {dt.date.today().isoformat()}: {args.pupils:,} pupils, seed {args.seed}",
        "",
        f"- Command: {command}",
        f"- Commit: {describe_commit()}",
        f"- Machine: {describe_machine()}; Python {platform.python_version()}; load average "
        f"{args.load_before:.1f} when the run began (other work on the same cores slows it)",
        f"- Export (from SQLite): {export_seconds:.1f} s for {rows:,} CSV rows "
        f"({rows / export_seconds:,.0f} rows/s), a zip of {zip_bytes / 1024**2:,.1f} MiB; "
        f"peak memory of the whole run {peak_rss_kib / 1024**2:.2f} GiB",
        "",
        "| file | rows |",
        "| --- | ---: |",
        *(f"| {name} | {count:,} |" for name, count in counts.items()),
        f"| **total** | **{rows:,}** |",
        "",
        "| backend | import into an empty database (s) | rows/s | of it parsing (s) "
        "| sync records | the same files again, parsing not counted (s) | changed by the second |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        seconds = r.first.seconds + r.parse_seconds
        lines.append(
            f"| {r.backend} {r.version} | {seconds:.1f} | {rows / seconds:,.0f} | "
            f"{r.parse_seconds:.1f} | {r.first.sync_records:,} | {r.again.seconds:.1f} | "
            f"{r.again.changed} |"
        )
    return "\n".join(lines) + "\n"


async def _main(args: argparse.Namespace) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="reppu-bench-oneroster-"))
    try:
        zip_path = data_dir / "city.zip"
        counts, export_seconds = await _export(args, data_dir, zip_path)
        results: list[Result] = []
        if "sqlite" in args.backends:
            print("Importing into a fresh SQLite file.")
            settings = _sqlite_settings(data_dir, "imported")
            results.append(
                await _import_twice(settings, zip_path, "SQLite", sqlite3.sqlite_version)
            )
        if "postgres" in args.backends:
            print("Importing into a fresh PostgreSQL database.")
            results.append(await _postgres(args.postgres_admin_url, zip_path, data_dir))
        zip_bytes = zip_path.stat().st_size
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    entry = _entry(args, counts, zip_bytes, export_seconds, results, peak)
    print()
    print(entry)
    if not args.no_record:
        record_entry(SECTION, SECTION_INTRO, entry)
        print(f"Recorded in {BENCHMARKS.relative_to(ROOT)}.")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pupils", type=int, default=160_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--backends",
        type=lambda text: text.split(","),
        default=["sqlite", "postgres"],
        help="comma-separated: sqlite,postgres",
    )
    parser.add_argument("--postgres-admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--no-record", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    args.load_before = os.getloadavg()[0]
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
