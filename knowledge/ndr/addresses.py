"""Email addresses found in text, in linear time, and the system addresses that are nobody.

A bounce is full of addresses: the recipients, the sender, and the postmaster or
MicrosoftExchange mailbox that wrote it. :func:`find_addresses` finds them all without a
backtracking pattern; :func:`is_system_address` tells the mail system's own from a person's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_SYSTEM_LOCAL = re.compile(
    r"^(?:postmaster|mailer-daemon|microsoftexchange[0-9a-f]{32}|no-?reply|"
    r"mail-?delivery|maildelivery|mailerdaemon)$",
    re.IGNORECASE,
)


_LOCAL_RUN = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$")
_DOMAIN_RUN = re.compile(r"[A-Za-z0-9.-]{1,253}")


def find_addresses(text: str) -> Iterator[tuple[int, str]]:
    """Yield (position, lower-cased address) for each email address, in linear time."""
    at = text.find("@")
    while at >= 0:
        local_match = _LOCAL_RUN.search(text, max(0, at - 64), at)
        domain_match = _DOMAIN_RUN.match(text, at + 1)
        end = domain_match.end() if domain_match else at + 1
        if local_match and domain_match:
            local = local_match.group(0).lstrip(".'`{|}~!#$%&*+/=?^")
            domain = domain_match.group(0).rstrip(".-")
            if local and "." in domain and _valid_domain(domain):
                yield (
                    local_match.start() + (len(local_match.group(0)) - len(local)),
                    (f"{local}@{domain}".lower()),
                )
        at = text.find("@", max(end, at + 1))


# A domain of at least two labels: none empty, none starting or ending with "-", the last of
# two letters or more. One match instead of a split and a test per label: it runs for every "@".
_VALID_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}")


def _valid_domain(domain: str) -> bool:
    """Whether ``domain`` (letters, digits, dots and hyphens only) is a well-formed domain."""
    return _VALID_DOMAIN.fullmatch(domain) is not None


def is_system_address(address: str) -> bool:
    return bool(_SYSTEM_LOCAL.match(address.split("@", 1)[0]))


def is_system_address_text(text: str) -> bool:
    return any(is_system_address(a) for _, a in find_addresses(text)) or (
        "microsoft outlook" in text.lower() and "@" not in text
    )
