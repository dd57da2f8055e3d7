"""Benchmark: the peak memory of ``reppu import oneroster`` for the demo city, on SQLite.

The demo city (``--pupils``, default the full 160,000) is loaded with ``reppu demo`` into a
scratch SQLite file and exported with ``reppu export oneroster`` as a zip (or ``--zip`` names
one made before). Then, each in a child process of its own, whose peak resident set size is
read from ``wait4`` (``ru_maxrss``: the most memory it ever held): the zip is parsed alone
(``read_files`` and ``parse_files``, no database), and imported with ``reppu import
oneroster`` into a fresh, migrated SQLite file. ``--code DIR`` runs the code of another tree
(``git archive <commit> | tar -x -C DIR``), to measure before and after a change with the
same zip. The figures are appended to ``docs/benchmarks.md``, section "OneRoster import
memory" (``--no-record`` skips that).

Run: ``.venv/bin/python scripts/bench_oneroster_memory.py [--pupils 160000] [--zip city.zip]
[--code DIR] [--label TEXT]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_record import describe_commit, describe_machine
from benchlib import BENCHMARKS, ROOT, record_entry, say

SECTION = "## OneRoster import memory"
SECTION_INTRO = """\
`scripts/bench_oneroster_memory.py` exports the demo city as a OneRoster zip and measures, each
in a child process of its own, the peak resident memory (`ru_maxrss` from `wait4`) of parsing
the zip alone and of `reppu import oneroster` into a fresh SQLite file. `docs/oneroster.md`
says how the files are streamed. Each run appends an entry below.
"""

CLI = "import sys; from server.cli import main; sys.exit(main())"
PARSE = (
    "import sys; from pathlib import Path; "
    "from server.oneroster import parse_files, read_files; "
    "batch = parse_files(read_files(Path(sys.argv[1]))); "
    "print(sum(len(rows) for rows in batch.rows.values()), 'rows')"
)


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    peak_kib: int


def _child(args: list[str], code: Path, data_dir: Path, database: Path) -> Run:
    """Run ``python -c ...`` with ``code`` first on the path; its time and peak RSS."""
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "REPPU_DATA_DIR": str(data_dir),
        "REPPU_DATABASE_URL": f"sqlite:///{database}",
    }
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, *args], cwd=code, env=env)  # noqa: S603
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])}... exited with {child.returncode}")
    return Run(seconds, usage.ru_maxrss)  # KiB on Linux


def _export(args: argparse.Namespace, code: Path, data_dir: Path) -> Path:
    zip_path = data_dir / "city.zip"
    source = data_dir / "source.sqlite3"
    say(f"Loading the demo city ({args.pupils:,} pupils) and exporting it as OneRoster.")
    _child(["-c", CLI, "migrate"], code, data_dir, source)
    _child(["-c", CLI, "demo", "--pupils", str(args.pupils)], code, data_dir, source)
    _child(["-c", CLI, "export", "oneroster", str(zip_path)], code, data_dir, source)
    if args.keep_zip:
        shutil.copy(zip_path, args.keep_zip)
    return zip_path


def _entry(args: argparse.Namespace, zip_path: Path, load: float, parse: Run, imported: Run) -> str:
    command = f"`.venv/bin/python scripts/bench_oneroster_memory.py --pupils {args.pupils}`"
    gib = 1024 * 1024
    return "\n".join(
        [
            f"### {dt.date.today().isoformat()}: {args.pupils:,} pupils, SQLite",
            "",
            f"- Command: {command}",
            f"- Code: {args.label or describe_commit()}",
            f"- Machine: {describe_machine()}; Python {platform.python_version()}; load "
            f"average {load:.1f} when the run began (other work on the same cores)",
            f"- The zip: {zip_path.stat().st_size / 1024**2:,.1f} MiB",
            "",
            "| step | peak RSS | time (s) |",
            "| --- | ---: | ---: |",
            f"| parse the zip (no database) | {parse.peak_kib / gib:.2f} GiB | "
            f"{parse.seconds:.1f} |",
            f"| `reppu import oneroster` into a fresh SQLite file | "
            f"{imported.peak_kib / gib:.2f} GiB | {imported.seconds:.1f} |",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pupils", type=int, default=160_000)
    parser.add_argument("--zip", type=Path, help="import this zip instead of exporting one")
    parser.add_argument("--keep-zip", type=Path, help="keep the exported zip here")
    parser.add_argument("--code", type=Path, default=ROOT, help="the tree whose code runs")
    parser.add_argument("--label", help="what the code is, for the entry (default: the commit)")
    parser.add_argument("--no-record", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    code = args.code.resolve()
    data_dir = Path(tempfile.mkdtemp(prefix="reppu-bench-oneroster-memory-"))
    try:
        zip_path = args.zip.resolve() if args.zip else _export(args, code, data_dir)
        say("Parsing the zip alone.")
        parse = _child(["-c", PARSE, str(zip_path)], code, data_dir, data_dir / "unused.sqlite3")
        say("Importing it into a fresh SQLite file.")
        target = data_dir / "imported.sqlite3"
        _child(["-c", CLI, "migrate"], code, data_dir, target)
        imported = _child(["-c", CLI, "import", "oneroster", str(zip_path)], code, data_dir, target)
        entry = _entry(args, zip_path, load, parse, imported)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print()
    print(entry)
    if not args.no_record:
        record_entry(SECTION, SECTION_INTRO, entry)
        print(f"Recorded in {BENCHMARKS.relative_to(ROOT)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
