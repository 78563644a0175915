"""The rules of a change a requester asked for and an admin approves ("Approve and apply"):
the claim and its refusals, what came of the change, and the record the history and the
webhook keep of it (who asked, who approved, the cmdlet and its parameters, before and after,
when).

Beside ``rules.py`` (the other actions) and as pure as it: no store, no directory, no I/O;
``fixes.py`` claims, asks the directory, and records what these rules say.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

from bot.store import KEEP, Requester, TicketRecord
from bot.tickets.card import asked_fix, describe_fix
from bot.tickets.protocol import ActionRequest, Actor
from bot.tickets.rules import Plan
from dialogs.directory import FixOutcome, FixPlan, Lookup, RecipientSetting
from knowledge.kb import ConversationText

#: How long an approved change may take before another approval may try it again (the
#: process that claimed it died while the change was being made).
FIX_CLAIM_TIMEOUT: Final = timedelta(minutes=5)


class FixRules:
    """The rules of a change asked for, in the knowledge base's words."""

    def __init__(self, words: ConversationText) -> None:
        self.words = words

    def fix_asked(self, ticket: TicketRecord, who: Requester, path: dict[str, Any]) -> Plan:
        """A requester who joined the open ticket asks for a change it did not ask for yet:
        the ticket's path keeps it (``path``: the request's), the cards say so."""
        changed = {**ticket.path, **{k: v for k, v in path.items() if k.startswith("fix")}}
        fix = asked_fix(replace(ticket, path=changed))
        change = "" if fix is None else describe_fix(fix, self.words)
        return Plan(
            kind="fix_asked",
            status=None,
            assignee=KEEP,
            detail={"by": who.name, "requester": True, "fix": changed.get("fix")},
            note=self._text("ticket_note_fix_asked", requester=who.name, change=change),
            done="",
            path=changed,
        )

    def fix_approval(
        self,
        request: ActionRequest,
        ticket: TicketRecord,
        requesters: Sequence[Requester],
        *,
        stale: bool,
        resolver: str,
        now: datetime,
    ) -> Plan | str:
        """An admin's "Approve and apply": the claim recorded before the change is made (so
        that two clicks cannot both make it), or why it is refused. Unlike the other actions,
        a stale card is refused, never applied to the ticket as it is now: the admin approves
        what they saw."""
        actor, tid = request.actor, ticket.id
        fix = asked_fix(ticket)
        if ticket.status == "resolved":
            return self._text("ticket_refused_resolved", ticket=tid, admin=resolver)
        if fix is None:
            return self._text("ticket_refused_no_fix", ticket=tid)
        if fix.done:
            return self._text("ticket_refused_fix_done", ticket=tid, admin=fix.by)
        if stale:
            return self._text("ticket_refused_fix_stale", ticket=tid)
        if fix.state == "approving" and now - ticket.updated_at < FIX_CLAIM_TIMEOUT:
            return self._text("ticket_refused_fix_busy", ticket=tid, admin=fix.by)
        change = describe_fix(fix, self.words)
        return Plan(
            kind="fix_approved",
            status=None,
            assignee=KEEP,
            detail={
                "by": actor.name,
                "approved_by": _person(actor),
                "asked_by": [_asker(r) for r in requesters],
                "address": fix.recipient,
                "method": fix.method,
            },
            note=self._text("ticket_note_fix_approved", admin=actor.name, change=change),
            done="",
            path={**ticket.path, "fix_state": "approving", "fix_by": actor.name},
        )

    def fix_result(
        self,
        request: ActionRequest,
        ticket: TicketRecord,
        requesters: Sequence[Requester],
        planned: FixPlan | Lookup,
        outcome: FixOutcome | None,
        *,
        at: datetime,
    ) -> Plan:
        """What came of an approved change, recorded in full (who asked, who approved, the
        cmdlet and its parameters, the setting before and after, when): made, the ticket is
        resolved and the requesters hear it was; not made, it stays open and the cards'
        threads and the admin hear why."""
        actor, tid = request.actor, ticket.id
        fix = asked_fix(ticket)
        recipient = fix.recipient if fix is not None else planned.address
        record = fix_record(actor, requesters, planned, outcome, at=at)
        if outcome is not None and outcome.applied:
            command = outcome.plan.command
            resolution = self._text(
                "ticket_fix_resolution",
                recipient=recipient,
                before=self._setting(outcome.before),
                after=self._setting(outcome.after),
            )
            return Plan(
                kind="fix_applied",
                status="resolved",
                assignee=KEEP,
                detail={"by": actor.name, **record, "note": resolution},
                note=self._text("ticket_note_fix_applied", admin=actor.name, command=command),
                done=self._text("ticket_done_fix_applied", ticket=tid, recipient=recipient),
                news="resolved",
                news_admin=actor.name,
                news_text=resolution,
                path={
                    **ticket.path,
                    "fix_state": "applied",
                    "fix_by": actor.name,
                    "fix_command": command,
                },
            )
        why = self._why_not(recipient, planned, outcome)
        return Plan(
            kind="fix_failed",
            status=None,
            assignee=KEEP,
            detail={"by": actor.name, **record, "why": why},
            note=self._text("ticket_note_fix_failed", admin=actor.name, why=why),
            done=self._text("ticket_done_fix_failed", ticket=tid, why=why),
            path={**ticket.path, "fix_state": "failed", "fix_by": actor.name},
        )

    def _why_not(
        self, recipient: str, planned: FixPlan | Lookup, outcome: FixOutcome | None
    ) -> str:
        """Why a change was not made, in a sentence: the problem (Exchange's own words after
        it), or a read-back that still refuses outside senders."""
        found = planned if isinstance(planned, Lookup) else outcome
        problem = found.problem if found is not None else None
        detail = found.detail if found is not None else ""
        key = f"ticket_fix_problem_{problem}" if problem else "ticket_fix_problem_not_applied"
        why = self._text(key, recipient=recipient)
        return self._text("ticket_fix_problem_said", why=why, detail=detail) if detail else why

    def _setting(self, setting: RecipientSetting | None) -> str:
        """How a recipient was set, in the words of the 5.7.12 fix."""
        if setting is None:
            return self._text("ticket_fix_setting_unknown")
        if setting.require_sender_authentication:
            return self._text("ticket_fix_setting_inside")
        listed = (
            setting.accept_messages_only_from + setting.accept_messages_only_from_senders_or_members
        )
        if listed:
            return self._text("ticket_fix_setting_listed", count=str(len(listed)))
        return self._text("ticket_fix_setting_open")

    def _text(self, key: str, **values: str) -> str:
        return self.words.text(key, **values)


def fix_record(
    approver: Actor,
    requesters: Sequence[Requester],
    planned: FixPlan | Lookup,
    outcome: FixOutcome | None,
    *,
    at: datetime,
) -> dict[str, Any]:
    """Everything the history and the webhook keep of a change made (or tried) on an
    admin's approval: who asked, who approved, the cmdlet and its parameters, the command,
    the setting before and after, the problem if any, and when."""
    plan = outcome.plan if outcome is not None else planned
    command = plan.command if isinstance(plan, FixPlan) else ""
    cmdlet, parameters = command_parts(command)
    found = planned if isinstance(planned, Lookup) else outcome
    return {
        "asked_by": [_asker(r) for r in requesters],
        "approved_by": _person(approver),
        "address": plan.address,
        "method": plan.method if isinstance(plan, FixPlan) else None,
        "cmdlet": cmdlet,
        "parameters": parameters,
        "command": command,
        "warnings": list(plan.warnings) if isinstance(plan, FixPlan) else [],
        "before": outcome.before.to_json() if outcome and outcome.before else None,
        "after": outcome.after.to_json() if outcome and outcome.after else None,
        "problem": found.problem if found is not None else None,
        "problem_detail": found.detail if found is not None else "",
        "at": at.isoformat(),
    }


def command_parts(command: str) -> tuple[str, dict[str, str]]:
    """The cmdlet and its parameters of a PowerShell command line (``Set-DistributionGroup
    -Identity "sales@contoso.com" -RequireSenderAuthenticationEnabled $false``): each
    ``-Name value`` pair, a switch without a value as "" ; quotes and ``@{...}`` kept whole."""
    tokens = _TOKEN.findall(command.strip())
    if not tokens:
        return "", {}
    parameters: dict[str, str] = {}
    name: str | None = None
    for token in tokens[1:]:
        if token.startswith("-") and len(token) > 1 and token[1].isalpha():
            if name is not None:
                parameters[name] = ""
            name = token[1:].rstrip(":")
        elif name is not None:
            parameters[name] = _unquote(token)
            name = None
    if name is not None:
        parameters[name] = ""
    return tokens[0], parameters


# A PowerShell token: a quoted string, a hashtable or array literal, or a run without spaces.
_TOKEN: Final = re.compile(r"""'[^']*'|"[^"]*"|@\{[^}]*\}|@\([^)]*\)|\S+""")


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    return token


def _person(actor: Actor) -> dict[str, str]:
    return {"key": actor.key, "name": actor.name}


def _asker(requester: Requester) -> dict[str, str]:
    return {"key": requester.key, "name": requester.name}


__all__ = ["FIX_CLAIM_TIMEOUT", "FixRules", "command_parts", "fix_record"]
