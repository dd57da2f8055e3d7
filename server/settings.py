"""Reppu's configuration: one frozen object, read from the environment once at start-up.

Nothing in Reppu reads ``os.environ`` after start-up; the object built here is passed to
``create_app(settings)``, the CLI commands and the workers. A setting that cannot be
understood stops start-up with a :class:`SettingsError` that names the variable.

Secrets (the token-signing key and the VAPID key pair for Web Push) are generated on the first
run and kept in ``<data dir>/secrets.json`` with mode 0600, outside git. They may instead be
given in the environment (``REPPU_SECRET_KEY``, ``REPPU_VAPID_PRIVATE_KEY``), which is what a
deployment with several machines does so that every process signs with the same keys.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server.signin.config import SigninConfigError, SigninSettings, load_signin_settings


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


DEFAULT_PUSH_HOSTS: tuple[str, ...] = (
    "fcm.googleapis.com",
    "*.push.services.mozilla.com",
    "*.notify.windows.com",
    "*.push.apple.com",
)
"""The browser vendors' push services (Chrome, Firefox, Edge, Safari)."""


@dataclass(frozen=True, slots=True)
class FcmAccount:
    """Firebase Cloud Messaging: the service account Reppu signs its OAuth assertions with."""

    project_id: str
    client_email: str
    private_key: str = field(repr=False)
    """The account's RSA private key (PEM); never logged, nor shown in a traceback."""
    token_uri: str
    app_id: str
    """The Android package a device may register with (``REPPU_FCM_APP_ID``)."""
    url: str = "https://fcm.googleapis.com"


@dataclass(frozen=True, slots=True)
class ApnsKey:
    """The Apple Push Notification service: the token-signing key (.p8) and whose it is."""

    private_key: str = field(repr=False)
    """The ES256 key (PEM, the .p8 file's text); never logged, nor shown in a traceback."""
    key_id: str
    team_id: str
    topic: str
    """The app's bundle id: the ``apns-topic``, and the one ``app_id`` a device may give."""
    url: str = "https://api.push.apple.com"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything Reppu is configured with. Build it with :func:`load_settings`."""

    database_url: str
    data_dir: Path
    secret_key: str
    vapid_private_key: str
    """Base64url of the raw 32-byte P-256 private scalar."""
    vapid_public_key: str
    """Base64url of the uncompressed 65-byte P-256 point (the browser's applicationServerKey)."""
    token_ttl_seconds: int
    host: str
    port: int
    workers: int
    max_body_bytes: int
    login_failures_per_account: int
    login_failures_per_address: int
    login_window_seconds: int
    database_pool_size: int
    sqlite_read_connections: int = 4
    """SQLite: long-lived read connections per process (reads outside write transactions)."""
    access_cache_seconds: float = 5.0
    """How long a process keeps a token's and a person's access lookups (0: never)."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses of reverse proxies whose X-Forwarded-For names the real client (the login
    limits count per client address; behind a proxy every client would otherwise share it)."""
    vapid_subject: str = "mailto:push@reppu.invalid"
    """The ``sub`` of VAPID tokens: how a push service reaches the operator."""
    push_hosts: tuple[str, ...] = DEFAULT_PUSH_HOSTS
    """Hosts a push subscription's endpoint may point at, over https; ``*.`` matches
    subdomains, and ``http://host:port`` allows plain http to that one (a local emulator)."""
    push_connections_per_origin: int = 50
    """Most simultaneous requests to one push service."""
    smtp_url: str = ""
    """The operator's mail server as an apprise ``mailto://`` or ``mailtos://`` URL (host,
    port, credentials, ``from=``), without recipients: each e-mail channel's address is added
    as ``to=``. Empty: people cannot add e-mail channels."""
    sms_url: str = ""
    """The operator's SMS gateway as an apprise URL with ``{phone}`` where the number goes
    (``twilio://SID:token@+358401111111/{phone}``). Empty: people cannot add SMS channels."""
    apprise_concurrency: int = 4
    """Most apprise notifications sent at once (each runs in a thread)."""
    apprise_rate_per_sec: float = 0.0
    """Seconds an apprise plugin waits between two sends through one instance (apprise's own
    throttle; our own concurrency limit keeps the load in check)."""
    run_worker: bool = True
    """Whether ``reppu serve`` runs the delivery worker inside each server process."""
    max_import_bytes: int = 64 * 1_048_576
    """The largest roster import an admin may upload over HTTP (a zip)."""
    metrics_token: str = ""
    """The bearer token a Prometheus scraper sends to ``GET /metrics``; empty: no ``/metrics``
    route at all, and no request is counted (metrics cost nothing when off)."""
    log_format: str = "text"
    """``text`` (one line per record, for a terminal) or ``json`` (one JSON object per line,
    for a log collector)."""
    fcm: FcmAccount | None = None
    """Native push to Android apps; None: devices cannot register for FCM."""
    apns: ApnsKey | None = None
    """Native push to iOS apps; None: devices cannot register for APNs."""
    signin: SigninSettings = field(default_factory=SigninSettings)
    """OpenID Connect providers, activation codes and the identity key (``docs/identity.md``)."""
    retain_audit_days: int = 6 * 365
    """Days the audit trails (roll marks, leave decisions, account events) are kept; 0: for
    ever. ``docs/retention.md`` gives the reasons for every default."""
    retain_deliveries_days: int = 90
    """Days finished notification deliveries and finished outbox entries are kept; 0: for ever."""
    retain_changes_days: int = 180
    """Days deletions (tombstones) stay in the change log; 0: until ``reppu compact``."""
    retain_signed_forms_years: int = 6
    """Years a closed form request, its responses and signatures are kept; 0: for ever."""

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    @property
    def sqlite_path(self) -> Path:
        """The file of a ``sqlite:///path`` URL; a relative path is from the working folder."""
        return Path(self.database_url.removeprefix("sqlite:///"))

    @property
    def database_label(self) -> str:
        """The database URL without a password, safe for logs and the health answer."""
        parts = urlsplit(self.database_url)
        if parts.password is None:
            return self.database_url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def generate_vapid_keys() -> tuple[str, str]:
    """A new P-256 key pair as (private, public), both base64url without padding."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(private), _b64url(public)


def vapid_public_key_for(private_b64: str) -> str:
    """Derive the public key from a base64url private scalar; raises ValueError if malformed."""
    raw = base64.urlsafe_b64decode(private_b64 + "=" * (-len(private_b64) % 4))
    if len(raw) != 32:
        raise ValueError("expected 32 bytes")
    key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    return _b64url(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


def _load_or_create_secrets(data_dir: Path) -> dict[str, str]:
    """Read ``secrets.json`` from the data dir, creating it (mode 0600) on the first run."""
    path = data_dir / "secrets.json"
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise SettingsError("REPPU_DATA_DIR", f"{path} is not valid JSON ({exc})") from exc
        if not isinstance(stored, dict) or not all(isinstance(v, str) for v in stored.values()):
            raise SettingsError("REPPU_DATA_DIR", f"{path} must hold a JSON object of strings")
        return stored
    private, public = generate_vapid_keys()
    created = {
        "secret_key": secrets.token_urlsafe(32),
        "vapid_private_key": private,
        "vapid_public_key": public,
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    # Write to a temporary name and rename, so that two processes starting at once never
    # read a half-written file; O_EXCL on the final name makes the first writer win.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(created, handle)
    try:
        os.link(tmp, path)
    except FileExistsError:
        tmp.unlink()
        return _load_or_create_secrets(data_dir)
    tmp.unlink()
    return created


def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(name, f"expected a whole number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingsError(name, f"must be between {minimum} and {maximum}, got {value}")
    return value


def _retain(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    """A retention period: a whole number from ``minimum`` to ``maximum``, or ``0``/``never``
    (keep for ever: retention deletes nothing of that kind)."""
    raw = (env.get(name) or "").strip().lower()
    if raw in ("never", "0"):
        return 0
    try:
        return _int(env, name, default, minimum, maximum)
    except SettingsError as exc:
        raise SettingsError(name, f"{exc.args[0].split(': ', 1)[1]} (or 0 / never)") from None


def _addresses(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name) or ""
    found = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(name, f"{item!r} is not an IP address or network") from None
        found.append(item)
    return tuple(found)


def _hosts(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    found = []
    for item in (part.strip().lower() for part in (env.get(name) or "").split(",")):
        if not item:
            continue
        bare = item.removeprefix("http://").removeprefix("*.")
        if not bare or not all(c.isalnum() or c in "-.:" for c in bare):
            raise SettingsError(
                name, f"{item!r} is not a host name (or *.domain, or http://host:port)"
            )
        found.append(item)
    return tuple(found)


def _smtp_url(env: Mapping[str, str]) -> str:
    name = "REPPU_SMTP_URL"
    raw = (env.get(name) or "").strip()
    if not raw:
        return ""
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in raw):
        raise SettingsError(name, "must not hold spaces or control characters")
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise SettingsError(name, "is not a URL") from None
    if parts.scheme not in ("mailto", "mailtos") or not parts.hostname:
        raise SettingsError(name, "must be a mailto:// or mailtos:// URL with a host")
    # Recipients come from people's channels, one at a time, never from here.
    if parts.path.strip("/") or parts.fragment:
        raise SettingsError(name, "must not name recipients (no path): the server adds to=")
    keys = {pair.split("=", 1)[0].lower() for pair in parts.query.split("&") if pair}
    if keys & {"to", "cc", "bcc"}:
        raise SettingsError(name, "must not name recipients (to=, cc=, bcc=)")
    return raw


def _sms_url(env: Mapping[str, str]) -> str:
    name = "REPPU_SMS_URL"
    raw = (env.get(name) or "").strip()
    if not raw:
        return ""
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in raw):
        raise SettingsError(name, "must not hold spaces or control characters")
    if raw.count("{phone}") != 1:
        raise SettingsError(name, "must say {phone} once, where the number goes")
    scheme, separator, _ = raw.partition("://")
    if not separator or not scheme.isalnum():
        raise SettingsError(name, "is not an apprise URL (scheme://...)")
    return raw


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(name, f"expected true or false, got {raw!r}")


METRICS_TOKEN_MIN_LENGTH = 24


def _metrics_token(env: Mapping[str, str]) -> str:
    name = "REPPU_METRICS_TOKEN"
    raw = env.get(name) or ""
    if not raw:
        return ""
    if len(raw) < METRICS_TOKEN_MIN_LENGTH:
        raise SettingsError(name, f"must be at least {METRICS_TOKEN_MIN_LENGTH} characters")
    if not all("!" <= c <= "~" for c in raw):
        raise SettingsError(name, "must be printable ASCII without spaces")
    return raw


def _log_format(env: Mapping[str, str]) -> str:
    name = "REPPU_LOG_FORMAT"
    raw = (env.get(name) or "text").strip().lower()
    if raw not in ("text", "json"):
        raise SettingsError(name, f"expected text or json, got {raw!r}")
    return raw


def _vapid_subject(env: Mapping[str, str]) -> str:
    raw = env.get("REPPU_VAPID_SUBJECT") or "mailto:push@reppu.invalid"
    if not raw.startswith(("mailto:", "https://")):
        raise SettingsError("REPPU_VAPID_SUBJECT", "must be a mailto: or https:// URL")
    return raw


def _database_url(env: Mapping[str, str], data_dir: Path) -> str:
    raw = env.get("REPPU_DATABASE_URL") or f"sqlite:///{data_dir / 'reppu.sqlite3'}"
    scheme = raw.split(":", 1)[0]
    if scheme == "sqlite":
        if not raw.startswith("sqlite:///") or raw == "sqlite:///":
            raise SettingsError(
                "REPPU_DATABASE_URL", "a SQLite URL looks like sqlite:///path/to/file.sqlite3"
            )
        return raw
    if scheme in ("postgresql", "postgres"):
        parts = urlsplit(raw)
        if not parts.hostname and "host=" not in parts.query:
            raise SettingsError("REPPU_DATABASE_URL", "a PostgreSQL URL needs a host")
        if not parts.path.strip("/"):
            raise SettingsError("REPPU_DATABASE_URL", "a PostgreSQL URL needs a database name")
        return raw
    raise SettingsError(
        "REPPU_DATABASE_URL",
        f"unsupported scheme {scheme!r}: use sqlite:///file or postgresql://host/db",
    )


def _fcm_account(env: Mapping[str, str]) -> FcmAccount | None:
    path = env.get("REPPU_FCM_SERVICE_ACCOUNT", "")
    if not path:
        return None
    name = "REPPU_FCM_SERVICE_ACCOUNT"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SettingsError(
            name, f"cannot read the service-account JSON: {type(exc).__name__}"
        ) from None
    if not isinstance(data, dict):
        raise SettingsError(name, "the service-account JSON is not an object")
    wanted = ("project_id", "client_email", "private_key", "token_uri")
    values = {key: data.get(key) for key in wanted}
    missing = [key for key, value in values.items() if not isinstance(value, str) or not value]
    if missing:
        raise SettingsError(name, f"the service-account JSON lacks {', '.join(missing)}")
    try:
        serialization.load_pem_private_key(str(values["private_key"]).encode(), password=None)
    except (ValueError, TypeError):
        raise SettingsError(name, "private_key is not a PEM private key") from None
    app_id = env.get("REPPU_FCM_APP_ID", "")
    if not app_id:
        raise SettingsError("REPPU_FCM_APP_ID", "is needed with REPPU_FCM_SERVICE_ACCOUNT")
    return FcmAccount(
        project_id=str(values["project_id"]),
        client_email=str(values["client_email"]),
        private_key=str(values["private_key"]),
        token_uri=str(values["token_uri"]),
        app_id=app_id,
        url=_service_url(env, "REPPU_FCM_URL", "https://fcm.googleapis.com"),
    )


def _apns_key(env: Mapping[str, str]) -> ApnsKey | None:
    path = env.get("REPPU_APNS_KEY_FILE", "")
    if not path:
        return None
    try:
        pem = Path(path).read_text(encoding="utf-8")
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (OSError, ValueError, TypeError):
        raise SettingsError("REPPU_APNS_KEY_FILE", "cannot read the .p8 key (PEM)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise SettingsError("REPPU_APNS_KEY_FILE", "is not a P-256 key (Apple's .p8)")
    values = {}
    for name in ("REPPU_APNS_KEY_ID", "REPPU_APNS_TEAM_ID", "REPPU_APNS_TOPIC"):
        values[name] = env.get(name, "")
        if not values[name]:
            raise SettingsError(name, "is needed with REPPU_APNS_KEY_FILE")
    return ApnsKey(
        private_key=pem,
        key_id=values["REPPU_APNS_KEY_ID"],
        team_id=values["REPPU_APNS_TEAM_ID"],
        topic=values["REPPU_APNS_TOPIC"],
        url=_service_url(env, "REPPU_APNS_URL", "https://api.push.apple.com"),
    )


def _service_url(env: Mapping[str, str], name: str, default: str) -> str:
    url = (env.get(name) or default).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path:
        raise SettingsError(name, "must be an origin like https://host[:port]")
    return url


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``env`` (default: the process environment).

    Raises :class:`SettingsError` naming the first variable that cannot be used.
    """
    env = os.environ if env is None else env
    if env.get("REPPU_APPRISE_SCHEMES"):
        # It let people choose where the server connects (SSRF); a person now gives only an
        # address or a number, and the operator chooses the mail server and the SMS gateway.
        raise SettingsError(
            "REPPU_APPRISE_SCHEMES",
            "is no longer read: set REPPU_SMTP_URL (e-mail) and REPPU_SMS_URL (SMS) instead",
        )
    data_dir = Path(env.get("REPPU_DATA_DIR") or "var")
    if data_dir.exists() and not data_dir.is_dir():
        raise SettingsError("REPPU_DATA_DIR", f"{data_dir} exists and is not a folder")
    database_url = _database_url(env, data_dir)

    stored: dict[str, str] = {}
    if not env.get("REPPU_SECRET_KEY") or not env.get("REPPU_VAPID_PRIVATE_KEY"):
        stored = _load_or_create_secrets(data_dir)
    secret_key = env.get("REPPU_SECRET_KEY") or stored.get("secret_key", "")
    if len(secret_key) < 32:
        raise SettingsError("REPPU_SECRET_KEY", "must be at least 32 characters")
    vapid_private = env.get("REPPU_VAPID_PRIVATE_KEY") or stored.get("vapid_private_key", "")
    try:
        vapid_public = vapid_public_key_for(vapid_private)
    except ValueError:
        raise SettingsError(
            "REPPU_VAPID_PRIVATE_KEY", "must be the base64url raw 32-byte P-256 private key"
        ) from None

    try:
        signin = load_signin_settings(env, secret_key)
    except SigninConfigError as exc:
        raise SettingsError(exc.variable, str(exc)) from None

    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        secret_key=secret_key,
        vapid_private_key=vapid_private,
        vapid_public_key=vapid_public,
        token_ttl_seconds=_int(env, "REPPU_TOKEN_TTL_SECONDS", 30 * 86400, 60, 365 * 86400),
        host=env.get("REPPU_HOST") or "127.0.0.1",
        port=_int(env, "REPPU_PORT", 8000, 1, 65535),
        workers=_int(env, "REPPU_WORKERS", 1, 1, 64),
        max_body_bytes=_int(env, "REPPU_MAX_BODY_BYTES", 1_048_576, 1024, 64 * 1_048_576),
        login_failures_per_account=_int(env, "REPPU_LOGIN_FAILURES_PER_ACCOUNT", 5, 1, 1000),
        login_failures_per_address=_int(env, "REPPU_LOGIN_FAILURES_PER_ADDRESS", 50, 1, 100_000),
        login_window_seconds=_int(env, "REPPU_LOGIN_WINDOW_SECONDS", 900, 1, 86400),
        database_pool_size=_int(env, "REPPU_DATABASE_POOL_SIZE", 10, 1, 200),
        sqlite_read_connections=_int(env, "REPPU_SQLITE_READ_CONNECTIONS", 4, 1, 64),
        access_cache_seconds=_int(env, "REPPU_ACCESS_CACHE_SECONDS", 5, 0, 300),
        trusted_proxies=_addresses(env, "REPPU_TRUSTED_PROXIES"),
        vapid_subject=_vapid_subject(env),
        push_hosts=_hosts(env, "REPPU_PUSH_HOSTS") or DEFAULT_PUSH_HOSTS,
        push_connections_per_origin=_int(env, "REPPU_PUSH_CONNECTIONS_PER_ORIGIN", 50, 1, 1000),
        smtp_url=_smtp_url(env),
        sms_url=_sms_url(env),
        apprise_concurrency=_int(env, "REPPU_APPRISE_CONCURRENCY", 4, 1, 100),
        apprise_rate_per_sec=_int(env, "REPPU_APPRISE_RATE_SECONDS", 0, 0, 3600),
        run_worker=_bool(env, "REPPU_RUN_WORKER", True),
        max_import_bytes=_int(
            env, "REPPU_MAX_IMPORT_BYTES", 64 * 1_048_576, 1_048_576, 2048 * 1_048_576
        ),
        metrics_token=_metrics_token(env),
        log_format=_log_format(env),
        fcm=_fcm_account(env),
        apns=_apns_key(env),
        signin=signin,
        # Audit: at least a year, so that nothing a correction can still reach (explanations
        # go 30 days back, leave up to 120 days ahead) is lost from under the derived rows.
        retain_audit_days=_retain(env, "REPPU_RETAIN_AUDIT_DAYS", 6 * 365, 365, 100 * 365),
        retain_deliveries_days=_retain(env, "REPPU_RETAIN_DELIVERIES_DAYS", 90, 1, 100 * 365),
        retain_changes_days=_retain(env, "REPPU_RETAIN_CHANGES_DAYS", 180, 1, 100 * 365),
        retain_signed_forms_years=_retain(env, "REPPU_RETAIN_SIGNED_FORMS_YEARS", 6, 1, 100),
    )
