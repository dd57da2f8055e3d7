"""A real ``reppu serve`` and Debian's Chromium, driven by Playwright, for the PWA's tests.

Per test module: a SQLite data folder, ``reppu migrate``, ``reppu demo --pupils 500`` and
``reppu serve`` (uvicorn, one worker) on a free port. The server and the browser both live on
a school day at 09:00 in Helsinki (the next Monday-to-Friday from now), so roll call and
"today's timetable" mean something whatever day the tests run: the server under libfaketime
(a constant offset, ``faketime`` in Debian), the browser under Playwright's clock.

Screenshots (360x740, a phone) go to ``var/test-artefacts/browser/``.

Without ``/usr/bin/chromium`` (``scripts/test`` installs it as root) the browser tests are
skipped with a loud reason, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import time_machine

ROOT = Path(__file__).resolve().parents[2]
REPPU = [sys.executable, "-m", "server.cli"]
CHROMIUM = "/usr/bin/chromium"
FAKETIME_LIBRARY = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
ARTEFACTS = ROOT / "var" / "test-artefacts" / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 360, "height": 740}
PASSWORD = "reppu-demo"
HELSINKI = ZoneInfo("Europe/Helsinki")


def _missing(what: str) -> None:
    reason = f"browser tests need {what} (scripts/test installs it when run as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def real_now() -> dt.datetime:
    """The real clock, past the suite's frozen one (``tests/conftest.py``).

    The browser tests are the one place the suite starts from the real clock, on purpose:
    libfaketime moves the server's clock by a constant offset from the real one, and
    Chromium's network stack judges cookies (the OpenID provider's among them) by the real
    clock, so the server must live within days of it: on the next school day's morning."""
    return time_machine.escape_hatch.datetime.datetime.now(dt.UTC)


def school_day_morning(now: dt.datetime | None = None) -> dt.datetime:
    """09:00 in Helsinki on the next Monday-to-Friday after today (aware, UTC)."""
    local = (now or real_now()).astimezone(HELSINKI)
    day = local.date() + dt.timedelta(days=1)
    while day.isoweekday() > 5:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(9, 0), HELSINKI).astimezone(dt.UTC)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    base: str
    data_dir: Path
    fake_now: dt.datetime
    """The server's "now" when it started (the clock runs on from there)."""
    offset: dt.timedelta
    """The server's clock minus the real one."""
    env: dict[str, str] = field(default_factory=dict)
    """The environment ``reppu`` runs in here (its data folder, port and fake clock)."""
    process: subprocess.Popen[bytes] | None = None

    def reppu(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``reppu ARGS`` against this server's data folder, on its clock."""
        return subprocess.run(
            [*REPPU, *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=600
        )

    def start(self) -> None:
        """Start ``reppu serve`` and wait until it answers ``/health``."""
        log = (ARTEFACTS / f"server-{self.base.rsplit(':', 1)[1]}.log").open("a")
        self.process = subprocess.Popen(
            [*REPPU, "serve", "--no-access-log"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()  # the child keeps its own handle
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, "reppu serve exited early"
            assert time.monotonic() < deadline, "reppu serve did not answer within 60 s"
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop ``reppu serve`` (SIGINT, as an operator would), waiting for it to exit."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def now(self) -> dt.datetime:
        return real_now() + self.offset

    @property
    def today(self) -> dt.date:
        return self.fake_now.astimezone(HELSINKI).date()

    @property
    def database(self) -> Path:
        return self.data_dir / "reppu.sqlite3"

    def login(self, username: str) -> dict[str, Any]:
        answer = httpx.post(
            f"{self.base}/auth/login",
            json={"username": username, "password": PASSWORD, "device_name": "browser-test"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def call(self, token: str, method: str, path: str, body: Any = None) -> Any:
        answer = httpx.request(
            method,
            f"{self.base}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert answer.is_success, answer.text
        return answer.json() if answer.content else None

    def push(self, token: str, client_id: str, mutations: list[dict[str, Any]]) -> list[Any]:
        numbered = [
            {"id": i, "occurred_at": self.now().isoformat(), **m}
            for i, m in enumerate(mutations, start=1)
        ]
        answer = self.call(
            token,
            "POST",
            "/sync/push",
            {"schema_version": 1, "client_id": client_id, "mutations": numbered},
        )
        results: list[Any] = answer["results"]
        return results


@pytest.fixture(autouse=True)
def fx_no_task_left_behind() -> None:
    """Overrides tests/conftest.py's check for the app's tasks left in the test's event loop:
    here the app runs in its own process (``reppu serve``), and the async fixture could not
    even start, since Playwright's sync API keeps an event loop running in this thread."""


@pytest.fixture(scope="module")
def fx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``reppu serve`` over a fresh demo city, living on a school-day morning."""
    if not Path(FAKETIME_LIBRARY).exists():
        _missing(f"libfaketime ({FAKETIME_LIBRARY}, Debian's faketime package)")
    data_dir = tmp_path_factory.mktemp("reppu-browser")
    port = _free_port()
    fake_now = school_day_morning()
    offset = int((fake_now - real_now()).total_seconds())
    env = {
        **os.environ,
        "REPPU_DATA_DIR": str(data_dir),
        "REPPU_PORT": str(port),
        "REPPU_WORKERS": "1",
        "REPPU_ACCESS_CACHE_SECONDS": "0",
        "LD_PRELOAD": FAKETIME_LIBRARY,
        "FAKETIME": f"{offset:+d}",
        "DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_DONT_RESET": "1",
    }
    env.pop("REPPU_DATABASE_URL", None)
    for args in (["migrate"], ["demo", "--pupils", "500"]):
        done = subprocess.run(
            [*REPPU, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-3000:]
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    server = Server(
        f"http://127.0.0.1:{port}", data_dir, fake_now, dt.timedelta(seconds=offset), env
    )
    try:
        # The server's clock really is on the school day.
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def fx_browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        _missing(f"Debian's Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover (it is in the dev extras)
        _missing("the playwright package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def fx_phone(fx_browser: Any, fx_server: Server) -> Iterator[Any]:
    """A fresh phone-sized browser profile on the server's school day: an empty cache, an
    empty IndexedDB, no service worker yet."""
    context = fx_browser.new_context(
        viewport=PHONE,
        device_scale_factor=1,
        is_mobile=True,
        has_touch=True,
        locale="fi-FI",
        timezone_id="Europe/Helsinki",
        base_url=fx_server.base,
    )
    context.clock.install(time=fx_server.now())
    context.set_default_timeout(20_000)
    yield context
    context.close()


def shot(page: Any, name: str, *, top: bool = True) -> Path:
    """A screenshot of the page as a phone shows it, kept as a test artefact."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    if top:
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path))
    return path


def log_in(page: Any, username: str) -> None:
    page.goto("/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_function(
        "(window.reppu && window.reppu.state.me !== null && document.getElementById('status'))"
        " || document.getElementById('login-error').textContent"
    )
    error = page.locator("#login-error")
    if error.count():
        shot(page, f"login-failed-{username}")
        raise AssertionError(f"{username} could not log in: {error.inner_text()}")


def wait_for_worker(page: Any) -> None:
    """Until the service worker controls the page (and so has cached the app shell).

    Installing caches the whole shell, a few dozen requests: on a loaded machine (the CI run
    had it take over 20 s once, while a benchmark shared the cores) slow, not wrong, so the
    wait is generous; a worker that never takes control still fails the test."""
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=120_000)


def idb(page: Any, script: str) -> Any:
    """Evaluate ``script`` (an async function body with ``db`` in scope) in the page."""
    return page.evaluate(
        "async (body) => { const db = window.reppu.db; return await (new Function('db', "
        "`return (async () => { ${body} })()`))(db); }",
        script,
    )


def wait_until(page: Any, script: str, timeout: float = 20.0) -> Any:
    """Poll ``idb(page, script)`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = idb(page, script)
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s: {script}"
        time.sleep(0.2)


def reference_store(server: Server, token: str) -> Any:
    """What the Python reference client holds for this person after a full sync."""
    import msgspec

    from clients.python import LocalStore
    from schemas.sync import PullResponse

    decode = msgspec.json.Decoder(PullResponse).decode
    store = LocalStore()
    for _ in range(100):
        body: dict[str, Any] = {"schema_version": 1, "limit": 1000}
        if store.cursor:
            body["cursor"] = store.cursor
        answer = httpx.post(
            f"{server.base}/sync/pull",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        pulled = decode(answer.content)
        assert store.apply(pulled) == []
        if not pulled.has_more:
            return store
    raise AssertionError("the reference client did not finish its sync")


def request_trip_form(server: Server, child: dict[str, Any], key: str, device: str) -> None:
    """The city's admin asks ``child``'s guardians to sign a trip permission (a form
    definition named ``key``, in fi, sv and en), pushed from ``device``."""
    admin = server.login("demo-admin")
    city = next(
        int(p.split(":")[1])
        for p in server.call(admin["token"], "GET", "/me")["partitions"]
        if p.startswith("municipality:")
    )
    words = {"fi": "Retkilupa", "sv": "Utflyktslov", "en": "Trip permission"}
    definition = server.call(
        admin["token"],
        "POST",
        "/forms/definitions",
        {
            "organisation_id": city,
            "definition": {
                "key": key,
                "languages": ["fi", "sv", "en"],
                "title": words,
                "signing": "any_custodian",
                "fields": [{"id": "ok", "kind": "consent", "required": True, "label": words}],
            },
        },
    )
    requested = server.push(
        admin["token"],
        device,
        [
            {
                "name": "form.request",
                "args": {
                    "definition_id": definition["id"],
                    "group_id": child["group_ids"][0],
                    "due_on": (server.today + dt.timedelta(days=7)).isoformat(),
                    "pupil_ids": [child["person"]["id"]],
                },
            }
        ],
    )
    assert requested[0]["status"] == "applied", requested
