"""Settings: read once from the environment; a bad one names itself; secrets made once."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from server.settings import (
    SettingsError,
    generate_vapid_keys,
    load_settings,
    vapid_public_key_for,
)


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"REPPU_DATA_DIR": str(tmp_path / "data"), **extra}


def test_defaults_are_an_embedded_sqlite_file(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path))
    assert settings.is_sqlite
    assert settings.sqlite_path == tmp_path / "data" / "reppu.sqlite3"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.token_ttl_seconds == 30 * 86400


def test_secrets_are_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = load_settings(env(tmp_path))
    second = load_settings(env(tmp_path))
    assert first.secret_key == second.secret_key
    assert first.vapid_private_key == second.vapid_private_key
    path = tmp_path / "data" / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(json.loads(path.read_text())) == {
        "secret_key",
        "vapid_private_key",
        "vapid_public_key",
    }
    assert vapid_public_key_for(first.vapid_private_key) == first.vapid_public_key


def test_secrets_from_the_environment_win(tmp_path: Path) -> None:
    private, public = generate_vapid_keys()
    settings = load_settings(
        env(tmp_path, REPPU_SECRET_KEY="k" * 40, REPPU_VAPID_PRIVATE_KEY=private)
    )
    assert settings.secret_key == "k" * 40
    assert settings.vapid_public_key == public
    assert not (tmp_path / "data" / "secrets.json").exists()


def test_postgres_url_and_its_label_hide_the_password(tmp_path: Path) -> None:
    url = "postgresql://reppu:hunter2@db.example:5432/reppu"
    settings = load_settings(env(tmp_path, REPPU_DATABASE_URL=url))
    assert not settings.is_sqlite
    assert "hunter2" not in settings.database_label
    assert settings.database_label == "postgresql://reppu:***@db.example:5432/reppu"


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("REPPU_DATABASE_URL", "mysql://x/y", "unsupported scheme"),
        ("REPPU_DATABASE_URL", "sqlite://relative.db", "sqlite:///"),
        ("REPPU_DATABASE_URL", "postgresql://localhost", "database name"),
        ("REPPU_PORT", "eighty", "whole number"),
        ("REPPU_PORT", "70000", "between 1 and 65535"),
        ("REPPU_WORKERS", "0", "between"),
        ("REPPU_TOKEN_TTL_SECONDS", "5", "between"),
        ("REPPU_SECRET_KEY", "short", "at least 32"),
        ("REPPU_VAPID_PRIVATE_KEY", "not-a-key", "P-256"),
        ("REPPU_TRUSTED_PROXIES", "10.0.0.1, proxy.local", "not an IP address"),
        ("REPPU_RETAIN_AUDIT_DAYS", "30", "between 365 and 36500, got 30 .or 0 / never."),
        ("REPPU_RETAIN_DELIVERIES_DAYS", "soon", "whole number, got .soon. .or 0 / never."),
        ("REPPU_RETAIN_CHANGES_DAYS", "-1", "between 1 and"),
        ("REPPU_RETAIN_SIGNED_FORMS_YEARS", "101", "between 1 and 100"),
    ],
)
def test_a_bad_setting_names_itself(
    tmp_path: Path, variable: str, value: str, problem: str
) -> None:
    extra = {variable: value}
    if variable == "REPPU_VAPID_PRIVATE_KEY":
        extra["REPPU_SECRET_KEY"] = "k" * 40
    with pytest.raises(SettingsError, match=problem) as caught:
        load_settings(env(tmp_path, **extra))
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")


def test_a_corrupt_secrets_file_names_the_data_dir(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secrets.json").write_text("{not json")
    with pytest.raises(SettingsError) as caught:
        load_settings(env(tmp_path))
    assert caught.value.variable == "REPPU_DATA_DIR"


def test_the_cli_stops_on_a_bad_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from server.cli import main

    monkeypatch.setenv("REPPU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REPPU_PORT", "-1")
    assert main(["migrate"]) == 2
    assert "REPPU_PORT" in capsys.readouterr().err


def test_trusted_proxies_are_addresses_or_networks(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path, REPPU_TRUSTED_PROXIES="10.0.0.1, 192.168.0.0/24,"))
    assert settings.trusted_proxies == ("10.0.0.1", "192.168.0.0/24")
    assert load_settings(env(tmp_path)).trusted_proxies == ()


def test_retention_defaults_and_never(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path))
    assert settings.retain_audit_days == 6 * 365
    assert settings.retain_deliveries_days == 90
    assert settings.retain_changes_days == 180
    assert settings.retain_signed_forms_years == 6
    chosen = load_settings(
        env(
            tmp_path,
            REPPU_RETAIN_AUDIT_DAYS="Never",
            REPPU_RETAIN_DELIVERIES_DAYS="0",
            REPPU_RETAIN_CHANGES_DAYS=" 30 ",
            REPPU_RETAIN_SIGNED_FORMS_YEARS="2",
        )
    )
    assert chosen.retain_audit_days == 0
    assert chosen.retain_deliveries_days == 0
    assert chosen.retain_changes_days == 30
    assert chosen.retain_signed_forms_years == 2
