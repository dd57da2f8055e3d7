"""Which push-service endpoints the server sends to: ``REPPU_PUSH_HOSTS``, the operator's list.

A browser hands the app an endpoint URL and the app hands it to us, so it is text a person
controls. It is checked when a subscription is stored (``POST /push/subscriptions``) and, per
push service, again before the worker sends (``server/deliver.py``), so a list the operator
narrowed, or a row stored under an older check, never makes the worker connect elsewhere.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import yarl

from server.settings import Settings

_LDH_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")


def endpoint_allowed(settings: Settings, endpoint: str) -> bool:
    """Whether ``endpoint`` is a clean https URL (or http where the allowlist says so) on an
    allowed host and port. An entry without a port allows the scheme's default port only."""
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in endpoint):
        return False
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        return False
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password or parts.scheme not in ("https", "http"):
        return False
    # A host name of letters, digits, hyphens and dots only: no IP literal in brackets, no
    # percent-encoding, no backslash, no Unicode that the HTTP client would fold into
    # something else (yarl applies NFKC and IDNA), no trailing dot.
    if not _LDH_HOST.fullmatch(host):
        return False
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        # The worker's client (server/push_transport.py) connects where urlsplit says, as
        # checked above; yarl, which most HTTP clients use, must see the same place too.
        seen = yarl.URL(endpoint)
    except ValueError:
        return False
    if (seen.scheme, seen.host, seen.port, seen.user) != (parts.scheme, host, port, None):
        return False
    for allowed in settings.push_hosts:
        scheme, default_port = "https", 443
        if allowed.startswith("http://"):
            scheme, default_port, allowed = "http", 80, allowed.removeprefix("http://")
        if parts.scheme != scheme:
            continue
        name, _, wanted = allowed.partition(":")
        if port != (int(wanted) if wanted.isdigit() else default_port):
            continue
        if (name.startswith("*.") and host.endswith(name[1:])) or host == name:
            return True
    return False
