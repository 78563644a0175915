"""Exchange's recipients in the terms of the 5.7.12 fix: which cmdlets show and change each kind,
what the knowledge base calls it, and the change as PowerShell would take it. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from dialogs.directory import FixMethod, RecipientSetting


@dataclass(frozen=True)
class Kind:
    """One RecipientTypeDetails: the noun of its Get-/Set- cmdlets and the knowledge base's id
    (None: a kind the bot has no steps for, shown but never changed)."""

    noun: str
    type_id: str | None


#: RecipientTypeDetails (as Get-Recipient says it) -> its cmdlets' noun and knowledge base id.
#: The cmdlets agree with knowledge/data/recipient_types.yaml (tests/test_exchange.py holds it).
KINDS: Final[Mapping[str, Kind]] = {
    "UserMailbox": Kind("Mailbox", "user_mailbox"),
    "SharedMailbox": Kind("Mailbox", "shared_mailbox"),
    "MailUniversalDistributionGroup": Kind("DistributionGroup", "distribution_group"),
    "MailNonUniversalGroup": Kind("DistributionGroup", "distribution_group"),
    "MailUniversalSecurityGroup": Kind("DistributionGroup", "security_group"),
    "DynamicDistributionGroup": Kind("DynamicDistributionGroup", "dynamic_distribution_group"),
    "GroupMailbox": Kind("UnifiedGroup", "m365_group"),
    "MailUser": Kind("MailUser", "mail_user"),
    "PublicFolder": Kind("MailPublicFolder", "public_folder"),
    # Read, never changed: the knowledge base has no steps for these.
    "RoomMailbox": Kind("Mailbox", None),
    "EquipmentMailbox": Kind("Mailbox", None),
    "SchedulingMailbox": Kind("Mailbox", None),
    "LinkedMailbox": Kind("Mailbox", None),
    "TeamMailbox": Kind("Mailbox", None),
    "DiscoveryMailbox": Kind("Mailbox", None),
    "RoomList": Kind("DistributionGroup", None),
    "GuestMailUser": Kind("MailUser", None),
    "MailContact": Kind("MailContact", None),
}
#: What an outside sender must be in the directory to go on an accept list (NDR-FACTS: "an
#: external sender must first exist in the organization as a mail contact or mail user").
OUTSIDE_SENDER_KINDS: Final = frozenset({"MailContact", "MailUser", "GuestMailUser"})
#: A plain address: the bot writes it into a PowerShell line unquoted, so nothing PowerShell
#: reads specially (quotes, $, backticks, braces, ;, |, &) may be in it.
_ADDRESS: Final = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}"
)
#: The multivalued "add to the list" as the admin API binds it: a hashtable typed
#: Exchange.GenericHashTable, as CIPP (KelvinTegelaar/CIPP-API) sends ``@{Add=...}`` over it.
HASHTABLE_TYPE: Final = "#Exchange.GenericHashTable"


def plain_address(text: str) -> str | None:
    """``text`` as a plain address (lower-case, trimmed); None when it is not one."""
    address = text.strip().lower()
    return address if _ADDRESS.fullmatch(address) else None


def domain_of(address: str) -> str:
    """The domain of an address the bot accepted."""
    return address.rpartition("@")[2]


def read_setting(address: str, type_details: str, found: Mapping[str, Any]) -> RecipientSetting:
    """A recipient as its ``Get-*`` cmdlet showed it."""
    kind = KINDS.get(type_details)
    return RecipientSetting(
        address=str(found.get("PrimarySmtpAddress") or address).lower(),
        type_details=type_details,
        type_id=kind.type_id if kind else None,
        require_sender_authentication=found.get("RequireSenderAuthenticationEnabled") is True,
        accept_messages_only_from=(
            *_names(found.get("AcceptMessagesOnlyFrom")),
            *_names(found.get("AcceptMessagesOnlyFromDLMembers")),
        ),
        accept_messages_only_from_senders_or_members=_names(
            found.get("AcceptMessagesOnlyFromSendersOrMembers")
        ),
    )


def has_accept_list(setting: RecipientSetting) -> bool:
    """Whether the recipient already takes mail only from listed senders."""
    return bool(
        setting.accept_messages_only_from or setting.accept_messages_only_from_senders_or_members
    )


@dataclass(frozen=True)
class Change:
    """A ``Set-*`` cmdlet: its name and parameters as the API takes them, and as PowerShell
    would (the line the admin reads and confirms)."""

    cmdlet: str
    parameters: dict[str, Any]
    command: str


def change_for(kind: Kind, address: str, method: FixMethod, sender: str | None) -> Change:
    """The change that lets outside senders through ``address`` by ``method``: stop requiring
    authenticated senders, and for ``allowed_senders`` add ``sender`` to the accept list
    (AcceptMessagesOnlyFromSendersOrMembers: the one list every kind has, Microsoft 365 groups
    included). Added, never replaced: whoever is on the list stays on it."""
    cmdlet = f"Set-{kind.noun}"
    parameters: dict[str, Any] = {"Identity": address, "RequireSenderAuthenticationEnabled": False}
    command = f"{cmdlet} -Identity {address} -RequireSenderAuthenticationEnabled $false"
    if method == "allowed_senders":
        assert sender is not None  # noqa: S101 - the directory resolved the sender first
        parameters["AcceptMessagesOnlyFromSendersOrMembers"] = {
            "@odata.type": HASHTABLE_TYPE,
            "Add": [sender],
        }
        command += f' -AcceptMessagesOnlyFromSendersOrMembers @{{Add="{sender}"}}'
    return Change(cmdlet, parameters, command)


def shown(setting: RecipientSetting | None) -> dict[str, Any] | None:
    """A setting as the CLI prints it and the change log records it."""
    if setting is None:
        return None
    return {
        "address": setting.address,
        "recipient_type_details": setting.type_details,
        "require_sender_authentication_enabled": setting.require_sender_authentication,
        "accept_messages_only_from": list(setting.accept_messages_only_from),
        "accept_messages_only_from_senders_or_members": list(
            setting.accept_messages_only_from_senders_or_members
        ),
        "explains_5_7_12": setting.explains_5_7_12,
    }


def _names(value: object) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(item) for item in value if item)
    return (str(value),) if isinstance(value, str) and value else ()


__all__ = [
    "HASHTABLE_TYPE",
    "KINDS",
    "OUTSIDE_SENDER_KINDS",
    "Change",
    "Kind",
    "change_for",
    "domain_of",
    "has_accept_list",
    "plain_address",
    "read_setting",
    "shown",
]
