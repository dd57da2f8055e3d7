"""Sign-in settings: providers from REPPU_OIDC_PROVIDERS, refused with the variable named."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from server.settings import SettingsError, load_settings

MPASSID = {
    "title": "MPASSid",
    "issuer": "https://mpass-proxy.csc.fi",
    "client_id": "reppu",
    "client_secret": "s3cret-value",
    "roles": ["pupil", "teacher", "principal"],
    "scopes": ["openid", "profile"],
    "match": [
        {"claim": "urn:mpass.id:learnerId", "scheme": "oppijanumero"},
        {"claim": "urn:mpass.id:uid", "scheme": "staff_id", "qualifier": "urn:mpass.id:schoolCode"},
    ],
}
SUOMIFI = {
    "title": "Suomi.fi",
    "issuer": "https://tunnistus.suomi.fi",
    "client_id": "reppu-suomifi",
    "client_auth": "private_key_jwt",
    "private_key": {"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "d": "d"},
    "roles": ["guardian"],
    "match": [{"claim": "urn:oid:1.2.246.21", "scheme": "national_id"}],
    "acr_values": ["http://ftn.ficora.fi/2017/loa3"],
}


def _env(tmp_path: Path, providers: Any, **extra: str) -> dict[str, str]:
    return {
        "REPPU_DATA_DIR": str(tmp_path),
        "REPPU_OIDC_PROVIDERS": json.dumps(providers),
        "REPPU_PUBLIC_URL": "https://reppu.example.fi/",
        **extra,
    }


def test_providers_are_read_and_their_secrets_kept_out_of_reprs(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        {"mpassid": MPASSID, "suomifi": SUOMIFI},
        REPPU_SIGNIN_APP_REDIRECTS="fi.example.reppu:/signin, http://127.0.0.1/callback",
    )
    signin = load_settings(env).signin
    assert [p.name for p in signin.providers] == ["mpassid", "suomifi"]
    assert signin.public_url == "https://reppu.example.fi"
    suomifi = signin.provider("suomifi")
    assert suomifi is not None
    assert suomifi.acr_values == ("http://ftn.ficora.fi/2017/loa3",)
    assert json.loads(suomifi.private_key)["d"] == "d"
    mpassid = signin.provider("mpassid")
    assert mpassid is not None
    assert mpassid.matches[1].qualifier == "urn:mpass.id:schoolCode"
    assert signin.app_redirect_uris == ("fi.example.reppu:/signin", "http://127.0.0.1/callback")
    shown = repr(load_settings(env))
    assert "s3cret-value" not in shown
    assert '"d"' not in shown


@pytest.mark.parametrize(
    ("providers", "extra", "variable"),
    [
        ("not json", {}, "REPPU_OIDC_PROVIDERS"),
        ({"m": {**MPASSID, "issuer": "http://mpass.example"}}, {}, "REPPU_OIDC_PROVIDERS"),
        ({"m": {**MPASSID, "client_secret": ""}}, {}, "REPPU_OIDC_PROVIDERS"),
        ({"m": {**MPASSID, "algorithms": ["none"]}}, {}, "REPPU_OIDC_PROVIDERS"),
        ({"m": {**MPASSID, "algorithms": ["HS256"]}}, {}, "REPPU_OIDC_PROVIDERS"),
        ({"m": {**MPASSID, "roles": ["janitor"]}}, {}, "REPPU_OIDC_PROVIDERS"),
        ({"m": {**MPASSID, "match": []}}, {}, "REPPU_OIDC_PROVIDERS"),
        (
            {"m": {**MPASSID, "match": [{"claim": "x", "scheme": "email"}]}},
            {},
            "REPPU_OIDC_PROVIDERS",
        ),
        ({"m": {**MPASSID, "client_secrte": "typo"}}, {}, "REPPU_OIDC_PROVIDERS"),
        (
            {"m": {**MPASSID, "match": [{"claim": "x", "scheme": "staff_id", "qualifer": "y"}]}},
            {},
            "REPPU_OIDC_PROVIDERS",
        ),
        ({"Bad Name": MPASSID}, {}, "REPPU_OIDC_PROVIDERS"),
        ({"m": MPASSID}, {"REPPU_PUBLIC_URL": ""}, "REPPU_PUBLIC_URL"),
        ({"m": MPASSID}, {"REPPU_PUBLIC_URL": "http://reppu.example.fi"}, "REPPU_PUBLIC_URL"),
        (
            {},
            {"REPPU_SIGNIN_APP_REDIRECTS": "http://evil.example/cb"},
            "REPPU_SIGNIN_APP_REDIRECTS",
        ),
        ({}, {"REPPU_IDENTITY_KEY": "short"}, "REPPU_IDENTITY_KEY"),
        ({}, {"REPPU_ACTIVATION_CODE_SECONDS": "5"}, "REPPU_ACTIVATION_CODE_SECONDS"),
    ],
)
def test_unusable_sign_in_settings_stop_start_up(
    tmp_path: Path, providers: Any, extra: dict[str, str], variable: str
) -> None:
    env = _env(tmp_path, providers, **extra)
    if providers == "not json":
        env["REPPU_OIDC_PROVIDERS"] = "not json"
    with pytest.raises(SettingsError) as refused:
        load_settings(env)
    assert refused.value.variable == variable


def test_docs_name_every_sign_in_variable() -> None:
    root = Path(__file__).resolve().parents[3]
    source = (root / "server" / "signin" / "config.py").read_text()
    variables = set(re.findall(r'"(REPPU_[A-Z_]+)"', source))
    assert len(variables) >= 5
    documented = (root / "docs" / "identity.md").read_text()
    assert sorted(v for v in variables if f"`{v}`" not in documented) == []
