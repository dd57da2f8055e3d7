"""The apprise plugin that reaches one person's channel, built from the operator's settings.

A channel row holds only a kind and an address (``notifications/channels.py``); the host the
worker connects to is the operator's (``REPPU_SMTP_URL``, ``REPPU_SMS_URL``). As a second line
of defence, the URL built is parsed back by apprise and used only if it names exactly that
one recipient and the same host and port as the operator's setting does on its own.
"""

from __future__ import annotations

from typing import Any

import apprise

from notifications.channels import channel_url, sms_url
from schemas.notifications import ChannelKind
from server.settings import Settings

_PROBE_EMAIL = "probe@reppu.invalid"
_PROBE_PHONE = "+10000000000"


def _instantiate(url: str) -> Any:
    return apprise.Apprise.instantiate(url, suppress_exceptions=True) if url else None


def _where(plugin: Any) -> tuple[object, ...]:
    """Where a plugin connects: host and port (an e-mail plugin's SMTP host, if it has one)."""
    return (
        getattr(plugin, "smtp_host", None),
        getattr(plugin, "host", None),
        getattr(plugin, "port", None),
        getattr(plugin, "secure", None),
    )


def _recipients(plugin: Any) -> list[str]:
    found = []
    for target in getattr(plugin, "targets", None) or []:
        found.append(target[1] if isinstance(target, tuple) else str(target))
    return found


def channel_plugin(settings: Settings, kind: ChannelKind, address: str) -> Any:
    """The apprise plugin that sends to ``address`` (normalised) through the operator's
    server, or None if this server sends no ``kind`` or apprise reads the URL otherwise."""
    plugin = _instantiate(
        channel_url(kind, address, smtp_url=settings.smtp_url, sms_template=settings.sms_url)
    )
    if plugin is None:
        return None
    if kind is ChannelKind.EMAIL:
        reference = _instantiate(
            channel_url(kind, _PROBE_EMAIL, smtp_url=settings.smtp_url, sms_template="")
        )
        if reference is None or _where(plugin) != _where(reference):
            return None
        return plugin if _recipients(plugin) == [address] else None
    reference = _instantiate(sms_url(settings.sms_url, _PROBE_PHONE))
    if reference is None or _where(plugin) != _where(reference):
        return None
    return plugin


def offers(settings: Settings, kind: ChannelKind) -> bool:
    """Whether the operator configured a server for ``kind``."""
    return bool(settings.smtp_url if kind is ChannelKind.EMAIL else settings.sms_url)
