"""The PWA's start-up figures: bytes and time to a pupil's timetable on screen.

Starts ``reppu serve`` (uvicorn, one worker) on a fresh SQLite demo city, living on a school
day at 09:00 in Helsinki (libfaketime, as the browser tests do) so that the pupil has lessons,
and drives Debian's Chromium through Playwright at phone size (360x740):

- **cold start**: an empty profile (no cache, no service worker, no IndexedDB), the page
  throttled to Chromium DevTools' "Slow 3G" (``Network.emulateNetworkConditions``: 400 ms
  latency, 400 kbit/s down and up): open ``/``, log in as ``demo-pupil`` (typed instantly),
  until the first lesson of today is on screen. Bytes: every byte the page received and sent
  (DevTools' encoded lengths, headers included), and separately what the service worker
  fetched into its cache meanwhile (its own fetches are not throttled by the page's
  emulation; they do not hold up the first paint).
- **warm start offline**: the same profile with the network off: open ``/`` until the
  timetable is on screen (the shell from the worker's cache, the lessons from IndexedDB).
- **warm start on Slow 3G**: the same, online and throttled: the timetable is drawn from
  IndexedDB before the pull (in the background) answers.

Each run appends a dated entry to the "PWA start-up" section of docs/benchmarks.md
(``--no-record``: print only). Needs /usr/bin/chromium and libfaketime (``apt-get install
chromium faketime``).

    .venv/bin/python scripts/bench_pwa.py [--pupils 2000] [--runs 5] [--no-record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_record import describe_commit, describe_machine

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
REPPU = [sys.executable, "-m", "server.cli"]
CHROMIUM = "/usr/bin/chromium"
FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SLOW_3G = {
    "offline": False,
    "latency": 400,
    "downloadThroughput": 400_000 / 8,
    "uploadThroughput": 400_000 / 8,
}
HELSINKI = ZoneInfo("Europe/Helsinki")
SECTION = "## PWA start-up"
INTRO = (
    "Bytes and time from opening the app to a pupil's timetable on screen, in Debian's Chromium "
    'at phone size, the page throttled to DevTools\' "Slow 3G" (400 ms, 400 kbit/s): a cold '
    "start (an empty profile, logging in) and warm starts (offline; on Slow 3G). "
    "`scripts/bench_pwa.py` measures and appends an entry.\n"
)


def say(text: str) -> None:
    print(f"bench_pwa: {text}", file=sys.stderr, flush=True)


def school_day_morning() -> dt.datetime:
    local = dt.datetime.now(dt.UTC).astimezone(HELSINKI)
    day = local.date() + dt.timedelta(days=1)
    while day.isoweekday() > 5:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(9, 0), HELSINKI).astimezone(dt.UTC)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Traffic:
    """Bytes one CDP session saw: received (encoded, headers included) and sent."""

    def __init__(self, cdp: Any) -> None:
        self.received: dict[str, int] = {}
        self.finished: dict[str, int] = {}
        self.sent = 0
        self.from_worker = 0
        self.requests = 0
        self.started: dict[str, tuple[str, float]] = {}
        self.took: dict[str, float] = {}
        """Seconds from sending to the last byte, by path (the last request of each path)."""
        cdp.on("Network.requestWillBeSent", self._request)
        cdp.on("Network.dataReceived", self._data)
        cdp.on("Network.loadingFinished", self._finished)
        cdp.on("Network.responseReceived", self._response)

    def _request(self, event: dict[str, Any]) -> None:
        self.requests += 1
        request = event["request"]
        path = "/" + request["url"].split("/", 3)[-1].split("?")[0]
        self.started[event["requestId"]] = (path, float(event["timestamp"]))
        head = len(request["method"]) + len(request["url"]) + 12
        head += sum(len(k) + len(str(v)) + 4 for k, v in request.get("headers", {}).items())
        self.sent += head + len(request.get("postData", "") or "")

    def _data(self, event: dict[str, Any]) -> None:
        rid = event["requestId"]
        self.received[rid] = self.received.get(rid, 0) + int(event.get("encodedDataLength", 0))

    def _finished(self, event: dict[str, Any]) -> None:
        self.finished[event["requestId"]] = int(event["encodedDataLength"])
        if event["requestId"] in self.started:
            path, at = self.started[event["requestId"]]
            self.took[path] = float(event["timestamp"]) - at

    def _response(self, event: dict[str, Any]) -> None:
        if event["response"].get("fromServiceWorker"):
            self.from_worker += 1

    @property
    def bytes_in(self) -> int:
        """Finished requests by their total; a stream still open (the live stream) by what
        arrived of it so far."""
        open_streams = sum(n for rid, n in self.received.items() if rid not in self.finished)
        return sum(self.finished.values()) + open_streams


def start_server(folder: Path, pupils: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    offset = int((school_day_morning() - dt.datetime.now(dt.UTC)).total_seconds())
    env = {
        **os.environ,
        "REPPU_DATA_DIR": str(folder),
        "REPPU_PORT": str(port),
        "REPPU_WORKERS": "1",
        "LD_PRELOAD": FAKETIME,
        "FAKETIME": f"{offset:+d}",
        "DONT_FAKE_MONOTONIC": "1",
    }
    env.pop("REPPU_DATABASE_URL", None)
    for args in (["migrate"], ["demo", "--pupils", str(pupils)]):
        say(" ".join(["reppu", *args]))
        subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            [*REPPU, *args], env=env, cwd=ROOT, check=True, capture_output=True
        )
    server = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [*REPPU, "serve", "--no-access-log"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return server, base
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("reppu serve did not start")
        time.sleep(0.2)


def new_context(browser: Any, base: str, fake_now: dt.datetime) -> Any:
    context = browser.new_context(
        viewport={"width": 360, "height": 740},
        is_mobile=True,
        has_touch=True,
        locale="fi-FI",
        timezone_id="Europe/Helsinki",
        base_url=base,
    )
    context.clock.install(time=fake_now)
    context.set_default_timeout(120_000)
    return context


def throttled(context: Any, page: Any, conditions: dict[str, Any] | None) -> Traffic:
    cdp = context.new_cdp_session(page)
    traffic = Traffic(cdp)
    cdp.send("Network.enable")
    if conditions:
        cdp.send("Network.emulateNetworkConditions", conditions)
    return traffic


def one_run(browser: Any, base: str, offset: dt.timedelta) -> dict[str, float]:
    """A cold start, a warm start offline and a warm start on Slow 3G in one fresh profile."""
    context = new_context(browser, base, dt.datetime.now(dt.UTC) + offset)

    page = context.new_page()
    cold = throttled(context, page, SLOW_3G)
    started = time.perf_counter()
    page.goto("/")
    page.locator("input[name=username]").wait_for()
    form_at = time.perf_counter() - started
    form_bytes = cold.bytes_in
    page.locator("input[name=username]").fill("demo-pupil")
    page.locator("input[name=password]").fill("reppu-demo")
    page.locator("form button[type=submit]").click()
    page.locator("#main li.lesson").first.wait_for()
    cold_s = time.perf_counter() - started
    cold_in, cold_out, cold_requests = cold.bytes_in, cold.sent, cold.requests
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    shell = page.evaluate(
        # The shell's cache, whatever its version (sw.js's CACHE; it was 'reppu-shell-v1' here
        # and read 0 bytes once the worker's went to v2).
        "caches.keys().then(async names => {"
        " const name = names.find(n => n.startsWith('reppu-shell-'));"
        " if (!name) return 0; const c = await caches.open(name); let n = 0;"
        " for (const k of await c.keys()) n += (await (await c.match(k)).arrayBuffer()).byteLength;"
        " return n; })"
    )
    page.close()

    context.set_offline(True)
    page = context.new_page()
    offline = throttled(context, page, None)
    started = time.perf_counter()
    page.goto("/")
    page.locator("#main li.lesson").first.wait_for()
    offline_s = time.perf_counter() - started
    offline_in = offline.bytes_in
    page.close()

    context.set_offline(False)
    page = context.new_page()
    warm = throttled(context, page, SLOW_3G)
    started = time.perf_counter()
    page.goto("/")
    page.locator("#main li.lesson").first.wait_for()
    warm_s = time.perf_counter() - started
    page.wait_for_timeout(3000)  # let the background pull finish, to count its bytes
    page.close()
    context.close()
    return {
        "form_s": form_at,
        "form_bytes": form_bytes,
        "cold_s": cold_s,
        "cold_in": cold_in,
        "cold_out": cold_out,
        "cold_requests": cold_requests,
        "login_s": cold.took.get("/auth/login", 0.0),
        "me_s": cold.took.get("/me", 0.0),
        "pull_s": cold.took.get("/sync/pull", 0.0),
        "shell_cached": shell,
        "offline_s": offline_s,
        "offline_in": offline_in,
        "offline_worker": offline.from_worker,
        "offline_requests": offline.requests,
        "warm_s": warm_s,
        "warm_in": warm.bytes_in,
    }


def entry(args: argparse.Namespace, runs: list[dict[str, float]], chromium: str) -> str:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    def spread(key: str, unit: str, scale: float = 1.0, digits: int = 2) -> str:
        values = ", ".join(f"{r[key] * scale:.{digits}f}" for r in runs)
        return f"{med(key) * scale:.{digits}f} {unit} (runs: {values})"

    load = os.getloadavg()
    command = f".venv/bin/python scripts/bench_pwa.py --pupils {args.pupils} --runs {args.runs}"
    return "\n".join(
        [
            f"### {dt.date.today().isoformat()}: {args.pupils:,} pupils, demo-pupil",
            "",
            f"- Command: `{command}`",
            f"- Commit: {describe_commit()}",
            f"- Machine: {describe_machine()}; Python {platform.python_version()}; {chromium}",
            f"- Load average when the run started: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} "
            "(the machine is shared)",
            "- Server: `reppu serve --workers 1` (uvicorn) on SQLite, brotli for answers over "
            "512 bytes; the page throttled to 400 ms latency, 400 kbit/s down and up",
            "",
            "| what | median |",
            "| --- | --- |",
            f"| cold start: open `/` until the login form is on screen | {spread('form_s', 's')} |",
            "| cold start: bytes until the login form | "
            f"{spread('form_bytes', 'KB', 1 / 1000, 1)} |",
            "| cold start: open `/`, log in, until today's lessons are on screen | "
            f"{spread('cold_s', 's')} |",
            "| cold start: bytes the page received until then (headers included) | "
            f"{spread('cold_in', 'KB', 1 / 1000, 1)} |",
            "| cold start: bytes the page sent until then (estimated from the requests) | "
            f"{spread('cold_out', 'KB', 1 / 1000, 1)} |",
            f"| cold start: requests until then | {med('cold_requests'):.0f} |",
            "| of which: `POST /auth/login`, sent to last byte (Argon2 on the server) | "
            f"{spread('login_s', 's')} |",
            f"| of which: `GET /me`, beside the first pull | {spread('me_s', 's')} |",
            "| of which: the first `POST /sync/pull` (one page: the pupil's partitions) | "
            f"{spread('pull_s', 's')} |",
            "| the app shell the service worker cached (uncompressed, fetched unthrottled "
            f"beside the page) | {spread('shell_cached', 'KB', 1 / 1000, 1)} |",
            "| warm start offline: open `/` until today's lessons are on screen | "
            f"{spread('offline_s', 's')} |",
            "| warm start offline: bytes from the network | "
            f"{med('offline_in'):.0f} (every one of {med('offline_requests'):.0f} requests "
            "answered by the service worker) |",
            "| warm start on Slow 3G: open `/` until today's lessons are on screen | "
            f"{spread('warm_s', 's')} |",
            "| warm start on Slow 3G: bytes received in its first 3 s (the pull and the live "
            f"stream; the shell is the worker's) | {spread('warm_in', 'KB', 1 / 1000, 1)} |",
        ]
    )


def record(text: str) -> None:
    """Append ``text`` at the end of the PWA section, creating the section if missing."""
    body = BENCHMARKS.read_text()
    if f"\n{SECTION}\n" not in body:
        body = body.rstrip("\n") + f"\n\n{SECTION}\n\n{INTRO}"
    start = body.index(f"\n{SECTION}\n") + len(SECTION) + 2
    following = body.find("\n## ", start)
    end = len(body) if following == -1 else following + 1
    before, after = body[:end].rstrip("\n"), body[end:]
    BENCHMARKS.write_text(f"{before}\n\n{text}\n" + (f"\n{after}" if after else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pupils", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    for needed in (CHROMIUM, FAKETIME):
        if not Path(needed).exists():
            say(f"needs {needed}: apt-get install -y chromium faketime")
            return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="reppu-bench-pwa-") as folder:
        fake = school_day_morning()
        offset = fake - dt.datetime.now(dt.UTC)
        server, base = start_server(Path(folder), args.pupils)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                chromium = f"Chromium {browser.version}"
                runs = []
                for n in range(args.runs):
                    runs.append(one_run(browser, base, offset))
                    say(f"run {n + 1}: {runs[-1]}")
                browser.close()
        finally:
            os.killpg(server.pid, signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
    text = entry(args, runs, chromium)
    print(text)
    if not args.no_record:
        record(text)
        say(f"recorded in {BENCHMARKS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
