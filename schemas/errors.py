"""The one catalogue of error codes. Codes are stable strings: clients branch on them.

Every error answer has the body :class:`ErrorBody`. The HTTP status of each code is set in
one place, ``server/errors.py``. A new code is added here with a line saying when it happens;
a code is never renamed or reused for something else.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class ErrorCode(StrEnum):
    REQUEST_MALFORMED = "request.malformed"
    """The body is not valid JSON (or MessagePack)."""
    REQUEST_INVALID = "request.invalid"
    """A wrong type, a missing or an unknown field in the body or a parameter; see ``field``."""
    REQUEST_TOO_LARGE = "request.too_large"
    """The body is larger than the server accepts (``REPPU_MAX_BODY_BYTES``)."""
    REQUEST_UNSUPPORTED_MEDIA_TYPE = "request.unsupported_media_type"
    """The body's Content-Type is neither JSON nor MessagePack."""
    NOT_FOUND = "not_found"
    """No such route or resource."""
    METHOD_NOT_ALLOWED = "method_not_allowed"
    AUTH_REQUIRED = "auth.required"
    """No bearer token was sent."""
    AUTH_INVALID_TOKEN = "auth.invalid_token"  # noqa: S105 (a code, not a secret)
    """The token is unknown, expired or revoked: log in again."""
    AUTH_BAD_CREDENTIALS = "auth.bad_credentials"
    """Wrong username or password (which one is not said)."""
    AUTH_RATE_LIMITED = "auth.rate_limited"
    """Too many failed logins for this account or address; ``Retry-After`` says when to try."""
    AUTH_FORBIDDEN = "auth.forbidden"
    """The access policy does not let this person do this."""
    SYNC_BAD_CURSOR = "sync.bad_cursor"
    """The cursor was not made by this server or was damaged: start again without one."""
    SYNC_UPDATE_REQUIRED = "sync.update_required"
    """The app speaks a protocol version this server no longer serves: update the app."""
    SYNC_VERSION_UNKNOWN = "sync.version_unknown"
    """The app speaks a newer protocol version than this server knows."""
    SYNC_CLIENT_MISMATCH = "sync.client_mismatch"
    """The client id belongs to another person's installation: make a new one."""
    PUSH_ENDPOINT_NOT_ALLOWED = "push.endpoint_not_allowed"
    """The subscription's endpoint is not a push service this server sends to
    (``REPPU_PUSH_HOSTS``)."""
    PUSH_INVALID_KEYS = "push.invalid_keys"
    """The subscription's ``p256dh`` is not a P-256 public key or ``auth`` is not 16 bytes."""
    PUSH_NATIVE_UNAVAILABLE = "push.native_unavailable"
    """This server has no credentials for that platform (FCM or APNs): its operator set none."""
    PUSH_UNKNOWN_APP = "push.unknown_app"
    """The device's ``app_id`` is not an app this server sends to on that platform."""
    PUSH_INVALID_DEVICE_TOKEN = "push.invalid_device_token"  # noqa: S105 (a code, not a secret)
    """The device token is not one the platform hands out (FCM: printable ASCII up to 4,096
    characters; APNs: 64 to 200 hexadecimal digits)."""
    CHANNEL_UNSUPPORTED = "channel.unsupported"
    """This server sends no notifications of that kind (its operator set no mail server or
    SMS gateway)."""
    CHANNEL_INVALID_ADDRESS = "channel.invalid_address"
    """Not one plain e-mail address, or not an E.164 phone number: a URL, a host, an IP
    address, a port or a second address is never taken."""
    ACTIVATION_INVALID = "activation.invalid"
    """The activation code is unknown, expired or already used, or the account is disabled."""
    ACTIVATION_USERNAME_TAKEN = "activation.username_taken"
    """Another account already has this username: choose another."""
    ACCOUNT_NOT_FOUND = "account.not_found"
    """The person has no account to disable, enable or sign out."""
    ACCOUNT_DEVICE_NOT_FOUND = "account.device_not_found"
    """The person has no signed-in device of that id (unknown, another's, signed out or
    expired)."""
    IMPORT_NOT_FOUND = "import.not_found"
    """No roster import has that id."""
    IMPORT_NOT_APPLICABLE = "import.not_applicable"
    """The roster import cannot be applied: it was refused, is already applied or being
    applied, or its file expired (upload it again)."""
    SIGNIN_UNKNOWN_PROVIDER = "signin.unknown_provider"
    """No sign-in provider of that name is configured."""
    SIGNIN_REDIRECT_NOT_ALLOWED = "signin.redirect_not_allowed"
    """The app's redirect URI is not one the operator allowed (``REPPU_SIGNIN_APP_REDIRECTS``)."""
    SIGNIN_STATE_MISMATCH = "signin.state_mismatch"
    """The provider's answer names no sign-in this server started (unknown, expired or used
    ``state``): start again."""
    SIGNIN_REFUSED = "signin.refused"
    """The provider refused the sign-in or its authorization code (cancelled, expired, used)."""
    SIGNIN_INVALID_ID_TOKEN = "signin.invalid_id_token"  # noqa: S105 (a code, not a secret)
    """The provider's ID token failed a check (signature, issuer, audience, expiry, nonce,
    assurance level): nothing was signed in."""
    SIGNIN_PROVIDER_UNAVAILABLE = "signin.provider_unavailable"
    """The provider could not be reached or answered nonsense; try again later."""
    SIGNIN_NO_MATCH = "signin.no_match"
    """The signed-in identity matches no person of the roster."""
    SIGNIN_AMBIGUOUS = "signin.ambiguous"
    """The signed-in identity matches more than one person: the school must mend its roster."""
    SIGNIN_ROLE_NOT_ALLOWED = "signin.role_not_allowed"
    """The person's roles may not sign in through this provider."""
    SIGNIN_HANDOFF_INVALID = "signin.handoff_invalid"
    """The hand-off code is unknown, expired or already used: sign in again."""
    SERVER_UNAVAILABLE = "server.unavailable"
    """The database cannot be reached; try again later."""
    SERVER_ERROR = "server.error"
    """A bug on our side. Nothing was stored; the server log has the details."""


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """The body of every error answer."""

    code: ErrorCode
    message: str
    """A sentence a person can read. Not for branching: use ``code``."""
    field: str | None = None
    """Where in the request the problem is, as a JSON path (``$.password``) or a parameter name."""
