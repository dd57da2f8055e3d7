"""The Node ``web-push`` package as a yardstick for the storm bulletin (scripts/bench_storm.py).

The same bulletin's payload (``notifications.payload.encode_payload``, urgent, its TTL and
``Urgency``), Reppu's VAPID keys, and subscriptions of the same push-service emulator
(``tests/push_service.py``, started fresh with ``--seed`` and ``--subscribe N``, so that it
holds the subscriptions this process makes with ``PushService(seed).subscribe_many(N)``).
``scripts/peers/webpush_send.js`` sends them with ``webpush.sendNotification``: one after
another (the plain loop), and with many in flight (``--node-webpush-concurrency``).
Measured: pushes accepted per second, Node's CPU (its process, from ``/proc``), and the
emulator's CPU per push.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from benchlib import (
    ROOT,
    BenchError,
    Cleanup,
    CpuReading,
    free_port,
    say,
    wait_for_quiet,
    wait_until_up,
)

from peers import NODE_PACKAGES, PEERS_DIR, ensure_node_packages

if str(ROOT) not in sys.path:  # tests/ is not installed: the emulator is imported from here
    sys.path.insert(0, str(ROOT))

SCRIPT = Path(__file__).resolve().parent / "webpush_send.js"
TOPIC = "storm"


@dataclass(slots=True)
class NodeYardstick:
    concurrency: int
    pushes: int
    seconds: float
    ok: int
    refused: dict[str, int] = field(default_factory=dict)
    first_error: str = ""
    node_cpu: float = 0.0
    """CPU seconds of the node process over the whole run (start-up included)."""
    emulator_us: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


async def run_node_webpush(
    cleanup: Cleanup,
    *,
    vapid_private_key: str,
    vapid_public_key: str,
    vapid_subject: str,
    payload: bytes,
    ttl: int,
    urgency: str,
    sample: int,
    concurrencies: list[int],
    seed: int,
    quiet_wait: float,
) -> list[NodeYardstick]:
    """``sample`` pushes by the Node package per concurrency, each run to a fresh emulator."""
    from tests.push_service import PushService

    versions = ensure_node_packages()
    results: list[NodeYardstick] = []
    folder = Path(tempfile.mkdtemp(prefix="reppu-bench-node-webpush-"))
    cleanup.folders.append(folder)
    try:
        for concurrency in concurrencies:
            port = free_port()
            origin = f"http://127.0.0.1:{port}"
            service = PushService(origin, vapid_public_key, seed=seed)
            subs = service.subscribe_many(sample)
            log = folder / f"emulator-{concurrency}.log"
            cmd = [sys.executable, "-m", "tests.push_service", "--host", "127.0.0.1"]
            cmd += ["--port", str(port), "--seed", str(seed), "--subscribe", str(sample)]
            cmd += ["--vapid-public-key", vapid_public_key, "--no-keep-received"]
            emulator = cleanup.start(cmd, env=dict(os.environ, PYTHONUNBUFFERED="1"), log=log)
            try:
                await wait_until_up(emulator, f"{origin}/_admin/stats", log)
                plan = {
                    "subscriptions": [s.to_json() for s in subs],
                    "payload_b64": base64.b64encode(payload).decode(),
                    "ttl": ttl,
                    "urgency": urgency,
                    "topic": TOPIC,
                    "concurrency": concurrency,
                    "vapid": {
                        "subject": vapid_subject,
                        "publicKey": vapid_public_key,
                        "privateKey": vapid_private_key,
                    },
                }
                plan_path = folder / f"plan-{concurrency}.json"
                result_path = folder / f"result-{concurrency}.json"
                plan_path.write_text(json.dumps(plan))
                await _wait_quiet(quiet_wait)
                say(
                    f"Node web-push {NODE_PACKAGES['web-push']}: {sample:,} pushes, "
                    f"{concurrency} at a time, to a fresh emulator on {origin}"
                )
                result = await _send(
                    cleanup, folder, plan_path, result_path, emulator.pid, origin, concurrency
                )
                result.versions = versions
                results.append(result)
                say(
                    f"  Node web-push: {result.ok:,}/{sample:,} accepted in {result.seconds:.1f} s"
                    f" = {result.rate:,.0f} pushes/s; node used {result.node_cpu:.1f} s of CPU"
                    + (f"; first refusal: {result.first_error}" if result.first_error else "")
                )
            finally:
                cleanup.stop(emulator)
    finally:
        cleanup.remove_folder(folder)
    return results


async def _wait_quiet(limit: float) -> None:
    await asyncio.to_thread(wait_for_quiet, limit)


async def _send(
    cleanup: Cleanup,
    folder: Path,
    plan_path: Path,
    result_path: Path,
    emulator_pid: int,
    origin: str,
    concurrency: int,
) -> NodeYardstick:
    node = shutil.which("node")
    if node is None:
        raise BenchError("node is not installed")
    env = dict(os.environ, NODE_PATH=str(PEERS_DIR / "node_modules"))
    emulator0 = CpuReading.take([emulator_pid])
    proc = cleanup.start(
        [node, str(SCRIPT), str(plan_path), str(result_path)],
        env=env,
        log=folder / f"node-{concurrency}.log",
    )
    node_cpu = 0.0
    started = time.monotonic()
    while proc.poll() is None:
        # The node process's CPU, read while it still exists (a reaped process has no /proc).
        node_cpu = max(node_cpu, sum(CpuReading.take([proc.pid]).tree.values()))
        if time.monotonic() - started > 1800:
            cleanup.stop(proc)
            raise BenchError("node web-push did not finish within 30 minutes")
        await asyncio.sleep(0.2)
    cleanup.stop(proc)
    if proc.returncode != 0 or not result_path.exists():
        tail = (folder / f"node-{concurrency}.log").read_text(errors="replace")[-400:]
        raise BenchError(f"node web-push exited with {proc.returncode}: {tail.strip()}")
    emulator_cpu, _, _ = CpuReading.take([emulator_pid]).since(emulator0)
    answer = json.loads(result_path.read_text())
    async with httpx.AsyncClient(timeout=10.0) as http:
        stats = (await http.get(f"{origin}/_admin/stats")).json()
    ok = int(answer["ok"])
    if int(stats["accepted"]) != ok:
        say(f"  the emulator counted {stats['accepted']} accepted, node {ok}")
    return NodeYardstick(
        concurrency,
        int(answer["ok"]) + sum(int(v) for v in answer["refused"].values()),
        float(answer["seconds"]),
        ok,
        {str(k): int(v) for k, v in answer["refused"].items()},
        str(answer["first_error"]),
        node_cpu,
        emulator_cpu / max(1, ok) * 1e6,
    )


def node_lines(results: list[NodeYardstick], reppu_rates: dict[str, float]) -> list[str]:
    """The entry's paragraph: each run, and Reppu's storm rate over it."""
    if not results:
        return []
    version = results[0].versions.get("web-push", "?")
    node = results[0].versions.get("node", "?")
    lines = [
        f"Node web-push {version} (Node {node}): `webpush.sendNotification(subscription, "
        "payload, {TTL, urgency, topic, vapidDetails})` per push, the package encrypting "
        "(aes128gcm) and signing a VAPID JWT on every call; https.request pointed at "
        "http.request, as the emulator is plain HTTP on loopback (`scripts/peers/"
        "webpush_send.js`).",
        "",
        "| pushes in flight | accepted | refused | seconds | pushes/s | node CPU per push | "
        "emulator CPU per push | Reppu's storm / Node |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        refused = ", ".join(f"{k}: {v:,}" for k, v in r.refused.items()) or "0"
        ratios = ", ".join(
            f"{label} {rate / r.rate:.1f}x" for label, rate in reppu_rates.items() if r.rate
        )
        lines.append(
            f"| {r.concurrency} | {r.ok:,} | {refused} | {r.seconds:.1f} | **{r.rate:,.0f}** | "
            f"{r.node_cpu / max(1, r.ok) * 1e6:,.0f} us | {r.emulator_us:,.0f} us | "
            f"{ratios or '-'} |"
        )
    return lines
