"""``reppu migrate``, ``reppu demo`` and ``reppu serve`` as a user runs them: real processes.

Marked slow: it starts uvicorn with two worker processes on a free port of 127.0.0.1, logs in
as a demo guardian, and stops the server again. It runs on SQLite (the embedded default that
``scripts/run`` uses).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPPU = [sys.executable, "-m", "server.cli"]
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*REPPU, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def _wait_for(server: subprocess.Popen[str], url: str, seconds: float = 60) -> None:
    """Until ``url`` answers 200; fails if the server exits or ``seconds`` pass first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert server.poll() is None, "reppu serve exited early"
        assert time.monotonic() < deadline, f"{url} did not answer 200 within {seconds:.0f} s"
        time.sleep(0.2)


@pytest.mark.slow
def test_migrate_demo_serve_and_log_in(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "REPPU_DATA_DIR": str(tmp_path),
        "REPPU_PORT": str(port),
        "REPPU_WORKERS": "2",
    }
    env.pop("REPPU_DATABASE_URL", None)

    # serve refuses an unmigrated database, naming the fix.
    refused = _run(["serve"], env)
    assert refused.returncode == 2
    assert "reppu migrate" in refused.stderr

    migrated = _run(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    demo = _run(["demo", "--pupils", "500", "--if-empty"], env)
    assert demo.returncode == 0, demo.stderr
    assert "demo-guardian" in demo.stdout
    again = _run(["demo", "--pupils", "500", "--if-empty"], env)
    assert again.returncode == 0
    assert "not loaded again" in again.stdout
    refused_twice = _run(["demo", "--pupils", "500"], env)
    assert refused_twice.returncode == 2

    server = subprocess.Popen(
        [*REPPU, "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(server, f"{base}/health")

        login = httpx.post(
            f"{base}/auth/login",
            json={"username": "demo-guardian", "password": "reppu-demo", "device_name": "e2e"},
            timeout=10,
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        me = httpx.get(f"{base}/me", headers=headers, timeout=10).json()
        assert "guardian" in me["roles"]
        assert len({p for p in me["partitions"] if p.startswith("school:")}) >= 2
        # Several requests, so that both worker processes are likely to have answered one.
        for _ in range(20):
            assert httpx.get(f"{base}/me", headers=headers, timeout=10).status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        try:
            output, _ = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            output, _ = server.communicate()
            pytest.fail(f"reppu serve did not stop within 30 s:\n{output[-2000:]}")
    assert server.returncode == 0, output[-2000:]
    assert "reppu-demo" not in output  # no password in the server's log


def _scrape(base: str, token: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    answer = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}"] = sample.value
    return found


@pytest.mark.slow
def test_two_workers_add_up_in_one_scrape_and_log_json(tmp_path: Path) -> None:
    """With two uvicorn processes, a scrape answered by either counts the requests of both,
    the readiness check sees the workers' heartbeats, and every log line is JSON."""
    port = _free_port()
    token = "scrape-" + "k" * 30
    env = {
        **os.environ,
        "REPPU_DATA_DIR": str(tmp_path),
        "REPPU_PORT": str(port),
        "REPPU_WORKERS": "2",
        "REPPU_METRICS_TOKEN": token,
        "REPPU_LOG_FORMAT": "json",
    }
    env.pop("REPPU_DATABASE_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    assert _run(["migrate"], env).returncode == 0
    # A stale file of an earlier run's process must not be added to this run's counts.
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "counter_99999.db").write_bytes(b"stale")
    server = subprocess.Popen(
        [*REPPU, "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    requests = 60
    try:
        _wait_for(server, f"{base}/health/ready")
        key = "reppu_http_requests_total{method=GET,route=/health,status=200}"
        start = _scrape(base, token).get(key, 0.0)
        # New connections each time, so that both processes answer some of them.
        for _ in range(requests):
            assert httpx.get(f"{base}/health", timeout=10).status_code == 200
        for _ in range(5):  # every scrape, whichever process answers it, sees all of them
            assert _scrape(base, token)[key] - start == requests
        ready = httpx.get(f"{base}/health/ready", timeout=10).json()
        assert ready["workers_alive"] == 2
    finally:
        server.send_signal(signal.SIGINT)
        try:
            out, err = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            out, err = server.communicate()
            pytest.fail(f"reppu serve did not stop within 30 s:\n{err[-2000:]}")
    assert server.returncode == 0, err[-2000:]
    # uvicorn's access lines go to stdout, the rest to stderr; only the CLI's banner is text.
    lines = [
        line
        for line in (out + "\n" + err).splitlines()
        if line.strip() and not line.startswith("Reppu on http://")
    ]
    assert len(lines) >= requests  # the access log
    for line in lines:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(entry)
    assert any(json.loads(line).get("path") == "/health" for line in lines)
    assert token not in out + err
