"""The organization's recipients through Exchange Online: ``Recipients`` reads and changes them
(the terminal uses it as it is: whoever runs the CLI is trusted), ``ExchangeDirectory`` is the
dialogs' ``RecipientDirectory`` over it, answering only an admin as the tickets define one
about an address in the organization's own domains.

A change is known to have happened only once it is read back: ``Set-*`` cmdlets answer nothing
on success. Every change is logged at INFO: who, the cmdlet, its parameters, before and after.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from bot.exchange.client import CmdletClient, CmdletFailed
from bot.exchange.recipients import (
    KINDS,
    OUTSIDE_SENDER_KINDS,
    Change,
    change_for,
    domain_of,
    has_accept_list,
    plain_address,
    read_setting,
    shown,
)
from bot.tickets import Actor, Tickets
from dialogs.directory import FixMethod, FixOutcome, FixPlan, Lookup, RecipientSetting
from dialogs.messages import Message
from knowledge.kb import KnowledgeBase

log = logging.getLogger(__name__)

#: The texts this room says (checked at start with the platforms' own: ``bot/runtime.py``).
TEXTS = frozenset(
    {"directory_accept_list_warning", "directory_sender_not_found", "directory_kind_not_fixed"}
)


class Recipients:
    """Get-Recipient, the kind's own Get-* and Set-*, and the tenant's accepted domains."""

    def __init__(
        self, client: CmdletClient, knowledge: KnowledgeBase, org_domains: Iterable[str] = ()
    ) -> None:
        """``org_domains`` (ORG_DOMAINS): our own domains; none: the tenant's accepted ones."""
        self._client = client
        self._knowledge = knowledge
        self._domains = frozenset(org_domains) or None
        self._reading_domains = asyncio.Lock()

    async def domains(self) -> frozenset[str]:
        """Our own domains: ORG_DOMAINS, or the tenant's accepted domains read once and kept
        (a failed read is not kept: the next question asks again). Raises CmdletFailed."""
        async with self._reading_domains:
            if self._domains is None:
                found = await self._client.run("Get-AcceptedDomain", {})
                self._domains = frozenset(
                    str(item["DomainName"]).lower() for item in found if item.get("DomainName")
                )
            return self._domains

    async def look_up(self, address: str) -> Lookup:
        """How ``address`` is set; never raises (a problem is in the Lookup)."""
        try:
            return Lookup(address, setting=await self.read(address))
        except CmdletFailed as failed:
            return Lookup(address, problem=failed.problem, detail=failed.detail)

    async def read(self, address: str) -> RecipientSetting:
        """Get-Recipient for the kind, then that kind's Get-* for the settings."""
        found = await self._client.run("Get-Recipient", {"Identity": address})
        if not found:
            raise CmdletFailed("unknown", f"{address} couldn't be found")
        type_details = str(found[0].get("RecipientTypeDetails") or "")
        kind = KINDS.get(type_details)
        details = found[0]
        if kind is not None:
            own = await self._client.run(f"Get-{kind.noun}", {"Identity": address})
            if not own:
                raise CmdletFailed("unknown", f"{address} couldn't be found")
            details = own[0]
        return read_setting(address, type_details, details)

    async def plan(self, address: str, method: FixMethod, sender: str | None) -> FixPlan | Lookup:
        """The change for ``method``, read from the recipient as it is now; a Lookup when it
        cannot be planned (not found, a kind without steps, the sender not in the directory)."""
        try:
            before = await self.read(address)
            resolved = await self._resolve_sender(sender) if method == "allowed_senders" else None
        except CmdletFailed as failed:
            return Lookup(address, problem=failed.problem, detail=failed.detail)
        if before.type_id is None:
            detail = self._text(
                "directory_kind_not_fixed", recipient=address, type_details=before.type_details
            )
            return Lookup(address, setting=before, detail=detail)
        if method == "allowed_senders" and resolved is None:
            detail = self._text("directory_sender_not_found", sender=sender or "")
            return Lookup(address, setting=before, problem="unknown", detail=detail)
        change = change_for(KINDS[before.type_details], before.address, method, resolved)
        warnings: tuple[str, ...] = ()
        if method == "allowed_senders" and not has_accept_list(before):
            warnings = (self._text("directory_accept_list_warning", recipient=before.address),)
        return FixPlan(before.address, method, resolved, change.command, warnings)

    async def apply(self, plan: FixPlan, who: str) -> FixOutcome:
        """Run ``plan`` and read the recipient back; never raises. The change is planned again
        from the recipient (and the sender) as they are now and run only if it is still the
        line the admin confirmed: a plan is never trusted for what it runs."""
        try:
            before = await self.read(plan.address)
            sender = None
            if plan.method == "allowed_senders":
                sender = await self._resolve_sender(plan.sender)
        except CmdletFailed as failed:
            return FixOutcome(plan, None, None, failed.problem, failed.detail)
        kind = KINDS.get(before.type_details)
        if kind is None or kind.type_id is None:
            return FixOutcome(plan, before, None, "unknown", before.type_details)
        if plan.method == "allowed_senders" and sender is None:
            detail = self._text("directory_sender_not_found", sender=plan.sender or "")
            return FixOutcome(plan, before, None, "unknown", detail)
        change = change_for(kind, before.address, plan.method, sender)
        if change.command != plan.command:
            changed = "the recipient changed since the plan: plan again"
            return FixOutcome(plan, before, None, "unavailable", changed)
        try:
            await self._client.run(change.cmdlet, change.parameters)
        except CmdletFailed as failed:
            self._log_change(who, change, before, None, failed.detail)
            return FixOutcome(plan, before, None, failed.problem, failed.detail)
        try:
            after = await self.read(plan.address)
        except CmdletFailed as failed:  # it ran, but is not known to have: said as a problem
            self._log_change(who, change, before, None, failed.detail)
            return FixOutcome(plan, before, None, failed.problem, failed.detail)
        self._log_change(who, change, before, after, "")
        return FixOutcome(plan, before, after)

    async def _resolve_sender(self, sender: str | None) -> str | None:
        """The sender as the directory knows it (its primary address); None when it is not
        there, or is an outside address that is not a mail contact or mail user."""
        address = plain_address(sender or "")
        if address is None:
            return None
        try:
            found = await self._client.run("Get-Recipient", {"Identity": address})
        except CmdletFailed as failed:
            if failed.problem == "unknown":
                return None
            raise
        if not found:
            return None
        kind = str(found[0].get("RecipientTypeDetails") or "")
        inside = domain_of(address) in await self.domains()
        if not inside and kind not in OUTSIDE_SENDER_KINDS:
            return None
        return str(found[0].get("PrimarySmtpAddress") or address).lower()

    def _log_change(
        self,
        who: str,
        change: Change,
        before: RecipientSetting,
        after: RecipientSetting | None,
        failed: str,
    ) -> None:
        log.info(
            "exchange change" if not failed else "exchange change failed",
            extra={
                "who": who,
                "cmdlet": change.cmdlet,
                "parameters": change.parameters,
                "before": shown(before),
                "after": shown(after),
                "error": failed or None,
            },
        )

    def _text(self, key: str, **values: str) -> str:
        return self._knowledge.conversation.text(key, **values)


def actor_of(message: Message) -> Actor:
    """Who is asking, as the tickets service knows people: (platform, tenant, user id), the
    tenant as the platform's payload said it (``Tickets.is_admin`` checks it again)."""
    return Actor(
        message.platform, message.user_id, message.user_name or message.user_id, message.tenant
    )


class ExchangeDirectory:
    """The dialogs' ``RecipientDirectory``: only admins (``Tickets.is_admin``), only addresses
    in our own domains; anyone else gets None and the conversation goes on without it."""

    def __init__(self, recipients: Recipients, tickets: Tickets) -> None:
        self._recipients = recipients
        self._tickets = tickets

    async def look_up(self, message: Message, address: str) -> Lookup | None:
        """How ``address`` is set, for an admin about one of our addresses; else None."""
        checked = await self._answerable(message, address)
        if isinstance(checked, Lookup) or checked is None:
            return checked
        return await self._recipients.look_up(checked)

    async def plan_fix(
        self, message: Message, address: str, method: FixMethod, sender: str | None
    ) -> FixPlan | Lookup | None:
        """The change ``method`` needs, for an admin about one of our addresses; else None."""
        checked = await self._answerable(message, address)
        if isinstance(checked, Lookup) or checked is None:
            return checked
        return await self._recipients.plan(checked, method, sender)

    async def apply_fix(self, message: Message, plan: FixPlan) -> FixOutcome:
        """Run a confirmed plan (the person and the address checked again); never raises."""
        checked = await self._answerable(message, plan.address)
        if checked is None:
            return FixOutcome(plan, None, None, "denied", "")
        if isinstance(checked, Lookup):
            return FixOutcome(plan, None, None, checked.problem, checked.detail)
        actor = actor_of(message)
        outcome = await self._recipients.apply(plan, actor.key)
        if outcome.before is not None:  # it was tried on the recipient: the webhook hears of it
            await self._tickets.record_change(actor, plan, outcome, self._tickets.store.now())
        return outcome

    async def _answerable(self, message: Message, address: str) -> str | Lookup | None:
        """The address to work on; None when this person or address is not ours to answer; a
        Lookup when our domains cannot be read (Exchange down: said, not taken as "not ours")."""
        plain = plain_address(address)
        if plain is None or not await self._tickets.is_admin(actor_of(message)):
            return None
        try:
            domains = await self._recipients.domains()
        except CmdletFailed as failed:
            return Lookup(plain, problem=failed.problem, detail=failed.detail)
        return plain if domain_of(plain) in domains else None


__all__ = ["TEXTS", "ExchangeDirectory", "Recipients", "actor_of"]
