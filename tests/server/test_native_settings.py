"""The native push settings: read once at start-up, refused by name when unusable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.settings import SettingsError, load_settings
from tests.apns_service import ApnsService
from tests.fcm_service import FcmService


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"REPPU_DATA_DIR": str(tmp_path / "var"), **extra}


def test_without_credentials_there_is_no_native_push(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path))
    assert (settings.fcm, settings.apns) == (None, None)


def test_fcm_and_apns_are_read_from_their_files(tmp_path: Path) -> None:
    fcm, apns = FcmService(), ApnsService()
    account = tmp_path / "service-account.json"
    account.write_text(json.dumps(fcm.service_account()))
    key = tmp_path / "AuthKey.p8"
    key.write_text(apns.key_pem())
    settings = load_settings(
        env(
            tmp_path,
            REPPU_FCM_SERVICE_ACCOUNT=str(account),
            REPPU_FCM_APP_ID="fi.reppu.android",
            REPPU_APNS_KEY_FILE=str(key),
            REPPU_APNS_KEY_ID="KEY1234567",
            REPPU_APNS_TEAM_ID="TEAM123456",
            REPPU_APNS_TOPIC="fi.reppu.app",
            REPPU_APNS_URL="https://api.sandbox.push.apple.com/",
        )
    )
    assert settings.fcm is not None
    assert settings.apns is not None
    assert (settings.fcm.project_id, settings.fcm.token_uri) == (fcm.project_id, fcm.token_uri)
    assert settings.fcm.url == "https://fcm.googleapis.com"
    assert (settings.apns.key_id, settings.apns.topic) == ("KEY1234567", "fi.reppu.app")
    assert settings.apns.url == "https://api.sandbox.push.apple.com"
    # A secret never shows in the settings' text (they may end up in a traceback).
    assert "PRIVATE KEY" not in repr(settings)


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        ({"REPPU_FCM_SERVICE_ACCOUNT": "/nonexistent.json"}, "REPPU_FCM_SERVICE_ACCOUNT"),
        ({"REPPU_FCM_SERVICE_ACCOUNT": "{account}"}, "REPPU_FCM_APP_ID"),
        ({"REPPU_FCM_SERVICE_ACCOUNT": "{broken}", "REPPU_FCM_APP_ID": "a"},
         "REPPU_FCM_SERVICE_ACCOUNT"),
        ({"REPPU_APNS_KEY_FILE": "{account}"}, "REPPU_APNS_KEY_FILE"),
        ({"REPPU_APNS_KEY_FILE": "{key}"}, "REPPU_APNS_KEY_ID"),
        ({"REPPU_APNS_KEY_FILE": "{key}", "REPPU_APNS_KEY_ID": "K", "REPPU_APNS_TEAM_ID": "T",
          "REPPU_APNS_TOPIC": "x", "REPPU_APNS_URL": "ftp://apple"}, "REPPU_APNS_URL"),
    ],
)  # fmt: skip
def test_unusable_native_settings_name_themselves(
    tmp_path: Path, extra: dict[str, str], variable: str
) -> None:
    account = tmp_path / "service-account.json"
    account.write_text(json.dumps(FcmService().service_account()))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"project_id": "p", "client_email": "e"}))
    key = tmp_path / "AuthKey.p8"
    key.write_text(ApnsService().key_pem())
    paths = {"{account}": str(account), "{broken}": str(broken), "{key}": str(key)}
    values = {name: paths.get(value, value) for name, value in extra.items()}
    with pytest.raises(SettingsError) as caught:
        load_settings(env(tmp_path, **values))
    assert caught.value.variable == variable
