"""What the admin's path may ask of the organization's directory (Exchange Online): read how a
recipient is set, and change it on an admin's confirmation. ``bot/exchange/`` implements it; the
dialogs never see HTTP, tokens or cmdlets' JSON.

The directory decides who it answers: ``look_up`` gives None (and the conversation goes on as
without a directory) when the person is not an admin as the tickets define one, when the address
is not in one of the organization's domains, or when no directory is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from dialogs.messages import Message

# Why a look-up or a change found nothing to show: the recipient does not exist; the app may not
# read or change it (a permission error); Exchange did not answer (an outage, throttled past the
# retries, a timeout).
Problem = Literal["unknown", "denied", "unavailable"]

FixMethod = Literal["allow_all", "allowed_senders"]  # the knowledge base's method ids
_METHODS: dict[object, FixMethod] = {"allow_all": "allow_all", "allowed_senders": "allowed_senders"}


@dataclass(frozen=True)
class RecipientSetting:
    """One recipient as Exchange holds it, in the terms of the 5.7.12 fix."""

    address: str
    type_details: str  # Exchange's RecipientTypeDetails ("UserMailbox", "DynamicDistributionGroup")
    type_id: str | None  # the knowledge base's recipient type id; None when none fits
    require_sender_authentication: bool  # RequireSenderAuthenticationEnabled
    accept_messages_only_from: tuple[str, ...] = ()  # AcceptMessagesOnlyFrom (and DLMembers)
    accept_messages_only_from_senders_or_members: tuple[str, ...] = ()

    @property
    def explains_5_7_12(self) -> bool:
        """Whether this setting refuses unauthenticated (outside) senders, as 5.7.12 says."""
        return self.require_sender_authentication

    def to_json(self) -> dict[str, Any]:
        """The setting as JSON data, one key per field (the conversation's state keeps it, the
        tickets' history and webhook record it)."""
        return {
            "address": self.address,
            "type_details": self.type_details,
            "type_id": self.type_id,
            "require_sender_authentication": self.require_sender_authentication,
            "accept_messages_only_from": list(self.accept_messages_only_from),
            "accept_messages_only_from_senders_or_members": list(
                self.accept_messages_only_from_senders_or_members
            ),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecipientSetting | None:
        """The setting ``to_json`` made; None when the data is not one."""
        address, details = data.get("address"), data.get("type_details")
        type_id, required = data.get("type_id"), data.get("require_sender_authentication")
        if not (
            isinstance(address, str) and isinstance(details, str) and isinstance(required, bool)
        ):
            return None
        return cls(
            address=address,
            type_details=details,
            type_id=type_id if isinstance(type_id, str) else None,
            require_sender_authentication=required,
            accept_messages_only_from=_strings(data.get("accept_messages_only_from")),
            accept_messages_only_from_senders_or_members=_strings(
                data.get("accept_messages_only_from_senders_or_members")
            ),
        )


@dataclass(frozen=True)
class Lookup:
    """What a look-up found: the setting, or the problem and Exchange's own words in a line."""

    address: str
    setting: RecipientSetting | None = None
    problem: Problem | None = None
    detail: str = ""  # one line a person can read; never a secret


@dataclass(frozen=True)
class FixPlan:
    """A change the bot would make, shown to the admin word for word before it runs."""

    address: str
    method: FixMethod
    sender: str | None  # method 2: who is added to the accept list
    command: str  # the exact cmdlet line, as PowerShell would take it
    warnings: tuple[str, ...] = ()  # what the admin must read before confirming

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON data (the conversation keeps it until the admin confirms it)."""
        return {
            "address": self.address,
            "method": self.method,
            "sender": self.sender,
            "command": self.command,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FixPlan | None:
        """The plan ``to_json`` made; None when the data is not one."""
        address, command, sender = data.get("address"), data.get("command"), data.get("sender")
        method = _METHODS.get(data.get("method"))
        if not (isinstance(address, str) and isinstance(command, str) and command):
            return None
        if method is None or not (sender is None or isinstance(sender, str)):
            return None
        return cls(address, method, sender, command, _strings(data.get("warnings")))


@dataclass(frozen=True)
class FixOutcome:
    """What a change did, read back from Exchange after it ran."""

    plan: FixPlan
    before: RecipientSetting | None
    after: RecipientSetting | None
    problem: Problem | None = None
    detail: str = ""

    @property
    def applied(self) -> bool:
        """Whether the read-back shows the recipient now accepts the outside sender's mail."""
        return self.problem is None and self.after is not None and not self.after.explains_5_7_12


class RecipientDirectory(Protocol):
    """The organization's recipients, as far as the person in ``message`` may see and change
    them."""

    async def look_up(self, message: Message, address: str) -> Lookup | None:
        """How ``address`` is set; None when this directory does not answer this person about
        this address (see the module's docstring). Never raises: problems are in the Lookup."""
        ...

    async def plan_fix(
        self, message: Message, address: str, method: FixMethod, sender: str | None
    ) -> FixPlan | Lookup | None:
        """The change that fixes the bounce by ``method``; a Lookup when it cannot be planned
        (the recipient unknown, the outside sender not in the directory as a contact, ...);
        None when this person may not change it."""
        ...

    async def apply_fix(self, message: Message, plan: FixPlan) -> FixOutcome:
        """Run ``plan`` (the person confirmed it) and read the recipient back. Never raises."""
        ...


def _strings(value: Any) -> tuple[str, ...]:
    """The strings of a JSON list (anything else in it, or not a list: left out)."""
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()
