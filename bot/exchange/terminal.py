"""``python -m bot exchange check|fix``: one recipient read, or fixed, from the terminal.

The terminal is trusted as it is for tickets (whoever runs it holds the settings anyway): no
admin check and no domain check, only a plain address. ``fix`` shows the exact PowerShell line
and asks before it runs, unless ``--yes``. JSON goes to stdout, everything else to stderr, so
a script can read the one and a person the other.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import aiohttp

from bot.config import Settings
from bot.exchange.client import CmdletClient
from bot.exchange.directory import Recipients
from bot.exchange.recipients import plain_address, shown
from dialogs.directory import FixMethod, FixPlan, Lookup, RecipientSetting
from knowledge.kb import KnowledgeBase

#: The CLI's --method words and the knowledge base's method ids they stand for.
METHODS: dict[str, FixMethod] = {"allow-everyone": "allow_all", "allow-sender": "allowed_senders"}


@dataclass(frozen=True)
class Failed(Exception):
    """A command that ends with a one-line reason on stderr and this exit status."""

    reason: str
    status: int = 1

    def __str__(self) -> str:
        return self.reason


def checked(setting: RecipientSetting, knowledge: KnowledgeBase) -> dict[str, Any]:
    """The JSON ``check`` prints: the setting, and its recipient type in the classify
    contract's names (the knowledge base's families: mailbox, group, m365_group...)."""
    family = knowledge.recipient_type(setting.type_id).family if setting.type_id else None
    return {
        "address": setting.address,
        "recipient_type_details": setting.type_details,
        "recipient_type": family,
        "require_sender_authentication_enabled": setting.require_sender_authentication,
        "accept_messages_only_from": list(setting.accept_messages_only_from),
        "accept_messages_only_from_senders_or_members": list(
            setting.accept_messages_only_from_senders_or_members
        ),
        "explains_5_7_12": setting.explains_5_7_12,
    }


async def check(settings: Settings, knowledge: KnowledgeBase, address: str, out: IO[str]) -> int:
    """Print how ``address`` is set; raise :class:`Failed` when it cannot be read."""
    plain = _address(settings, address)
    async with aiohttp.ClientSession() as session:
        found = await _recipients(settings, session, knowledge).look_up(plain)
    if found.setting is None:
        raise Failed(_reason(found))
    print(json.dumps(checked(found.setting, knowledge), ensure_ascii=False), file=out)
    return 0


async def fix(
    settings: Settings,
    knowledge: KnowledgeBase,
    address: str,
    method: str,
    sender: str | None,
    *,
    confirm: Callable[[FixPlan], bool] | None,
    out: IO[str],
) -> int:
    """Plan the change, have it confirmed (``confirm`` None: --yes), run it and print before
    and after; raise :class:`Failed` when it cannot be planned, is refused, or fails."""
    plain = _address(settings, address)
    fix_method = METHODS[method]
    if fix_method == "allowed_senders" and not (sender and plain_address(sender)):
        raise Failed("--method allow-sender needs --sender, a plain address", 2)
    async with aiohttp.ClientSession() as session:
        recipients = _recipients(settings, session, knowledge)
        plan = await recipients.plan(plain, fix_method, sender)
        if isinstance(plan, Lookup):
            raise Failed(_reason(plan))
        if confirm is not None and not confirm(plan):
            raise Failed("not changed: not confirmed")
        outcome = await recipients.apply(plan, f"console:{getpass.getuser()}")
    result = {
        "command": plan.command,
        "warnings": list(plan.warnings),
        "before": shown(outcome.before),
    }
    print(json.dumps({**result, "after": shown(outcome.after)}, ensure_ascii=False), file=out)
    if outcome.problem is not None:
        raise Failed(f"{outcome.problem}: {outcome.detail}")
    if not outcome.applied:
        raise Failed("ran, but the read-back still requires authenticated senders")
    return 0


def ask_on(stdin: IO[str], stderr: IO[str]) -> Callable[[FixPlan], bool]:
    """A confirmation that shows the command and its warnings on ``stderr`` and takes "y" or
    "yes" from ``stdin``; anything else (and no input at all) is a no."""

    def confirm(plan: FixPlan) -> bool:
        for warning in plan.warnings:
            print(f"Warning: {warning}", file=stderr)
        print(f"This will run:\n  {plan.command}\nRun it? [y/N] ", end="", file=stderr, flush=True)
        return stdin.readline().strip().lower() in ("y", "yes")

    return confirm


def _address(settings: Settings, address: str) -> str:
    if not settings.exchange_enabled:
        raise Failed(
            "Exchange Online is off: set EXCHANGE_TENANT_ID, EXCHANGE_CLIENT_ID and "
            "EXCHANGE_CLIENT_SECRET or EXCHANGE_CERTIFICATE_PATH",
            2,
        )
    plain = plain_address(address)
    if plain is None:
        raise Failed(f"{address!r} is not a plain email address", 2)
    return plain


def _recipients(
    settings: Settings, session: aiohttp.ClientSession, knowledge: KnowledgeBase
) -> Recipients:
    return Recipients(CmdletClient(settings, session), knowledge, settings.org_domains)


def _reason(found: Lookup) -> str:
    if found.problem is None:
        return found.detail
    return f"{found.problem}: {found.detail}" if found.detail else found.problem


__all__ = ["METHODS", "Failed", "ask_on", "check", "checked", "fix"]
