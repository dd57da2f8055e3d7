"""``reppu activation-code``: the operator's way to let the first admin in."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from server.settings import load_settings
from server.signin.secrets import keyed_digest, normalise_activation_code

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]


def _reppu(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_operator_issues_a_code_printed_once_and_stored_as_a_keyed_hash(
    tmp_path: Path,
) -> None:
    database = tmp_path / "reppu.sqlite3"
    env = {
        **os.environ,
        "REPPU_DATA_DIR": str(tmp_path),
        "REPPU_DATABASE_URL": f"sqlite:///{database}",
    }
    assert _reppu(env, "migrate").returncode == 0
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO person (id, given_name, family_name, language, turvakielto) "
            "VALUES (7, 'Anna', 'Admin', 'fi', false)"
        )
        connection.execute(
            "INSERT INTO account (person, username, password_hash, disabled) "
            "VALUES (7, 'anna.admin', '', false)"
        )
    done = _reppu(env, "activation-code", "--username", "anna.admin")
    assert done.returncode == 0, done.stderr
    code = done.stdout.split("Activation code for person 7: ")[1].split()[0]
    signin = load_settings({k: v for k, v in env.items() if k.startswith("REPPU_")}).signin
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT person, issued_by, code_hash FROM activation_code")
        stored = rows.fetchall()
        events = connection.execute("SELECT kind, person, actor FROM account_event").fetchall()
    digest = keyed_digest(signin, "activation", normalise_activation_code(code))
    assert stored == [(7, 7, digest)]
    assert events == [("activation.issued", 7, None)]

    nobody = _reppu(env, "activation-code", "--username", "nobody")
    assert nobody.returncode == 2
    assert "no such person" in nobody.stderr + nobody.stdout
