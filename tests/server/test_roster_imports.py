"""Roster imports over HTTP: upload, dry run, apply, history; admins of every city only."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import time_machine
from litestar import Litestar
from piccolo.engine.base import Engine

from schemas.core import StaffRoleKind
from server.app import create_app
from server.clock import utc_now
from server.db.bulk import run_sql
from server.db.schema import EVERY_TABLE
from server.db.tables import Organisation, StaffRole
from server.settings import Settings
from tests.city import City
from tests.conftest import log_in_as

FIXTURES = Path(__file__).parent.parent / "fixtures" / "oneroster"
ZIP = {"Content-Type": "application/zip"}
ROUTE = "/admin/roster-imports"


def zipped(folder: Path, **replace: str) -> bytes:
    """The files of ``folder`` as a zip, with some files' text replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.iterdir()):
            archive.writestr(file.name, replace.get(file.name, file.read_text("utf-8")))
    return out.getvalue()


@pytest_asyncio.fixture
async def fx_small_app(fx_settings: Settings, fx_db: Engine[Any]) -> Litestar:
    return create_app(dataclasses.replace(fx_settings, max_import_bytes=1_048_576), engine=fx_db)


@pytest_asyncio.fixture
async def fx_http(fx_small_app: Litestar) -> Any:
    transport = httpx.ASGITransport(app=fx_small_app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://reppu.test") as client:
        yield client


async def _counts() -> dict[str, int]:
    return {t._meta.tablename: await t.count() for t in EVERY_TABLE}


def _kept_files(settings: Settings) -> list[str]:
    folder = settings.data_dir / "imports"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("who", ["principal", "teacher", "mother", "aino", "former_guardian"])
async def test_only_an_admin_of_every_city_may_import(
    fx_http: httpx.AsyncClient, fx_city: City, fx_settings: Settings, who: str
) -> None:
    headers = await log_in_as(fx_http, who)
    before = _kept_files(fx_settings)
    upload = await fx_http.post(
        ROUTE, content=zipped(FIXTURES / "bulk"), headers={**headers, **ZIP}
    )
    assert upload.status_code == 403
    assert upload.json()["code"] == "auth.forbidden"
    assert _kept_files(fx_settings) == before  # refused before a byte was stored
    assert (await fx_http.get(ROUTE, headers=headers)).status_code == 403
    assert (await fx_http.get(f"{ROUTE}/1", headers=headers)).status_code == 403
    assert (await fx_http.post(f"{ROUTE}/1/apply", headers=headers)).status_code == 403
    assert await run_sql("SELECT id FROM roster_import") == []


async def test_bad_uploads_get_clear_errors_and_store_nothing(
    fx_http: httpx.AsyncClient, fx_city: City, fx_settings: Settings
) -> None:
    admin = await log_in_as(fx_http, "admin")
    body = zipped(FIXTURES / "bulk")
    json_body = await fx_http.post(
        ROUTE, content=body, headers={**admin, "Content-Type": "application/json"}
    )
    assert json_body.status_code == 415
    assert json_body.json()["code"] == "request.unsupported_media_type"
    empty = await fx_http.post(ROUTE, content=b"", headers={**admin, **ZIP})
    assert empty.status_code == 422
    assert empty.json()["code"] == "request.invalid"
    too_large = await fx_http.post(ROUTE, content=b"x" * 1_100_000, headers={**admin, **ZIP})
    assert too_large.status_code == 413
    assert too_large.json()["code"] == "request.too_large"
    bad_name = await fx_http.post(
        ROUTE, params={"file_name": "a\nb.zip"}, content=body, headers={**admin, **ZIP}
    )
    assert bad_name.status_code in (400, 422)
    assert (await fx_http.post(f"{ROUTE}/0/apply", headers=admin)).status_code in (400, 422)
    missing = await fx_http.post(f"{ROUTE}/999/apply", headers=admin)
    assert missing.status_code == 404
    assert missing.json()["code"] == "import.not_found"
    assert (await fx_http.get(f"{ROUTE}/999", headers=admin)).json()["code"] == "import.not_found"
    assert await run_sql("SELECT id FROM roster_import") == []
    assert not any(name.startswith("upload-") for name in _kept_files(fx_settings))


async def test_dry_run_changes_nothing_then_apply_does_it_once(
    fx_http: httpx.AsyncClient, fx_city: City, fx_settings: Settings
) -> None:
    admin = await log_in_as(fx_http, "admin")
    before = await _counts()
    checked = await fx_http.post(
        ROUTE,
        params={"file_name": "kevät 2027.zip"},
        content=zipped(FIXTURES / "bulk"),
        headers={**admin, **ZIP},
    )
    assert checked.status_code == 200, checked.text
    report = checked.json()
    assert report["status"] == "checked"
    assert report["file_name"] == "kevät 2027.zip"
    assert report["uploaded_by"] == fx_city.admin
    assert report["counts"]["users"] == {"created": 9, "updated": 0, "ended": 0, "unchanged": 0}
    assert report["counts"]["guardianships"]["created"] == 4
    assert report["problems"] == []
    after_check = await _counts()
    assert {k: v for k, v in after_check.items() if k != "roster_import"} == {
        k: v for k, v in before.items() if k != "roster_import"
    }
    assert _kept_files(fx_settings).count(f"{report['id']}.zip") == 1
    kept = fx_settings.data_dir / "imports" / f"{report['id']}.zip"
    assert kept.stat().st_mode & 0o077 == 0  # children's data: Reppu's user alone

    applied = await fx_http.post(f"{ROUTE}/{report['id']}/apply", headers=admin)
    assert applied.status_code == 200, applied.text
    done = applied.json()
    assert done["status"] == "applied"
    assert done["applied_by"] == fx_city.admin
    assert done["counts"]["users"]["created"] == 9
    assert (await _counts())["person"] == before["person"] + 9
    assert f"{report['id']}.zip" not in _kept_files(fx_settings)

    # The set brought a city of its own (its own Vantaa), of which this admin is not the admin: a
    # set could change its schools, so this admin may no longer import, nor read the history.
    refused = await fx_http.post(ROUTE, content=zipped(FIXTURES / "bulk"), headers={**admin, **ZIP})
    assert refused.status_code == 403
    assert (await fx_http.get(ROUTE, headers=admin)).status_code == 403
    # Made an admin of Vantaa too, they may again.
    (vantaa,) = await Organisation.select(Organisation.id).where(
        Organisation.parent.is_null() & (Organisation.id != fx_city.city)
    )
    await StaffRole.insert(
        StaffRole(
            person=fx_city.admin,
            organisation=vantaa["id"],
            role=StaffRoleKind.ADMIN,
            valid_from=fx_city.today - dt.timedelta(days=1),
            valid_to=None,
        )
    )
    again = await fx_http.post(f"{ROUTE}/{report['id']}/apply", headers=admin)
    assert again.status_code == 409
    assert again.json()["code"] == "import.not_applicable"
    history = (await fx_http.get(ROUTE, headers=admin)).json()["imports"]
    assert [(h["id"], h["status"]) for h in history] == [(report["id"], "applied")]


async def test_a_broken_set_is_refused_with_every_problem_located(
    fx_http: httpx.AsyncClient, fx_city: City, fx_settings: Settings
) -> None:
    admin = await log_in_as(fx_http, "admin")
    users = (FIXTURES / "bulk" / "users.csv").read_text("utf-8").splitlines()
    header, first, *rest = users
    broken = "\n".join([header, first.replace(",true,", ",maybe,", 1), *rest]) + "\n"
    answer = await fx_http.post(
        ROUTE, content=zipped(FIXTURES / "bulk", **{"users.csv": broken}), headers={**admin, **ZIP}
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["status"] == "refused"
    assert report["counts"] == {}
    assert report["problem_count"] >= 1
    problem = report["problems"][0]
    assert problem["file"] == "users"
    assert problem["line"] == 2
    assert problem["column"]
    assert f"{report['id']}.zip" not in _kept_files(fx_settings)
    not_applicable = await fx_http.post(f"{ROUTE}/{report['id']}/apply", headers=admin)
    assert not_applicable.status_code == 409

    garbage = await fx_http.post(
        ROUTE, params={"file_name": "g.zip"}, content=b"not a zip", headers={**admin, **ZIP}
    )
    assert garbage.json()["status"] == "refused"
    assert garbage.json()["problems"][0]["problem"]
    assert garbage.json()["problems"][0]["file"] == "g.zip"  # as sent, not a stored name
    assert garbage.json()["problem_count"] == 1


async def test_a_checked_upload_expires_after_a_day(
    fx_http: httpx.AsyncClient, fx_city: City, fx_settings: Settings
) -> None:
    admin = await log_in_as(fx_http, "admin")
    checked = await fx_http.post(ROUTE, content=zipped(FIXTURES / "bulk"), headers={**admin, **ZIP})
    import_id = checked.json()["id"]
    with time_machine.travel(utc_now() + dt.timedelta(days=1, minutes=1)):
        admin = await log_in_as(fx_http, "admin")  # the test tokens live an hour
        late = await fx_http.post(f"{ROUTE}/{import_id}/apply", headers=admin)
        assert late.status_code == 409
        assert late.json()["code"] == "import.not_applicable"
        assert (await fx_http.get(f"{ROUTE}/{import_id}", headers=admin)).json()[
            "status"
        ] == "expired"
    assert f"{import_id}.zip" not in _kept_files(fx_settings)
