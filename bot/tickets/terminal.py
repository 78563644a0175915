"""Tickets for the terminal (``python -m bot tickets list|show``): a table, or one ticket with
its history and what still waits to be delivered.

Its own room: the terminal shows the stored ticket as it is (the bounce's and the path's raw
facts, the events, the pending jobs), for whoever runs the bot; the cards (``card.py``) show
it to the admins in their words.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from bot.store import Requester, TicketEvent, TicketJob, TicketRecord


def _summary(ticket: TicketRecord) -> dict[str, Any]:
    bounce = ticket.bounce or {}
    recipients = bounce.get("recipients") or []
    return {
        "id": ticket.id,
        "status": ticket.status,
        "requester": ticket.requester.name,
        "recipient": recipients[0] if recipients else None,
        "code": bounce.get("status"),
        "assignee": (ticket.assignee or {}).get("name"),
        "created": ticket.created_at.isoformat(timespec="seconds"),
        "updated": ticket.updated_at.isoformat(timespec="seconds"),
    }


def table(tickets: list[TicketRecord], *, as_json: bool = False) -> str:
    """The tickets, one line each (or a JSON list)."""
    rows = [_summary(t) for t in tickets]
    if as_json:
        return json.dumps(rows, ensure_ascii=False)
    if not rows:
        return "No tickets."
    columns = ("id", "status", "code", "recipient", "requester", "assignee", "created")
    cells = [[str(row[c] or "-") for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def show(
    ticket: TicketRecord,
    events: list[TicketEvent],
    requesters: list[Requester],
    *,
    pending: list[TicketJob] | None = None,
    as_json: bool = False,
) -> str:
    """One ticket: its facts, the path, the note, who asked, its history, and what still waits
    to reach the admins' channels, the requesters or the webhook (``pending`` jobs)."""
    waiting = [
        {
            "target": job.target,
            "kind": job.kind,
            "attempts": job.attempts,
            "next_attempt": job.next_attempt_at.isoformat(timespec="seconds"),
            "last_error": job.last_error,
        }
        for job in pending or []
    ]
    if as_json:
        data = {
            **_summary(ticket),
            "bounce": {k: v for k, v in ticket.bounce.items() if k != "text"},
            "path": ticket.path,
            "note": ticket.note,
            "requesters": [asdict(r) for r in requesters],
            "events": [
                {"at": e.at.isoformat(timespec="seconds"), "actor": e.actor, "kind": e.kind}
                | {"detail": e.detail}
                for e in events
            ],
            "pending_deliveries": waiting,
        }
        return json.dumps(data, ensure_ascii=False)
    summary = _summary(ticket)
    lines = [f"{ticket.id}  [{ticket.status}]"]
    lines += [f"  {k}: {v}" for k, v in summary.items() if k not in ("id", "status") and v]
    facts = ("status", "smtp_code", "resolver", "sender", "subject", "date", "reporting_server")
    lines += [f"  bounce {k}: {ticket.bounce[k]}" for k in facts if ticket.bounce.get(k)]
    lines += [f"  path {k}: {v}" for k, v in ticket.path.items()]
    if ticket.note:
        lines.append(f"  note: {ticket.note}")
    lines.append("  requesters: " + ", ".join(f"{r.name} ({r.key})" for r in requesters))
    lines.append("  history:")
    for event in events:
        line = f"    {event.at.isoformat(timespec='seconds')}  {event.kind}  by {event.actor}"
        said = event.detail.get("text") or event.detail.get("note")  # a reply, a resolution
        lines.append(f"{line}: {said}" if isinstance(said, str) and said else line)
    if waiting:
        lines.append("  waiting to be delivered:")
        for job in waiting:
            line = f"    {job['target']} {job['kind']}  attempts {job['attempts']}"
            if job["last_error"]:
                line += f", next {job['next_attempt']}, last error: {job['last_error']}"
            lines.append(line)
    return "\n".join(lines)


__all__ = ["show", "table"]
