"""The organization's directory in memory, as the tickets make approved changes through it (a
``FixRunner``): recipients by address, every plan and every change recorded, a change that
can be held (to click twice while it runs) or made to fail."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from bot.tickets import FixRunner
from dialogs.directory import FixMethod, FixOutcome, FixPlan, Lookup, Problem, RecipientSetting

#: The cmdlet that sets each kind of recipient, as Exchange names it.
_CMDLETS = {
    "UserMailbox": "Set-Mailbox",
    "SharedMailbox": "Set-Mailbox",
    "MailUniversalDistributionGroup": "Set-DistributionGroup",
    "DynamicDistributionGroup": "Set-DynamicDistributionGroup",
}


def group(address: str) -> RecipientSetting:
    """A distribution group that refuses outside senders (the 5.7.12 setting)."""
    return RecipientSetting(
        address=address,
        type_details="MailUniversalDistributionGroup",
        type_id="distribution_group",
        require_sender_authentication=True,
    )


def mailbox(address: str) -> RecipientSetting:
    """A user mailbox that refuses outside senders."""
    return RecipientSetting(
        address=address,
        type_details="UserMailbox",
        type_id="user_mailbox",
        require_sender_authentication=True,
    )


def command_for(setting: RecipientSetting) -> str:
    """The command the fake plans for method 1 on ``setting``."""
    cmdlet = _CMDLETS[setting.type_details]
    return f'{cmdlet} -Identity "{setting.address}" -RequireSenderAuthenticationEnabled $false'


@dataclass
class FakeFixRunner:
    """Plans method 1 as the Exchange client would; ``problem`` makes the change fail (the
    read-back unchanged), ``unreadable`` makes planning say the recipient is unknown, and
    while ``hold`` is set each change waits for it."""

    recipients: dict[str, RecipientSetting] = field(default_factory=dict)
    planned: list[tuple[str, str, str | None]] = field(default_factory=list)
    applied: list[FixPlan] = field(default_factory=list)
    problem: Problem | None = None
    detail: str = ""
    hold: asyncio.Event | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def plan(self, address: str, method: FixMethod, sender: str | None) -> FixPlan | Lookup:
        self.planned.append((address, method, sender))
        current = self.recipients.get(address.lower())
        if current is None:
            detail = f'Couldn\'t find object "{address}".'
            return Lookup(address, problem="unknown", detail=detail)
        return FixPlan(address, method, sender, command_for(current))

    async def apply(self, plan: FixPlan, who: str) -> FixOutcome:
        self.applied.append(plan)
        self.started.set()
        if self.hold is not None:
            await self.hold.wait()
        before = self.recipients[plan.address.lower()]
        if self.problem is not None:
            return FixOutcome(plan, before, before, problem=self.problem, detail=self.detail)
        after = replace(before, require_sender_authentication=False)
        self.recipients[plan.address.lower()] = after
        return FixOutcome(plan, before, after)


def runner_of(fake: FakeFixRunner) -> FixRunner:
    return fake  # mypy: the fake is a FixRunner


__all__ = ["FakeFixRunner", "command_for", "group", "mailbox", "runner_of"]
