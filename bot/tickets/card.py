"""``TicketCard``: a ticket as both platforms draw it, built once from the stored ticket.

The stored bounce is a dict, its assignee another, the path a third in the conversation's own
ids: every card needs the same facts out of them, in words (the path as the knowledge base
says it). Here they are read once; the renderers (bot/render/) draw from the card and never
see the store, and the notifiers are handed the card by the service.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from bot.tickets.protocol import Action, Actor
from dialogs.directory import FixMethod

if TYPE_CHECKING:
    from bot.store import Requester, TicketRecord
    from knowledge.kb import ConversationText, KnowledgeBase

#: The actions a card offers, by status: a resolved ticket can only be reopened.
_ACTIONS_OPEN = (Action.ASSIGN_ME, Action.ASSIGN, Action.REPLY, Action.RESOLVE)
_ACTIONS_RESOLVED = (Action.REOPEN,)
#: The methods a requester may ask the helpdesk to apply (``path["fix"]``): the knowledge base's.
FIX_METHODS: Final = ("allow_all", "allowed_senders")


@dataclass(frozen=True)
class AskedFix:
    """A change a requester asked the helpdesk to make, as the ticket's path keeps it: the
    method, the recipient, and how far it got (``path["fix_state"]``)."""

    method: FixMethod
    recipient: str
    sender: str | None  # method 2: who is added to the accept list (the bounce's sender)
    state: str  # asked | approving | applied | failed
    by: str = ""  # the admin who approved it
    command: str = ""  # the command that made it, once applied

    @property
    def done(self) -> bool:
        """Whether the change was made (a card offers "Approve and apply" no more)."""
        return self.state == "applied"


def asked_fix(ticket: TicketRecord) -> AskedFix | None:
    """The change the ticket's requester asked for; None when none was (or it names no
    recipient to change)."""
    path, bounce = ticket.path or {}, ticket.bounce or {}
    method = path.get("fix")
    recipients = [str(r) for r in bounce.get("recipients") or () if r]
    recipient = str(path.get("fix_recipient") or (recipients[0] if recipients else ""))
    if method not in FIX_METHODS or "@" not in recipient:
        return None
    sender = _fact(bounce, "sender") if method == "allowed_senders" else None
    return AskedFix(
        method="allow_all" if method == "allow_all" else "allowed_senders",
        recipient=recipient,
        sender=sender,
        state=str(path.get("fix_state") or "asked"),
        by=str(path.get("fix_by") or ""),
        command=str(path.get("fix_command") or ""),
    )


def describe_fix(fix: AskedFix, words: ConversationText) -> str:
    """The change asked for, in words ("let sales@contoso.com accept mail from outside
    senders"), as the cards and the thread's notes say it."""
    return words.text(
        f"ticket_fix_change_{fix.method}",
        recipient=fix.recipient,
        sender=fix.sender or words.text("ticket_fix_the_sender"),
    )


@dataclass(frozen=True)
class TicketCard:
    """Everything a ticket's card shows, on any platform; the words of the labels are the
    platform's own (its renderer has them)."""

    id: str  # what people see and type ("NDR-1001")
    ref: str  # what payloads carry (a card's buttons): random, never the number
    version: int
    status: str  # open | assigned | resolved
    code: str | None  # the bounce's status code ("5.7.12"): the card's title names it
    smtp_code: str | None  # the SMTP reply code ("550")
    recipients: tuple[str, ...]
    sender: str | None
    subject: str | None
    date: str | None
    about: str | None  # the requester's words, when no bounce tells
    path: str | None  # the conversation's path before the escalation, in words
    note: str | None
    opener: str  # the requester who opened it (a name, else their id)
    requesters: tuple[str, ...]  # names (else ids), the opener first
    assignee: Actor | None
    created_at: datetime
    updated_at: datetime
    actions: tuple[Action, ...]  # what an admin can do in this status, in the cards' order
    change: str | None = None  # the change a requester asked for, and how far it got, in words

    @classmethod
    def of(
        cls,
        ticket: TicketRecord,
        requesters: Sequence[Requester],
        knowledge: KnowledgeBase,
        *,
        fixes: bool = False,
    ) -> TicketCard:
        """The card of ``ticket`` with its ``requesters`` (the opener first; none given: the
        opener alone), the path in ``knowledge``'s words. ``fixes``: the tickets can make a
        change a requester asked for (a directory is connected), so such a ticket's card
        offers "Approve and apply" first until it is made."""
        bounce = ticket.bounce or {}
        opener = ticket.requester.name or ticket.requester.user_id
        assignee = ticket.assignee
        fix = asked_fix(ticket)
        actions = _ACTIONS_RESOLVED if ticket.status == "resolved" else _ACTIONS_OPEN
        if fixes and fix is not None and not fix.done and ticket.status != "resolved":
            actions = (Action.APPLY_FIX, *actions)
        return cls(
            id=ticket.id,
            ref=ticket.ref,
            version=ticket.version,
            status=ticket.status,
            code=_fact(bounce, "status"),
            smtp_code=_fact(bounce, "smtp_code"),
            recipients=tuple(str(r) for r in bounce.get("recipients") or ()),
            sender=_fact(bounce, "sender"),
            subject=_fact(bounce, "subject"),
            date=_fact(bounce, "date"),
            about=_fact(bounce, "about"),
            path=describe_path(ticket.path, knowledge),
            note=ticket.note,
            opener=opener,
            requesters=tuple(r.name or r.user_id for r in requesters) or (opener,),
            assignee=None if assignee is None else _person(assignee),
            created_at=ticket.created_at,
            updated_at=ticket.updated_at,
            actions=actions,
            change=None if fix is None else _change_line(fix, knowledge),
        )

    @property
    def recipient(self) -> str | None:
        """The first recipient, as the title names it."""
        return self.recipients[0] if self.recipients else None

    @property
    def full_code(self) -> str:
        """The SMTP reply code and the status code ("550 5.7.12"), as the facts show it; ""
        when the bounce gave neither."""
        return " ".join(code for code in (self.smtp_code, self.code) if code)

    @property
    def assignee_name(self) -> str | None:
        """Who has it, by name; None when nobody (or nobody with a name) does."""
        return self.assignee.name if self.assignee is not None and self.assignee.name else None


def describe_path(path: Mapping[str, Any], knowledge: KnowledgeBase) -> str | None:
    """The conversation's path before the escalation, in the knowledge base's words
    ("They sent the message › Shared mailbox › ..."), as every ticket card shows it."""
    words = knowledge.conversation
    lookups: dict[str, Callable[[str], str]] = {
        "role": lambda value: words.text(f"ticket_role_{value}"),
        "recipient_type": lambda value: knowledge.recipient_type(value).label,
        "method": lambda value: knowledge.method(value).short_label,
        "centre": lambda value: knowledge.centre(value).label,
    }
    names: list[str] = []
    for slot, lookup in lookups.items():
        value = path.get(slot)
        if not value:
            continue
        if slot == "role" and value not in ("sender", "admin"):
            continue
        try:
            names.append(lookup(str(value)))
        except KeyError:  # an id this knowledge base no longer has: show it as it is
            names.append(str(value))
    return " › ".join(names) or None


def _change_line(fix: AskedFix, knowledge: KnowledgeBase) -> str:
    """The card's line about the change asked for: asked (or failed, or being made), or made
    with its command."""
    words = knowledge.conversation
    if fix.done:
        return words.text("ticket_card_fix_applied", admin=fix.by, command=fix.command)
    change = describe_fix(fix, words)
    if fix.state in ("approving", "failed"):
        return words.text(f"ticket_card_fix_{fix.state}", change=change, admin=fix.by)
    return words.text("ticket_card_fix_asked", change=change)


def _fact(bounce: Mapping[str, Any], key: str) -> str | None:
    value = bounce.get(key)
    return str(value) if value else None


def _person(assignee: Mapping[str, Any]) -> Actor:
    return Actor(
        platform=str(assignee.get("platform") or ""),
        user_id=str(assignee.get("user_id") or ""),
        name=str(assignee.get("name") or ""),
    )


__all__ = ["FIX_METHODS", "AskedFix", "TicketCard", "asked_fix", "describe_fix", "describe_path"]
