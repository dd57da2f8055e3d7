"""What counting requests for ``/metrics`` costs per request, side by side in one run.

Two apps on one SQLite file, one without ``REPPU_METRICS_TOKEN`` (no request middleware) and
one with it, are called straight through ASGI (no sockets, no HTTP client, so that the
difference is not lost in their cost) on a route that touches no database
(``GET /auth/providers``: public, read from the settings), in alternating rounds. The
figure is the median CPU time per request of each (this process's, so that other processes
on the shared machine count for little), and their ratio.

    .venv/bin/python scripts/bench_metrics.py [--requests 20000] [--rounds 7] [--record]

``--record`` appends the figures to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.bench_record import describe_commit, describe_machine
from server.app import create_app
from server.db.engine import open_database
from server.db.migrate import migrate
from server.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
PATH = "/auth/providers"


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"reppu.test")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _requests(app: Any, count: int) -> float:
    """CPU seconds per request over ``count`` requests."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    # CPU time of this process, not the wall clock: the machine is shared, and other
    # processes' load would otherwise be most of the difference.
    started = time.process_time()
    for _ in range(count):
        await app(_scope(), receive, send)
    elapsed = time.process_time() - started
    assert set(statuses) == {200}, set(statuses)
    return elapsed / count


async def measure(requests: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings({"REPPU_DATA_DIR": folder, "REPPU_RUN_WORKER": "false"})
        async with open_database(settings) as engine:
            await migrate(quiet=True)
            off = create_app(settings, engine=engine)
            on = create_app(dataclasses.replace(settings, metrics_token="m" * 32), engine=engine)
            await _requests(off, 2000)  # warm both up
            await _requests(on, 2000)
            times: dict[str, list[float]] = {"off": [], "on": []}
            for _ in range(rounds):
                for name, app in (("off", off), ("on", on)):
                    times[name].append(await _requests(app, requests))
    off_us = statistics.median(times["off"]) * 1e6
    on_us = statistics.median(times["on"]) * 1e6
    return {"off_us": off_us, "on_us": on_us, "ratio": on_us / off_us}


def _verdict(figures: dict[str, float]) -> str:
    extra = figures["on_us"] - figures["off_us"]
    if abs(figures["ratio"] - 1) < 0.03:
        return (
            f"The two differ by {extra:+.1f} µs, within this run's noise: counting costs "
            "too little to measure here on a request that does nothing else."
        )
    return (
        f"Counting adds {extra:.1f} µs of CPU to a request that does nothing else; a real "
        "request (a pull, a push) costs hundreds of µs to milliseconds, so its share is "
        "smaller there."
    )


def record(figures: dict[str, float], requests: int, rounds: int) -> None:
    load = os.getloadavg()
    entry = f"""
## Metrics: what counting a request costs

`scripts/bench_metrics.py` calls two apps straight through ASGI (no sockets, no client) on
`GET {PATH}` (public, read from the settings, no database): one without
`REPPU_METRICS_TOKEN` (no request middleware, no `/metrics`), one with it. {rounds}
alternating rounds of {requests:,} requests each; the medians of this process's CPU time
per request.

- Command: `.venv/bin/python scripts/bench_metrics.py --requests {requests} --rounds {rounds}
  --record`
- Date: {dt.date.today().isoformat()}; commit {describe_commit()}; {describe_machine()};
  load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (the machine was shared).

| | CPU µs per request | of the app without metrics |
| --- | ---: | ---: |
| metrics off (the default) | {figures["off_us"]:.1f} | 100 % |
| metrics on | {figures["on_us"]:.1f} | {figures["ratio"] * 100:.0f} % |

{_verdict(figures)} With metrics off (the default) nothing is counted per request.
"""
    path = ROOT / "docs" / "benchmarks.md"
    path.write_text(path.read_text("utf-8").rstrip() + "\n" + entry, "utf-8")
    print(f"recorded in {path.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.requests, args.rounds))
    print(
        f"metrics off {figures['off_us']:.1f} CPU µs/request, on {figures['on_us']:.1f} "
        f"CPU µs/request ({figures['ratio'] * 100:.0f} %)"
    )
    if args.record:
        record(figures, args.requests, args.rounds)


if __name__ == "__main__":
    main()
