"""Benchmark: live streams (``GET /sync/live``) held at once, on SQLite.

Issue 16: "20,000 held with at most 50 KB of server memory each, opened at 1,000 a second or
faster, a poke reaching all of them with p95 under 1 s", with 2 server workers on SQLite.

1. A fresh SQLite file with the demo city (``--pupils``), and a bearer token for each of
   ``--streams`` holders: the pupils of the first city, each once while there are enough
   (written straight into ``auth_token``, as the other scenarios do).
2. ``reppu serve --workers 2`` (uvicorn, real processes; the embedded delivery worker off,
   so that sending the poke's bulletin does not compete with the streams it is measured on).
3. The load generator: ``--clients`` processes of this script (``--client``), each holding
   its share of the streams on raw asyncio sockets (uvloop), one HTTP/1.1 request each, at
   most ``--in-flight`` opening at a time per process. A stream counts as open when its
   ``ready`` event arrives. Open rate: streams over first connect to last ``ready``.
4. Memory: the summed RSS of the server's processes (from ``/proc``), after a warm-up of a
   few streams opened and closed, and again after the streams were held for ``--hold``
   seconds; the difference over the streams is the server memory per stream. Server CPU
   (from ``/proc``) while they opened, per stream, and from the poke's push to the last poke,
   per poke: figures that other work on a shared machine disturbs less than the times.
5. The streams are held for ``--hold`` seconds (75: past every stream's first recheck of its
   token and partitions, a minute after it opened; keep-alives every 15 s), then
   the poke: the city's admin sends a bulletin to the city's pupils (``bulletin.send`` over
   ``POST /sync/push``); every stream reads the city's partition. Measured from just before
   the push is sent to each stream's ``poke`` event (p50, p95, max; the other worker hears of
   the change by polling the partition heads).

Every process started runs in its own process group and is stopped, and the temporary folder
removed, also on an error, Ctrl-C or SIGTERM. Only loopback traffic. The figures are appended
to ``docs/benchmarks.md`` as a dated entry of its "Live streams" section (``--no-record``
skips that; ``--quick`` never records).

Run: ``.venv/bin/python scripts/bench_live.py [--pupils 160000] [--streams 20000]``
Smoke run (2,000 pupils, 2,000 streams): ``.venv/bin/python scripts/bench_live.py --quick``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SECTION = "## Live streams"
SECTION_INTRO = """\
`scripts/bench_live.py` (also run by `scripts/bench all`) holds many `GET /sync/live` streams
at once against `reppu serve --workers 2` on SQLite with the demo city, from load-generator
processes on raw asyncio sockets on the same cores, and measures the server memory each stream
costs (summed RSS of the server's processes, from `/proc`), how fast streams open (to their
`ready` event), and how long a poke takes to reach every stream after the city's admin sends a
bulletin to the city's pupils. Target (issue 16): 20,000 held with at most 50 KB each, opened
at 1,000 a second or faster, poke p95 under 1 s. Each run appends an entry below.
"""


# -- the load generator: one process's share of the streams ---------------------------------


class _Stream(asyncio.Protocol):
    """One held stream: the request is written on connect; ``ready`` and the first ``poke``
    after it are timed (``time.monotonic``, which every process on the machine shares)."""

    def __init__(self, request: bytes, gen: _Generator) -> None:
        self.request = request
        self.gen = gen
        self.tail = b""
        self.ready = False
        self.poked = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] - uvloop's is no subclass
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        buf = self.tail + data
        if not self.ready:
            if buf.startswith(b"HTTP/1.1 ") and not buf.startswith(b"HTTP/1.1 200"):
                self.gen.failed(self, buf[:60].decode(errors="replace"))
                return
            at = buf.find(b"event: ready")
            if at < 0:
                self.tail = buf[-64:]
                return
            self.ready = True
            buf = buf[at + 12 :]
            self.gen.opened(self)
        if not self.poked and b"event: poke" in buf:
            self.poked = True
            self.gen.poke(self)
        self.tail = buf[-16:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready:
            self.gen.failed(self, f"closed before ready ({exc!r})")
        elif not self.gen.closing:
            self.gen.lost += 1


@dataclass
class _Generator:
    count: int
    first_start: float = 0.0
    last_ready: float = 0.0
    ready: int = 0
    fails: int = 0
    lost: int = 0
    first_error: str = ""
    pokes: list[float] = field(default_factory=list)
    closing: bool = False
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(256))
    all_open: asyncio.Event = field(default_factory=asyncio.Event)
    all_poked: asyncio.Event = field(default_factory=asyncio.Event)

    def _settled(self) -> None:
        self.slots.release()
        if self.ready + self.fails >= self.count:
            self.all_open.set()

    def opened(self, _: _Stream) -> None:
        self.ready += 1
        self.last_ready = time.monotonic()
        self._settled()

    def failed(self, stream: _Stream, why: str) -> None:
        if stream.ready or getattr(stream, "_failed", False):
            return
        stream._failed = True  # type: ignore[attr-defined]
        self.fails += 1
        self.first_error = self.first_error or why
        if stream.transport is not None:
            stream.transport.close()
        self._settled()

    def poke(self, _: _Stream) -> None:
        self.pokes.append(time.monotonic())
        if len(self.pokes) >= self.ready:
            self.all_poked.set()


def _emit(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def _client(host: str, port: int, tokens: list[str], in_flight: int) -> None:
    """Open a stream per token, say so, then report the pokes when asked (a line on stdin)."""
    loop = asyncio.get_running_loop()
    gen = _Generator(len(tokens), slots=asyncio.Semaphore(in_flight))
    streams: list[_Stream] = []
    gen.first_start = time.monotonic()
    for token in tokens:
        await gen.slots.acquire()
        request = (
            f"GET /sync/live HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
        stream = _Stream(request, gen)
        streams.append(stream)
        try:
            await loop.create_connection(lambda s=stream: s, host, port)  # type: ignore[misc]
        except OSError as exc:
            gen.failed(stream, repr(exc))
    await gen.all_open.wait()
    _emit(
        {
            "opened": gen.ready,
            "failed": gen.fails,
            "first_start": gen.first_start,
            "last_ready": gen.last_ready,
            "error": gen.first_error,
        }
    )
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    poked = asyncio.ensure_future(gen.all_poked.wait())
    line = asyncio.ensure_future(reader.readline())
    done, _ = await asyncio.wait({poked, line}, return_when=asyncio.FIRST_COMPLETED)
    if poked in done:
        _emit({"poked": True})
        await line
    gen.closing = True
    _emit({"pokes": gen.pokes, "missing": gen.ready - len(gen.pokes), "lost": gen.lost})
    for stream in streams:
        if stream.transport is not None:
            stream.transport.close()


def client_main(argv: list[str]) -> int:
    host, port, path, start, count, in_flight = argv
    tokens = Path(path).read_text().split()[int(start) : int(start) + int(count)]
    import gc

    gc.set_threshold(100_000, 20, 20)  # few objects die young here: keep the generator cheap
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(_client(host, int(port), tokens, int(in_flight)))
    return 0


# -- the run ------------------------------------------------------------------------------


@dataclass
class LiveRun:
    version: str
    pupils: int
    streams: int
    holders: int
    opened: int = 0
    failed: int = 0
    first_error: str = ""
    open_seconds: float = 0.0
    rss_before: int = 0
    rss_after: int = 0
    push_ms: float = 0.0
    poke_ms: list[float] = field(default_factory=list)
    missing: int = 0
    lost: int = 0
    load: float = 0.0
    open_cpu: float = 0.0
    """Server CPU seconds while the streams opened."""
    poke_cpu: float = 0.0
    """Server CPU seconds from the bulletin's push to the last poke."""

    @property
    def open_rate(self) -> float:
        return self.opened / self.open_seconds if self.open_seconds else 0.0

    @property
    def per_stream(self) -> float:
        return (self.rss_after - self.rss_before) / max(1, self.opened)


def server_cpu(leader: int) -> float:
    """CPU seconds (user + system) of every process in ``leader``'s process group so far."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == leader:
                total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def server_rss(leader: int) -> int:
    """Bytes of RSS of every process in ``leader``'s process group (the server's)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            pgid = int(stat.rsplit(")", 1)[1].split()[2])
            if pgid != leader:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            continue
    return total


_PUPILS_SQL = (
    "SELECT DISTINCT m.person AS person FROM membership m "
    "JOIN account a ON a.person = m.person "
    'JOIN school_group g ON g.id = m."group" '
    "JOIN organisation s ON s.id = g.school "
    "WHERE m.role = 'pupil' AND s.parent = {} ORDER BY m.person"
)
_ADMIN_SQL = (
    "SELECT a.person AS person, r.organisation AS city FROM account a "
    "JOIN staff_role r ON r.person = a.person AND r.role = 'admin' "
    "WHERE a.username = 'demo-admin'"
)


class _Clients:
    """The load-generator processes, each holding its share of the streams."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, base: str, tokens: Path, n: int, processes: int, in_flight: int) -> None:
        host, port = base.removeprefix("http://").split(":")
        share = -(-n // processes)
        for start in range(0, n, share):
            cmd = [sys.executable, __file__, "--client", host, port, str(tokens)]
            cmd += [str(start), str(min(share, n - start)), str(in_flight)]
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                start_new_session=True,
                limit=2**26,
            )
            self.procs.append(proc)

    async def read_all(self) -> list[dict[str, Any]]:
        lines = []
        for proc in self.procs:
            assert proc.stdout is not None
            line = await proc.stdout.readline()
            if not line:
                raise RuntimeError("a load generator exited early")
            lines.append(json.loads(line))
        return lines

    async def report(self) -> list[dict[str, Any]]:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(b"report\n")
            await proc.stdin.drain()
        found = []
        for proc in self.procs:
            assert proc.stdout is not None
            while True:
                data = json.loads(await proc.stdout.readline())
                if "pokes" in data:
                    found.append(data)
                    break
        return found

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        self.procs.clear()


async def run_live(args: argparse.Namespace, cleanup: Any) -> LiveRun:
    import httpx
    from bench_spike import spread
    from benchlib import fresh_database, mint_tokens, query, serve_reppu, wait_for_quiet

    from clients.python import ReppuClient

    folder = Path(tempfile.mkdtemp(prefix="reppu-bench-live-"))
    cleanup.folders.append(folder)
    fresh = await fresh_database(
        cleanup, "sqlite", folder, pupils=args.pupils, seed=args.seed, env_extra={}
    )
    admin = (await query(fresh, _ADMIN_SQL))[0]
    city = int(admin["city"])
    pupils = [int(r["person"]) for r in await query(fresh, _PUPILS_SQL, city)]
    holders = spread(pupils, args.streams)
    persons = [holders[i % len(holders)] for i in range(args.streams)]
    warm = min(100, args.streams)
    tokens = await mint_tokens(fresh, [*persons, *persons[:warm]], "bench live")
    admin_token = (await mint_tokens(fresh, [int(admin["person"])], "bench live admin"))[0]
    token_file = folder / "tokens.txt"
    token_file.write_text("\n".join(tokens) + "\n")
    served = await serve_reppu(
        cleanup,
        fresh,
        workers=args.workers,
        access_log=False,
        env_extra={"REPPU_RUN_WORKER": "0"},
    )
    result = LiveRun(fresh.version, args.pupils, args.streams, len(holders))
    clients = _Clients()
    try:
        # Warm-up: a few streams opened and closed, so that "before" holds what any server
        # that has served a stream holds (imports, caches, the hub's task).
        warmup = folder / "warm.txt"
        warmup.write_text("\n".join(tokens[args.streams :]) + "\n")
        await clients.start(served.base, warmup, warm, 1, args.in_flight)
        await clients.read_all()
        await clients.report()
        await clients.stop()
        await asyncio.sleep(2.0)
        result.load = os.getloadavg()[0]
        await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
        result.rss_before = server_rss(served.proc.pid)
        cpu0 = server_cpu(served.proc.pid)
        say_(f"server RSS before: {result.rss_before / 2**20:,.0f} MiB; opening {args.streams:,}")
        await clients.start(served.base, token_file, args.streams, args.clients, args.in_flight)
        opened = await clients.read_all()
        result.opened = sum(int(o["opened"]) for o in opened)
        result.failed = sum(int(o["failed"]) for o in opened)
        result.open_cpu = server_cpu(served.proc.pid) - cpu0
        result.first_error = next((o["error"] for o in opened if o["error"]), "")
        result.open_seconds = max(o["last_ready"] for o in opened) - min(
            o["first_start"] for o in opened
        )
        # Held past the first recheck of every stream (each checks its token and partitions
        # again a minute after it opened), keep-alives flowing: the steady state.
        say_(f"holding them for {args.hold:.0f} s")
        await asyncio.sleep(args.hold)
        result.rss_after = server_rss(served.proc.pid)
        say_(
            f"{result.opened:,} open ({result.failed:,} failed) in {result.open_seconds:.1f} s; "
            f"server RSS {result.rss_after / 2**20:,.0f} MiB"
        )
        async with httpx.AsyncClient(base_url=served.base, timeout=120.0) as http:
            admin_client = ReppuClient(http, admin_token)
            admin_client.queue(
                "bulletin.send",
                {
                    "audience": "municipality",
                    "audience_id": city,
                    "roles": ["pupils"],
                    "title": "Live streams",
                    "body": "A poke for every stream.",
                },
            )
            cpu0 = server_cpu(served.proc.pid)
            t0 = time.monotonic()
            answered = await admin_client.push()
            result.push_ms = (time.monotonic() - t0) * 1000
            if answered[0].get("status") != "applied":
                raise RuntimeError(f"the bulletin was not applied: {answered[0]}")
        waits = [
            asyncio.ensure_future(p.stdout.readline())  # type: ignore[union-attr]
            for p in clients.procs
        ]
        await asyncio.wait(waits, timeout=args.poke_wait)
        result.poke_cpu = server_cpu(served.proc.pid) - cpu0
        for w in waits:
            w.cancel()
        for data in await clients.report():
            result.poke_ms += [(t - t0) * 1000 for t in data["pokes"]]
            result.missing += int(data["missing"])
            result.lost += int(data["lost"])
    finally:
        await clients.stop()
    return result


def say_(message: str) -> None:
    from benchlib import say

    say(message)


def _ms(values: list[float], q: float) -> str:
    from benchlib import percentile

    v = percentile(values, q)
    return "-" if v != v else f"{v:,.0f} ms"


def entry(args: argparse.Namespace, r: LiveRun) -> str:
    from bench_record import describe_commit, describe_machine

    command = f"scripts/bench_live.py --pupils {args.pupils} --streams {args.streams}"
    kib = r.per_stream / 1024
    return "\n".join(
        [
            f"### {dt.date.today().isoformat()}: {r.streams:,} streams, {r.pupils:,} pupils, "
            f"{r.version}",
            "",
            f"- Command: `{command}` (or `scripts/bench all`)",
            f"- Commit: {describe_commit()}",
            f"- Machine: {describe_machine()}; Python {platform.python_version()}; load average "
            f"{r.load:.2f} before the streams opened (the machine is shared)",
            f"- Server: `reppu serve --workers {args.workers}`, access log off, delivery worker "
            f"off; {r.holders:,} pupils of the first city hold the streams; "
            f"{args.clients} load-generator processes, at most {args.in_flight} opening at a "
            f"time each; held {args.hold:.0f} s before the poke",
            "",
            "| streams held | server RSS per stream | opened per second | server CPU per open "
            "| poke p50 / p95 / max | server CPU per poke | failed / missed poke / lost |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {r.opened:,} of {r.streams:,} | {kib:,.1f} KiB "
            f"({r.rss_before / 2**20:,.0f} to {r.rss_after / 2**20:,.0f} MiB) | "
            f"{r.open_rate:,.0f} | {r.open_cpu / max(1, r.opened) * 1e3:.2f} ms | "
            f"{_ms(r.poke_ms, 50)} / {_ms(r.poke_ms, 95)} / {_ms(r.poke_ms, 100)} | "
            f"{r.poke_cpu / max(1, len(r.poke_ms)) * 1e6:,.0f} µs | "
            f"{r.failed} / {r.missing} / {r.lost} |",
            "",
            f"The bulletin's push took {r.push_ms:,.0f} ms."
            + (f" First failure: {r.first_error}." if r.first_error else ""),
            "",
        ]
    )


def main(argv: list[str]) -> int:
    if argv[:1] == ["--client"]:
        return client_main(argv[1:])
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    from benchlib import BENCHMARKS, record_entry, run_main, write_json

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pupils", type=int, default=160_000)
    parser.add_argument("--streams", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4, help="load-generator processes")
    parser.add_argument("--in-flight", type=int, default=200, help="opening at once, each")
    parser.add_argument("--poke-wait", type=float, default=60.0)
    parser.add_argument(
        "--hold", type=float, default=75.0, help="seconds held before the poke (past a recheck)"
    )
    parser.add_argument("--quiet-wait", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-record", dest="record", action="store_false")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.pupils = min(args.pupils, 2000)
        args.streams = min(args.streams, 2000)
        args.quiet_wait = min(args.quiet_wait, 3.0)
        args.hold = min(args.hold, 5.0)
        args.record = False
    found: list[LiveRun] = []

    async def body(cleanup: Any) -> int:
        found.append(await run_live(args, cleanup))
        return 0

    code = run_main("bench_live", body)
    if not found:
        return code or 2
    r = found[0]
    text = entry(args, r)
    print(text)
    if args.json:
        data = asdict(r)
        data.update(open_rate=r.open_rate, per_stream=r.per_stream, poke_ms=sorted(r.poke_ms))
        write_json(args.json, {"runs": [data]})
    if args.record and not r.failed and not r.missing:
        record_entry(SECTION, SECTION_INTRO, text, BENCHMARKS)
        say_(f"Recorded in {BENCHMARKS.relative_to(root)}.")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
