"""The web app's wire modules type-check against the published contract (issue 17).

``clients/typescript/tsconfig.pwa.json`` has ``tsc`` check the PWA's JavaScript (its JSDoc
types, ``// @ts-check`` modules) against ``clients/typescript/contract.d.ts``, which is
generated from the OpenAPI document; so a field the server renames fails here before the
app sends or reads the old name. The app keeps no build step: nothing is emitted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TSC = ROOT / "var" / "ts" / "node_modules" / ".bin" / "tsc"
CONFIG = Path("clients") / "typescript" / "tsconfig.pwa.json"


def _tsc() -> Path:
    if not TSC.exists():
        message = "no TypeScript: scripts/typescript installs it into var/ts"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: this test must run)")
        pytest.skip(message)
    return TSC


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(_tsc()), "-p", str(root / CONFIG), "--pretty", "false"],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_pwa_type_checks_against_the_contract() -> None:
    checked = _check(ROOT)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_check_covers_the_sync_module() -> None:
    # Comments alone decide what tsc checks: without these the test above passes on nothing.
    sync = (ROOT / "clients" / "pwa" / "js" / "sync.js").read_text()
    assert sync.startswith("// @ts-check\n")
    for name in ("PullRequest", "PullResponse", "PushRequest", "PushResponse"):
        assert f"import('../../typescript/contract').{name}" in sync


JS = ROOT / "clients" / "pwa" / "js"
MODULES = sorted(str(path.relative_to(JS)) for path in JS.rglob("*.js"))


def test_the_config_lists_every_module_of_the_app() -> None:
    # A module added to the app and not to the config would go unchecked.
    config = json.loads((ROOT / CONFIG).read_text())
    listed = {str(Path(name).relative_to("../pwa/js")) for name in config["files"]}
    assert listed >= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_every_module_is_checked(tmp_path: Path, module: str) -> None:
    # checkJs: a module listed in the config is checked whole, without `// @ts-check`.
    for part in ("clients/pwa/js", "clients/typescript"):
        shutil.copytree(ROOT / part, tmp_path / part)
    path = tmp_path / "clients" / "pwa" / "js" / module
    path.write_text(path.read_text() + "\ndocument.notAMethod();\n")
    checked = _check(tmp_path)
    assert checked.returncode != 0
    assert f"js/{module}" in checked.stdout
    assert "Property 'notAMethod' does not exist on type 'Document'" in checked.stdout


def test_a_field_renamed_in_the_contract_fails_the_check(tmp_path: Path) -> None:
    # The same files in a copy, with has_more renamed as a server change would rename it.
    for part in ("clients/pwa/js", "clients/typescript"):
        shutil.copytree(ROOT / part, tmp_path / part)
    contract = tmp_path / "clients" / "typescript" / "contract.d.ts"
    text = contract.read_text()
    assert "  has_more?: boolean;\n" in text
    contract.write_text(text.replace("  has_more?: boolean;\n", "  more_waiting?: boolean;\n"))
    checked = _check(tmp_path)
    assert checked.returncode != 0
    assert "Property 'has_more' does not exist on type 'PullResponse'" in checked.stdout
