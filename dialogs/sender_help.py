"""The sender's path: who can fix it, and a ready-to-send note for that admin.

When the recipient's domain is one of our own (ORG_DOMAINS), our helpdesk can fix it, so the bot
offers a ticket instead of a note to write.
"""

from __future__ import annotations

from dialogs import admin_fix
from dialogs.answers import normalise
from dialogs.replies import SenderAnswer
from dialogs.turn import Turn
from knowledge.kb import fill_placeholders

_DONT_KNOW = frozenset(
    {"skip", "don't know", "dont know", "i don't know", "no idea", "not sure", "unknown", "idk"}
)


def advance(turn: Turn) -> None:
    """Ask for the recipient if unknown, then answer."""
    if turn.recipient is None and "recipient" not in turn.state.slots:
        turn.ask("recipient", turn.text("ask_recipient_address"))
        return
    domain = recipient_domain(turn)
    if domain and domain in turn.context.org_domains:
        turn.ask(
            "sender_own_domain",
            turn.text("sender_own_domain", recipient_domain=domain, recipient=turn.recipient_label),
            turn.choice_options("sender_own_domain"),
        )
        return
    give_answer(turn)


def recipient_in(turn: Turn, text: str) -> str | None:
    """The address an answer gives; "" for "don't know"; None when it gives neither."""
    bounce = turn.intent.bounce
    addresses = bounce.recipients if bounce is not None else ()
    if addresses:
        return addresses[0]
    return "" if normalise(text) in _DONT_KNOW else None


def take_recipient(turn: Turn, text: str) -> None:
    """Record the recipient's address from an answer ("don't know": go on without one)."""
    address = recipient_in(turn, text) or ""
    turn.state.slots["recipient"] = address
    if not address:
        turn.say("sender_unknown_recipient")


def recipient_domain(turn: Turn) -> str | None:
    """The domain of the recipient's address, if known."""
    recipient = turn.recipient
    return recipient.rsplit("@", 1)[1].lower() if recipient and "@" in recipient else None


def _failures(turn: Turn) -> tuple[list[str], str]:
    """Every failed recipient, and their codes ("5.7.133 for a@x, 5.7.134 for b@y" when the
    codes differ; the one code when they agree)."""
    bounce = turn.state.bounce or {}
    failures = [f for f in bounce.get("failures") or () if isinstance(f, list) and f]
    pairs = [(str(f[0]), str(f[1]) if len(f) > 1 and f[1] else "") for f in failures]
    recipients = [address for address, _ in pairs] or list(turn.recipients)
    codes = {code for _, code in pairs if code}
    if len(codes) > 1:
        return recipients, ", ".join(f"{code} for {address}" for address, code in pairs if code)
    return recipients, codes.pop() if codes else ""


def give_answer(turn: Turn) -> None:
    """Who can fix it, what to do, and the note for the recipient's admin."""
    guidance = turn.knowledge.sender_guidance
    domain = recipient_domain(turn) or "the recipient's organization"
    recipients, statuses = _failures(turn)
    values = {
        "recipient": " and ".join(recipients) or "the recipient",
        "recipient_domain": domain,
        "sender": turn.fact("sender") or "(your address)",
        "status": statuses or turn.fact("status") or "5.7.12",
        "smtp_code": turn.fact("smtp_code") or "550",
        "date": turn.fact("date") or "(the date you sent it)",
        "subject": turn.fact("subject") or "(the subject of your message)",
        "article_url": guidance.article_url,
    }
    note = guidance.admin_note
    if guidance.admin_note_related is not None and admin_fix.related(turn):
        note = guidance.admin_note_related  # 5.7.124, 5.7.129: only "add me to the list"
    turn.replies.append(
        SenderAnswer(
            who_can_fix=fill_placeholders(guidance.who_can_fix.text, values),
            what_to_do=fill_placeholders(guidance.what_to_do.text, values),
            facts=turn.bounce_facts(),
            note_heading=turn.text("sender_note_heading", recipient_domain=domain),
            note_subject_label=turn.text("note_subject_label"),
            note_subject=fill_placeholders(note.subject, values),
            note_body=fill_placeholders(note.body, values),
            source_label=turn.text("facts_source"),
            source=guidance.who_can_fix.source,
        )
    )
    turn.finished = True
    turn.say("sender_done")
    turn.state.flow, turn.state.pending = "done", None
