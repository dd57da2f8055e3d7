"""npm's oidc-provider (OpenID Certified) on loopback, started by the tests.

``scripts/oidc-provider`` installs the pinned version into ``var/oidc`` (git-ignored); a
test that needs it installs it first if it can. Without node and npm it is skipped with a
loud reason, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import time_machine

from server.clock import utc_now

ROOT = Path(__file__).resolve().parents[3]
INSTALLER = ROOT / "scripts" / "oidc-provider"
MODULE = ROOT / "var" / "oidc" / "node_modules" / "oidc-provider" / "lib" / "index.js"
SCRIPT = Path(__file__).parent / "oidc" / "provider.mjs"
FAKETIME_LIBRARY = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def _unavailable(reason: str) -> None:
    message = f"npm's oidc-provider is not available: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: the sign-in tests against it must run)")
    pytest.skip("SKIPPING THE TESTS AGAINST A REAL OIDC PROVIDER: " + message)


def ensure_oidc_provider() -> None:
    """Install the pinned oidc-provider unless it is there; skip (or fail in CI) if not."""
    if shutil.which("node") is None:
        _unavailable("node is not installed (apt-get install -y nodejs npm)")
    if subprocess.run([INSTALLER, "--check"], check=False).returncode == 0:
        return
    if shutil.which("npm") is None:
        _unavailable("npm is not installed (apt-get install -y npm), or run scripts/oidc-provider")
    done = subprocess.run([INSTALLER], check=False, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        _unavailable(f"scripts/oidc-provider failed: {done.stderr.strip()[-500:]}")


@contextmanager
def running_oidc_provider(
    config: dict[str, Any], *, offset_seconds: float | None = None
) -> Iterator[str]:
    """Start a provider configured by ``config`` (``oidc/provider.mjs``); yields its issuer.

    The provider lives at the test's frozen instant (libfaketime, a constant offset from
    the wall clock, as the browser tests' server does): the tokens it signs must be fresh by
    the test process's clock. ``offset_seconds``: another offset (the browser tests' server's
    own)."""
    ensure_oidc_provider()
    if not Path(FAKETIME_LIBRARY).exists():
        _unavailable(f"libfaketime ({FAKETIME_LIBRARY}, Debian's faketime package) is missing")
    offset = utc_now().timestamp() - time_machine.escape_hatch.time.time()
    if offset_seconds is not None:
        offset = offset_seconds
    env = {
        **os.environ,
        "OIDC_CONFIG": json.dumps({"module": str(MODULE), **config}),
        "LD_PRELOAD": FAKETIME_LIBRARY,
        "FAKETIME": f"{int(offset):+d}",
        "DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_DONT_RESET": "1",
    }
    process = subprocess.Popen(
        ["node", str(SCRIPT)],  # noqa: S607
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    try:
        try:
            first = lines.get(timeout=60)
        except queue.Empty:
            first = ""
        if not first.startswith("listening "):
            process.kill()
            errors = process.stderr.read() if process.stderr else ""
            raise RuntimeError(f"oidc-provider did not start: {first!r} {errors[-2000:]}")
        yield first.split(" ", 1)[1].strip()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
