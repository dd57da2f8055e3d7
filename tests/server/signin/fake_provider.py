"""A stand-in OpenID Connect provider on loopback, for the refusals a real one never makes:
it serves discovery, a JWKS and a token endpoint, and hands out whatever ID token the test
signed (with joserfc), so that the relying party's checks can be proved one by one.

Like a real provider it checks the PKCE verifier and the client's secret, and a code works
once; ``tests/server/signin/test_oidc_provider.py`` meets the real thing (npm's
oidc-provider).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

CLIENT_ID = "reppu-test"
CLIENT_SECRET = "a client secret of the test provider"


@dataclass
class Grant:
    id_token: str
    code_challenge: str
    used: bool = False


@dataclass
class FakeProvider:
    issuer: str = ""
    keys: list[ECKey] = field(default_factory=list)
    """Published in the JWKS (public parts)."""
    grants: dict[str, Grant] = field(default_factory=dict)
    jwks_fetches: int = 0
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)

    def new_key(self, kid: str) -> ECKey:
        return ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig"})

    def publish(self, *keys: ECKey) -> None:
        self.keys = list(keys)

    def sign(self, claims: dict[str, Any], key: ECKey, *, alg: str = "ES256") -> str:
        header = {"alg": alg, "kid": key.kid}
        return jwt.encode(header, claims, key, algorithms=[alg])

    def grant(self, code: str, id_token: str, code_challenge: str) -> None:
        self.grants[code] = Grant(id_token, code_challenge)

    def jwks(self) -> dict[str, Any]:
        return KeySet(self.keys).as_dict(private=False)  # type: ignore[arg-type]


def unsigned(claims: dict[str, Any]) -> str:
    """A token with ``alg: none`` and no signature, as an attacker would send it."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _basic_credentials(header: str) -> tuple[str, str] | None:
    """RFC 6749 2.3.1: Basic over the form-encoded id and secret."""
    scheme, _, encoded = header.partition(" ")
    if scheme != "Basic":
        return None
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return unquote_plus(user), unquote_plus(password)


def _handler(provider: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/.well-known/openid-configuration":
                self._json(
                    200,
                    {
                        "issuer": provider.issuer,
                        "authorization_endpoint": f"{provider.issuer}/authorize",
                        "token_endpoint": f"{provider.issuer}/token",
                        "jwks_uri": f"{provider.issuer}/jwks",
                        "end_session_endpoint": f"{provider.issuer}/logout",
                        "response_types_supported": ["code"],
                        "id_token_signing_alg_values_supported": ["ES256"],
                    },
                )
            elif path == "/jwks":
                provider.jwks_fetches += 1
                self._json(200, provider.jwks())
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            provider.token_requests.append(form)
            if _basic_credentials(self.headers.get("Authorization") or "") != (
                CLIENT_ID,
                CLIENT_SECRET,
            ):
                self._json(401, {"error": "invalid_client"})
                return
            grant = provider.grants.get(form.get("code", [""])[0])
            verifier = form.get("code_verifier", [""])[0]
            if grant is None or grant.used or _challenge(verifier) != grant.code_challenge:
                self._json(400, {"error": "invalid_grant"})
                return
            grant.used = True
            self._json(
                200, {"access_token": "at", "token_type": "Bearer", "id_token": grant.id_token}
            )

    return Handler


@contextmanager
def running_fake_provider() -> Iterator[FakeProvider]:
    """A fake provider listening on 127.0.0.1 (a free port) for the ``with`` block."""
    provider = FakeProvider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
