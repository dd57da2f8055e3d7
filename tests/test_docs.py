"""The documentation stays true to the code it describes."""

from __future__ import annotations

import re
from pathlib import Path

from schemas.errors import ErrorCode
from server.errors import STATUS

ROOT = Path(__file__).resolve().parent.parent


def test_every_error_code_is_documented_with_its_status() -> None:
    rows = re.findall(
        r"^\| `([a-z_.]+)` \| (\d{3}) \|", (ROOT / "docs/errors.md").read_text(), re.M
    )
    assert dict(rows) == {code.value: str(STATUS[code]) for code in ErrorCode}


def test_every_code_has_a_status() -> None:
    assert set(STATUS) == set(ErrorCode)


def test_readme_shows_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "scripts/run" in readme
    assert "scripts/test" in readme
    assert "scripts/test" in (ROOT / ".ci/run").read_text()
