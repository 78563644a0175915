"""Who may choose the admins' channel (:class:`Registration`): someone in ADMIN_USERS, or, on a
first run with no ADMIN_USERS and a platform without an admins' channel, whoever says
"register admins" with the one-time code this process printed in its log at start.

The code is random (``secrets``), six digits written ``123-456``, and printed once, in a
WARNING line that says how to use it. Only its SHA-256 is kept, in the store (``admin_codes``),
so that every process sharing the store accepts every code still issued: behind a load balancer
the message may reach a process other than the one whose log was read. A code is used up by one
guarded DELETE (once, across processes), all codes are dropped when a channel is registered,
a process drops its own when it stops, and a code expires after a day in any case. Wrong codes
count: after ``WRONG_CODES_ALLOWED`` of them this process takes no more codes until it restarts
(guessing six digits at that pace is hopeless).

Its own room because it is the one place a secret is printed on purpose: the rules of that
secret live together.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any, Final

from bot.config import Settings
from bot.store import Store, StoreError

log = logging.getLogger("bot.tickets")

CODE_LIFETIME: Final = timedelta(days=1)
WRONG_CODES_ALLOWED: Final = 10
_CODE_DIGITS: Final = 6
_DIGITS = re.compile(r"\d")


def code_hash(code: str) -> str:
    """The hash a code is kept by: of its digits only ("123-456", "123456" and "123 456" are
    one code)."""
    digits = "".join(_DIGITS.findall(code))
    return hashlib.sha256(digits.encode("ascii")).hexdigest()


class Registration:
    """The one-time code of this process, and whether a code said is good."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        admin_channels: Callable[[], Awaitable[dict[str, dict[str, Any]]]],
    ) -> None:
        self._store = store
        self._settings = settings
        self._admin_channels = admin_channels
        self._issued: str | None = None  # the hash of the code this process printed
        self._wrong = 0

    @property
    def codes_accepted(self) -> bool:
        """Whether a code may register the first admins' channel at all (no ADMIN_USERS)."""
        return not self._settings.admin_users

    async def issue(self, platforms: Iterable[str]) -> str | None:
        """At start: with no ADMIN_USERS and one of ``platforms`` (those this process serves)
        without an admins' channel, make a code, keep its hash, print it once; the code, or
        None when none is needed."""
        if not self.codes_accepted or self._issued is not None:
            return None
        channels = await self._admin_channels()
        waiting = sorted(platform for platform in platforms if platform not in channels)
        if not waiting:
            return None
        number = secrets.randbelow(10**_CODE_DIGITS)
        code = f"{number // 1000:03d}-{number % 1000:03d}"
        hashed = code_hash(code)
        expires = self._store.now() + CODE_LIFETIME
        await self._store.channels.issue_admin_code(hashed, expires)
        self._issued = hashed
        log.warning(
            "no admins' channel yet and ADMIN_USERS is empty: to choose it, say \"register "
            'admins %s" (mentioning the bot) in the channel where the helpdesk admins work. The '
            "code works once, in any process of this bot, for a day or until this process stops",
            code,
            extra={"platforms": waiting, "expires_at": expires.isoformat()},
        )
        return code

    async def use(self, code: str | None) -> bool:
        """Whether ``code`` is a code issued and not used yet; using it uses it up."""
        if not code or not self.codes_accepted:
            return False
        if self._wrong >= WRONG_CODES_ALLOWED:
            log.warning("registration code refused: too many wrong codes; restart to try again")
            return False
        if await self._store.channels.use_admin_code(code_hash(code)):
            return True
        self._wrong += 1
        log.warning(
            "registration code refused: wrong, used or expired", extra={"wrong": self._wrong}
        )
        return False

    async def registered(self) -> None:
        """A channel was registered: every code has done its work."""
        await self._store.channels.drop_admin_codes()
        self._issued = None

    async def stop(self) -> None:
        """This process stops: its code stops working with it."""
        if self._issued is not None:
            try:
                await self._store.channels.drop_admin_codes(self._issued)
            except StoreError as error:  # it expires on its own within a day
                log.warning("registration code not dropped: %s", error)
            self._issued = None


__all__ = ["CODE_LIFETIME", "WRONG_CODES_ALLOWED", "Registration", "code_hash"]
