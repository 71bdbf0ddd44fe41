"""Where a webhook may point. Refusing private, loopback and link-local targets keeps the
service from being used to probe the network it runs in (SSRF); production takes https only.

The check runs when a subscription is saved and again before every delivery, since a name
that resolved to a public address yesterday may resolve to a private one today.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from app.settings import Settings


class TargetRefused(ValueError):
    """The URL may not receive webhooks here; the message says why."""


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # unknown name, or not even a valid one (IDNA)
        raise TargetRefused(f"host {host!r} does not resolve") from exc
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def _private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not address.is_global or address.is_multicast


def check_target(url: str, settings: Settings) -> None:
    """Raise :class:`TargetRefused` unless ``url`` may receive webhooks."""
    try:
        parts = urlsplit(url)
        port_given = parts.port
    except ValueError as exc:  # a port out of range or not a number
        raise TargetRefused(f"not a usable URL: {exc}") from exc
    allowed = ("https",) if settings.environment == "production" else ("https", "http")
    if parts.scheme not in allowed:
        raise TargetRefused(f"the URL must use {' or '.join(allowed)}")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    if parts.username or parts.password:
        raise TargetRefused("credentials in the URL are not accepted; verify the signature")
    port = port_given or (443 if parts.scheme == "https" else 80)
    if settings.webhook_allow_private_targets:
        return
    refused = [a for a in _addresses(parts.hostname, port) if _private(a)]
    if refused:
        raise TargetRefused(
            f"{parts.hostname} is a private, loopback or link-local address ({refused[0]})"
        )
