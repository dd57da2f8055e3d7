"""The peers Reppu is measured against: pouchdb-server (the CouchDB replication protocol) and
the Node ``web-push`` package, installed from npm into ``var/peers`` (git-ignored)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from benchlib import ROOT, BenchError, say, tool_version

PEERS_DIR = ROOT / "var" / "peers"
NODE_PACKAGES = {"pouchdb-server": "4.2.0", "web-push": "3.6.7"}
"""Pinned: the versions every recorded figure names."""


def node_package_version(name: str) -> str:
    try:
        data = json.loads((PEERS_DIR / "node_modules" / name / "package.json").read_text())
    except (OSError, ValueError):
        return ""
    return str(data.get("version", ""))


def ensure_node_packages() -> dict[str, str]:
    """Install the pinned npm packages into ``var/peers`` unless they are there already;
    returns each package's installed version, and Node's as ``node``."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise BenchError("node and npm are needed for the peers (apt-get install -y nodejs npm)")
    wanted = [f"{name}@{version}" for name, version in NODE_PACKAGES.items()]
    if any(node_package_version(n) != v for n, v in NODE_PACKAGES.items()):
        say(f"npm install --prefix var/peers {' '.join(wanted)} (a few minutes, once)")
        PEERS_DIR.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(  # noqa: S603 - npm, fixed arguments
                [  # noqa: S607
                    "npm",
                    "install",
                    "--prefix",
                    str(PEERS_DIR),
                    "--no-audit",
                    "--no-fund",
                    "--save-exact",
                    *wanted,
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                timeout=1200,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise BenchError(f"npm install of {' '.join(wanted)} failed: {exc}") from exc
    versions = {name: node_package_version(name) for name in NODE_PACKAGES}
    versions["node"] = tool_version(["node", "--version"])
    return versions


def node_bin(command: str) -> Path:
    """A command an installed npm package provides."""
    return PEERS_DIR / "node_modules" / ".bin" / command
