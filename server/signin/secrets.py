"""One-time secrets of sign-in (activation codes, OIDC ``state``, hand-off codes) and the
identifiers of people, as the database keeps them: HMAC-SHA-256 under the identity key."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from server.signin.config import SigninSettings

# No 0/O, 1/I/L: a code is read aloud or copied from paper.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_CODE_LENGTH = 12  # 31**12: about 59 bits, against a guess rate the login limits hold down


def keyed_digest(settings: SigninSettings, purpose: str, value: str) -> str:
    """``HMAC-SHA-256(identity key, purpose ":" value)`` in hex: what the database stores."""
    message = f"{purpose}:{value}".encode()
    return hmac.new(settings.identity_key, message, hashlib.sha256).hexdigest()


def new_activation_code() -> str:
    """A fresh code, grouped for reading: ``ABCD-EFGH-JKMN``."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, _CODE_LENGTH, 4))


def normalise_activation_code(code: str) -> str:
    """What was typed, as it was issued: case, spaces and dashes do not matter."""
    return "".join(c for c in code.upper() if c.isalnum())


def new_url_secret() -> str:
    """256 random bits for a URL (state, nonce, hand-off code)."""
    return secrets.token_urlsafe(32)
