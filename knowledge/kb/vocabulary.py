"""The vocabulary every knowledge file speaks: the ids, the step conditions, the placeholders.

The ids are ``Literal`` types, read off as tuples so the two cannot drift apart; the models
(:mod:`knowledge.kb.models`), the checks and the dialogs all name them from here. Status codes and
``{placeholder}`` templates are parsed here too, for the same reason: one spelling for everyone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, TypeAlias, get_args

MethodId: TypeAlias = Literal["allow_all", "allowed_senders"]
CentreId: TypeAlias = Literal["new_eac", "classic_eac", "powershell"]
RecipientTypeId: TypeAlias = Literal[
    "user_mailbox",
    "shared_mailbox",
    "distribution_group",
    "security_group",
    "dynamic_distribution_group",
    "m365_group",
    "mail_user",
    "public_folder",
]
Family: TypeAlias = Literal["mailbox", "group", "m365_group", "mail_user", "public_folder"]
Confidence: TypeAlias = Literal["confirmed", "uncertain"]
#: Conditions a procedure step or a note can be shown under (see :meth:`Procedure.steps_for`):
#: ``outside_sender``: the sender is outside the recipient's organization, or not known;
#: ``auth_required``: the bounce means the recipient requires authenticated senders (the 5.7.12
#: family proper, not the related 5.7.124/5.7.129, whose recipient already has a senders list).
StepFlag: TypeAlias = Literal["outside_sender", "auth_required"]
#: Where a note goes: ``before`` the steps (a prerequisite) or ``after`` them (the default).
Placement: TypeAlias = Literal["before", "after"]
#: The questions people ask in the middle of a conversation, answered in topics.yaml.
TopicId: TypeAlias = Literal["why", "risk", "find_type", "delay", "mail_user", "methods"]
#: The questions the dialogs ask, each with a hint for someone who doesn't know the answer.
HintSlot: TypeAlias = Literal["role", "recipient_type", "method", "centre", "recipient"]

# The same ids as tuples, in order, read off the types so the two cannot drift apart.
FAMILIES: tuple[Family, ...] = get_args(Family)
METHOD_IDS: tuple[MethodId, ...] = get_args(MethodId)
CENTRE_IDS: tuple[CentreId, ...] = get_args(CentreId)
RECIPIENT_TYPE_IDS: tuple[RecipientTypeId, ...] = get_args(RecipientTypeId)
STEP_FLAGS: frozenset[StepFlag] = frozenset(get_args(StepFlag))
TOPIC_IDS: tuple[TopicId, ...] = get_args(TopicId)
HINT_SLOTS: tuple[HintSlot, ...] = get_args(HintSlot)

#: Placeholders allowed in procedure steps and commands.
PROCEDURE_PLACEHOLDERS: frozenset[str] = frozenset({"recipient", "sender"})
#: Placeholders allowed in the sender's texts and the note for the recipient's admin.
SENDER_PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "recipient",
        "recipient_domain",
        "sender",
        "status",
        "smtp_code",
        "date",
        "subject",
        "article_url",
    }
)

#: Placeholders allowed in topics (text and command) and in hints.
TOPIC_PLACEHOLDERS: frozenset[str] = frozenset({"recipient"})

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_STATUS = re.compile(r"(?:[245]\d\d[ -])?([245])\.(\d{1,3})\.(\d{1,3})")


def parse_status(status: str) -> tuple[int, int, int] | None:
    """``"5.7.12"`` or ``"550 5.7.12"`` -> ``(5, 7, 12)``; anything else -> None."""
    match = _STATUS.fullmatch(status.strip())
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3])


def placeholders_in(text: str) -> set[str]:
    """The ``{name}`` placeholders in a text (PowerShell's ``@{Add="..."}`` is not one)."""
    return set(_PLACEHOLDER.findall(text))


def fill_placeholders(template: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}`` with ``values[name]``; other braces are left alone (unlike str.format)."""

    def replace(match: re.Match[str]) -> str:
        return values.get(match[1], match[0])

    return _PLACEHOLDER.sub(replace, template)
