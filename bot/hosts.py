"""Which hosts the bot may reach, and which count as this machine: the allow-lists of the hosts
files are downloaded from (``TEAMS_ATTACHMENT_HOSTS``, ``SLACK_FILE_HOSTS``), and loopback (what
local mode answers and replies to).

A file's address comes from a payload someone else wrote: fetched from anywhere, it is a way
into the network the bot sits in (the cloud's metadata address, an admin page on the LAN), and
with a token on it a way to steal the token. So a download goes only to the platform's own
hosts, named in the settings. Pure standard library, apart from any HTTP: ``bot/config.py``
checks the settings with it at start, ``bot/outbound.py`` checks each URL and each redirect.

An entry is one of
  ``.example.com`` (or ``*.example.com``)  every host under example.com, over https on 443;
  ``example.com``, ``example.com:8443``    that one host, over https (on 443 unless a port);
  ``https://example.com[:port]``           the same, written as an origin;
  ``http://127.0.0.1:8080``                that one host over plain http, on that port (80 if
                                           none): for tests on loopback, never a wildcard.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

_DEFAULT_PORTS: Final = {"https": 443, "http": 80}
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_ENTRY = re.compile(
    r"^(?:(?P<scheme>[a-z]+)://)?"
    r"(?P<host>\*?\.?[^\s/:\[\]@?#]+|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>\d{1,5}))?/?$"
)
LOOPBACK_NAMES: Final = frozenset({"localhost"})


class HostEntryError(ValueError):
    """An allow-list entry that is not a host, a ``.domain`` or an origin; ``str()`` says why."""


@dataclass(frozen=True)
class HostRule:
    """One allowed host (``suffix`` False) or every host under a domain (``suffix`` True), for
    one scheme and port."""

    host: str
    suffix: bool
    scheme: str
    port: int

    def allows(self, scheme: str, host: str, port: int) -> bool:
        """Whether a URL of this scheme, host (lower case, no brackets) and port may be fetched."""
        if scheme != self.scheme or port != self.port:
            return False
        if self.suffix:
            return host.endswith("." + self.host)
        return host == self.host

    def __str__(self) -> str:
        shown = f".{self.host}" if self.suffix else _bracketed(self.host)
        if self.scheme == "https" and self.port == 443:
            return shown
        return f"{self.scheme}://{shown}:{self.port}"


def parse_entry(entry: str) -> HostRule:
    """The rule an allow-list entry says; HostEntryError with the reason when it says none."""
    text = entry.strip().lower()
    match = _ENTRY.match(text)
    if match is None:
        raise HostEntryError(f'"{entry}" is not a host name, a .domain or an origin (no path)')
    scheme = match.group("scheme") or "https"
    if scheme not in _DEFAULT_PORTS:
        raise HostEntryError(f'"{entry}": only https:// (or http:// for one named host)')
    host = match.group("host")
    suffix = host.startswith(("*.", "."))
    host = host.lstrip("*").lstrip(".").rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not _is_host(host):
        raise HostEntryError(f'"{entry}" is not a host name, a .domain or an origin (no path)')
    if suffix and (scheme == "http" or _is_ip(host) or "." not in host):
        raise HostEntryError(
            f'"{entry}": a .domain covers https hosts under a domain with a dot in it; '
            "plain http is for one named host only"
        )
    port = int(match.group("port") or _DEFAULT_PORTS[scheme])
    if not 1 <= port <= 65535:
        raise HostEntryError(f'"{entry}": the port must be between 1 and 65535')
    return HostRule(host, suffix, scheme, port)


class AllowedHosts:
    """An allow-list: a URL may be fetched when one of its rules allows its scheme, host and
    port. Built from the settings' entries (already checked by ``bot/config.py``)."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.rules = tuple(parse_entry(entry) for entry in entries)

    def allows(self, scheme: str, host: str | None, port: int | None) -> bool:
        """Whether a URL with this scheme, host and port (None: the scheme's default) is on
        the list. No host, or a scheme other than https or http, is never on it."""
        scheme = scheme.lower()
        if not host or scheme not in _DEFAULT_PORTS:
            return False
        host = host.lower().strip("[]")
        port = port or _DEFAULT_PORTS[scheme]
        return any(rule.allows(scheme, host, port) for rule in self.rules)

    def __str__(self) -> str:
        return ", ".join(str(rule) for rule in self.rules) or "(none)"


def is_loopback_host(host: str | None) -> bool:
    """Whether a host (a name, or an IP address with or without brackets) is this machine:
    ``localhost``, 127.0.0.0/8, ``::1`` (and 127.x written as an IPv4-mapped IPv6 address)."""
    if not host:
        return False
    host = host.strip().lower().rstrip(".")
    if host in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def is_loopback_authority(value: str | None) -> bool:
    """Whether a ``Host`` header (``host``, ``host:port``, ``[v6]``, ``[v6]:port``) names this
    machine. A header that is not one of those shapes is not."""
    text = (value or "").strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not re.fullmatch(r":\d{1,5}", rest)):
            return False
        return _is_ip(host) and is_loopback_host(host)
    host, _, port = text.partition(":")
    if port and not port.isdigit():
        return False
    return is_loopback_host(host)


def _is_host(host: str) -> bool:
    if _is_ip(host):
        return True
    labels = host.split(".")
    return len(host) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


__all__ = [
    "AllowedHosts",
    "HostEntryError",
    "HostRule",
    "is_loopback_authority",
    "is_loopback_host",
    "parse_entry",
]
