"""The rules of the admins' actions: given a ticket, an admin's request and what is known (is
the card out of date, who resolved it), what changes, what the cards' threads and the admin are
told, and which jobs follow for the cards and the requesters.

A room of its own so that the rules read, and are tested, without a database or a network: no
store, no aiohttp, no I/O here; the service (``service.py``) loads the ticket, asks the rules,
and stores the change with the jobs they name in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from bot.store import KEEP, Keep, NewJob, Requester, TicketChange, TicketRecord
from bot.tickets.protocol import TERMINAL, Action, ActionRequest
from dialogs.messages import Platform
from knowledge.kb import ConversationText

#: The requesters' news (``Plan.news``) other than "resolved", and the sentence that tells it
#: (a resolution asks "did that fix it?" instead: see ``news.py``).
NEWS_TEXTS: Final = {
    "assigned": "ticket_assigned",
    "replied": "ticket_reply",
    "reopened": "ticket_reopened",
}


@dataclass(frozen=True)
class Plan:
    """An action worked out against the ticket as it is: what to change and say."""

    kind: str  # the ticket event
    status: str | None
    assignee: dict[str, Any] | Keep | None
    detail: dict[str, Any]
    note: str  # the line in the card's thread
    done: str  # the line for the admin who acted
    news: str | None = None  # the requesters' news: assigned | replied | resolved | reopened
    news_admin: str = ""
    news_text: str = ""
    skip_requester: str | None = None  # a requester key not to tell (they did it themselves)
    path: dict[str, Any] | Keep = KEEP  # the ticket's path, changed (a change asked for)


def has_chat(requester: Requester) -> bool:
    """Whether the requester is told in a chat (a job for their platform); a requester in the
    terminal has none: their news waits in their conversation."""
    return requester.platform != TERMINAL


class ActionRules:
    """The rules, in the knowledge base's words. ``standing_admin_platforms``: the platforms
    whose admins' channel the settings name (SLACK_ADMIN_CHANNEL): their cards are always due."""

    def __init__(
        self, words: ConversationText, standing_admin_platforms: Iterable[str] = ()
    ) -> None:
        self.words = words
        self.standing = frozenset(standing_admin_platforms)

    # -- what an action does ------------------------------------------------------------------

    def missing_input(self, request: ActionRequest, ticket: TicketRecord) -> str | None:
        """Why the request cannot be acted on whatever the ticket's state (no assignee, no
        text, no note), or None."""
        text = (request.text or "").strip()
        if request.action is Action.ASSIGN and request.assignee is None:
            return self._text("ticket_refused_no_assignee", ticket=ticket.id)
        if request.action is Action.REPLY and not text:
            return self._text("ticket_refused_no_text", ticket=ticket.id)
        if request.action is Action.RESOLVE and not text:
            return self._text("ticket_refused_no_note", ticket=ticket.id)
        return None

    def plan(
        self, request: ActionRequest, ticket: TicketRecord, *, stale: bool, resolver: str = ""
    ) -> Plan | str:
        """What the action does to the ticket as it is now, or why it is refused. ``stale``:
        the card the admin clicked was out of date; ``resolver``: who resolved the ticket
        (said when a resolved ticket refuses an action)."""
        actor, action, tid = request.actor, request.action, ticket.id
        text = (request.text or "").strip()
        by = {"by": actor.name}
        if action is Action.REOPEN:
            if ticket.status != "resolved":
                return self._text("ticket_refused_not_resolved", ticket=tid)
            return Plan(
                kind="reopened",
                status="open",
                assignee=None,
                detail=by,
                note=self._text("ticket_note_reopened", admin=actor.name),
                done=self._text("ticket_done_reopened", ticket=tid),
                news="reopened",
                news_admin=actor.name,
            )
        if ticket.status == "resolved":
            return self._text("ticket_refused_resolved", ticket=tid, admin=resolver)
        if action is Action.REPLY:
            return Plan(
                kind="replied",
                status=None,
                assignee=KEEP,
                detail={**by, "text": text},
                note=self._text("ticket_note_replied", admin=actor.name, text=text),
                done=self._text("ticket_done_replied", ticket=tid),
                news="replied",
                news_admin=actor.name,
                news_text=text,
            )
        if action is Action.RESOLVE:
            return Plan(
                kind="resolved",
                status="resolved",
                assignee=KEEP,
                detail={**by, "note": text},
                note=self._text("ticket_note_resolved", admin=actor.name, text=text),
                done=self._text("ticket_done_resolved", ticket=tid),
                news="resolved",
                news_admin=actor.name,
                news_text=text,
            )
        return self._assign(request, ticket, stale=stale)

    def _assign(self, request: ActionRequest, ticket: TicketRecord, *, stale: bool) -> Plan | str:
        actor, action, tid = request.actor, request.action, ticket.id
        chosen = actor if action is Action.ASSIGN_ME else request.assignee
        if chosen is None:
            return self._text("ticket_refused_no_assignee", ticket=tid)
        current = ticket.assignee
        if current is not None and _assignee_key(current) == chosen.key:
            if chosen.key == actor.key:
                return self._text("ticket_refused_yours", ticket=tid)
            return self._text("ticket_refused_assigned", ticket=tid, assignee=chosen.name)
        if current is not None and action is Action.ASSIGN_ME and stale:
            # Someone took it since the card was drawn (two "assign to me" at once): theirs.
            name = str(current.get("name") or "")
            return self._text("ticket_refused_assigned", ticket=tid, assignee=name)
        if chosen.key == actor.key:
            note = self._text("ticket_note_took", admin=actor.name)
            done = self._text("ticket_done_took", ticket=tid)
        else:
            note = self._text("ticket_note_assigned", admin=actor.name, assignee=chosen.name)
            done = self._text("ticket_done_assigned", ticket=tid, assignee=chosen.name)
        return Plan(
            kind="assigned",
            status="assigned",
            assignee={"platform": chosen.platform, "user_id": chosen.user_id, "name": chosen.name},
            detail={"by": actor.name},
            note=note,
            done=done,
            news="assigned",
            news_admin=chosen.name,
        )

    def requester_reopen(self, who: Requester) -> Plan:
        """A requester says their resolved ticket still fails: it reopens, the admins' cards
        say so, and the other requesters are told (not the one who said it)."""
        return Plan(
            kind="reopened",
            status="open",
            assignee=None,
            detail={"by": who.name, "requester": True},
            note=self._text("ticket_note_requester_reopened", requester=who.name),
            done="",
            news="reopened",
            news_admin=who.name,
            skip_requester=who.key,
        )

    def done(self, plan: Plan, *, stale: bool) -> str:
        """The line for the admin who acted (saying so when it was done on the ticket as it is
        now, not as their card showed it)."""
        if stale:
            return plan.done + " " + self._text("ticket_done_on_current")
        return plan.done

    # -- which jobs a change queues -----------------------------------------------------------

    def opening_jobs(self, change: TicketChange, requester_name: str) -> list[NewJob]:
        """A ticket opened: its card on every admins' channel; joined: the cards updated, and
        a note that the requester joined."""
        queued: list[NewJob] = []
        for platform in self.card_platforms(change):
            if change.kind == "opened":
                queued.append(NewJob(platform, "post_card", {}))
            else:
                queued.append(NewJob(platform, "update_card", {}))
                text = self._text("ticket_note_joined", requester=requester_name)
                queued.append(NewJob(platform, "note", {"text": text}))
        return queued

    def change_jobs(self, plan: Plan, change: TicketChange) -> list[NewJob]:
        """An action applied: every card updated with the plan's note in its thread, and each
        requester with a chat told the news (a terminal requester is told by the service)."""
        queued: list[NewJob] = []
        for platform in self.card_platforms(change):
            queued.append(NewJob(platform, "update_card", {}))
            queued.append(NewJob(platform, "note", {"text": plan.note}))
        for requester in change.requesters:
            if plan.news is None or not has_chat(requester):
                continue  # a terminal requester has no chat to be told in
            if requester.key == plan.skip_requester:
                continue
            news = {
                "requester": requester.as_json(),
                "news": plan.news,
                "ticket": change.ticket.id,
                "admin": plan.news_admin,
                "text": plan.news_text,
            }
            queued.append(NewJob(Platform.answering(requester.platform), "tell_requester", news))
        return queued

    def card_platforms(self, change: TicketChange) -> list[str]:
        """Where the ticket has a card, or should: each admins' channel, and each card posted."""
        return sorted(set(change.admin_platforms) | set(change.card_platforms) | self.standing)

    def _text(self, key: str, **values: str) -> str:
        return self.words.text(key, **values)


def _assignee_key(assignee: dict[str, Any]) -> str:
    return f"{assignee.get('platform')}:{assignee.get('user_id')}"


__all__ = ["NEWS_TEXTS", "ActionRules", "Plan", "has_chat"]
