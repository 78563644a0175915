"""The fix applied on the admin's approval: after the steps, "Apply it for me" shows the exact
command the directory would run and asks to confirm it; only a confirmation runs it, and the
recipient is read back and reported before and after.

Nothing here changes a recipient without the confirm question's yes (a click, or words that are
plainly a yes: see :func:`confirmed`); the steps stay the way to do it by hand.
"""

from __future__ import annotations

import logging

from dialogs import admin_fix, recipient_lookup
from dialogs.answers import match_exact
from dialogs.directory import FixMethod, FixOutcome, FixPlan, Lookup, RecipientSetting
from dialogs.replies import Fact, Step, StepsAnswer, Text
from dialogs.turn import Turn

log = logging.getLogger(__name__)


async def offer(turn: Turn) -> None:
    """ "Apply it for me": the change planned and shown word for word, then "shall I run it?";
    when it cannot be planned, why, and the other answers to "did that fix it?"."""
    directory, address = turn.context.directory, turn.recipient
    if directory is None or address is None or not admin_fix.can_apply(turn):
        turn.say("fallback")  # a click on an old card: the offer is no longer open
        return
    method: FixMethod = (
        "allowed_senders" if turn.state.slots.get("method") == "allowed_senders" else "allow_all"
    )
    sender = turn.fact("sender") if method == "allowed_senders" else None
    planned: FixPlan | Lookup | None
    try:
        planned = await directory.plan_fix(turn.message, address, method, sender)
    except Exception:  # the directory's failure must not lose the conversation
        log.exception("planning a recipient's change failed")
        planned = Lookup(address, problem="unavailable")
    found = recipient_lookup.entry(turn)
    if not isinstance(planned, FixPlan):
        found["fix"] = "refused" if planned is None else "unplanned"
        if planned is None:
            turn.say("apply_not_allowed", recipient=address)
        else:
            _say_problem(turn, "apply_cannot_plan", planned.detail, recipient=address)
        admin_fix.ask_fixed(turn)
        return
    turn.replies.append(_plan_answer(turn, planned))
    turn.state.fix_plan = planned.to_json()
    ask_confirm(turn)


def ask_confirm(turn: Turn) -> None:
    """Ask whether to run the change shown (or, when none waits, whether the steps fixed it)."""
    plan = FixPlan.from_json(turn.state.fix_plan)
    if plan is None:
        admin_fix.ask_fixed(turn)
        return
    turn.ask(
        "apply_confirm",
        turn.text("ask_apply_confirm", recipient=plan.address),
        turn.choice_options("apply_confirm"),
    )


def confirmed(turn: Turn) -> bool | None:
    """Whether the message is plainly a yes to running the change: the button, one of the yes
    words alone ("go ahead", "yes do it"), or words the language layer read as a yes with no
    no in them. False for a no ("no wait", "dont do it", "not yet", a yes ruled out); None
    when it is neither plainly (then the question is asked again)."""
    value = turn.message.value or {}
    if value.get("slot") == "apply_confirm":
        return value.get("answer") == "yes"
    exact = match_exact(turn.message.text, turn.choice_options("apply_confirm"))
    if exact is not None:
        return exact == "yes"
    reading = turn.reading
    if reading is None:
        return None  # only a yes word alone, without the layer to read negations
    if (
        reading.intent in ("deny", "cancel")
        or "yes" in reading.ruled_out("apply_confirm")
        or "no" in reading.values("apply_confirm")  # "dont do it" reads both: the no wins
    ):
        return False
    return reading.intent == "affirm" or "yes" in reading.values("apply_confirm") or None


async def confirm(turn: Turn, answer: str) -> None:
    """The answer to "shall I run it?": yes runs the change and reports it read back; anything
    else changes nothing. Then "did that fix it?" again, without the offer once it ran."""
    plan = FixPlan.from_json(turn.state.fix_plan)
    turn.state.fix_plan = {}
    directory = turn.context.directory
    if plan is None or directory is None:
        turn.say("fallback")  # a click on an old card: nothing waits for a confirmation
        return
    if answer != "yes":
        turn.say("apply_cancelled", recipient=plan.address)
        admin_fix.ask_fixed(turn)
        return
    try:
        outcome = await directory.apply_fix(turn.message, plan)
    except Exception:  # the directory's failure must not lose the conversation
        log.exception("applying a recipient's change failed")
        outcome = FixOutcome(plan, None, None, problem="unavailable")
    found = recipient_lookup.entry(turn, plan.address)
    before = outcome.before or recipient_lookup.found(turn, plan.address)
    if outcome.problem is not None:
        found["fix"] = "failed"
        _say_problem(turn, f"apply_{outcome.problem}", outcome.detail, recipient=plan.address)
    else:
        found["fix"] = "applied" if outcome.applied else "failed"
        if outcome.after is not None:
            found["setting"] = outcome.after.to_json()
        turn.replies.append(Text(_report(turn, plan, before, outcome)))
    admin_fix.ask_fixed(turn)


def _plan_answer(turn: Turn, plan: FixPlan) -> StepsAnswer:
    """The change as the steps are shown: the command to copy, and what to read first."""
    method = turn.knowledge.method(plan.method)
    facts = [Fact(turn.text("facts_recipient"), plan.address)]
    if plan.sender:
        facts.append(Fact(turn.text("facts_sender"), plan.sender))
    return StepsAnswer(
        title=turn.text("apply_plan_title"),
        intro=turn.text(
            "apply_plan_intro", recipient=plan.address, method_short=method.short_label.lower()
        ),
        facts=tuple(facts),
        steps=(Step(turn.text("apply_plan_step"), code=plan.command),),
        notes_label=turn.text("apply_plan_warnings"),
        notes=plan.warnings,
        check_label=turn.text("facts_check"),
        check=None,
        source_label=turn.text("facts_source"),
        source=method.source,
    )


def _report(turn: Turn, plan: FixPlan, before: RecipientSetting | None, outcome: FixOutcome) -> str:
    """What changed, read back: each setting before and after, and whether it is fixed."""
    after = outcome.after
    key = "apply_done" if outcome.applied else "apply_not_shown"
    lines = [turn.text(key, recipient=plan.address)]
    rows = [
        (
            "setting_require_authentication",
            _switch(turn, before.require_sender_authentication if before else None),
            _switch(turn, after.require_sender_authentication if after else None),
        )
    ]
    for name, field in (
        ("setting_accept_only_from", "accept_messages_only_from"),
        (
            "setting_accept_only_from_senders_or_members",
            "accept_messages_only_from_senders_or_members",
        ),
    ):
        was = getattr(before, field, None)
        now = getattr(after, field, None)
        if was or now:
            rows.append((name, _senders(turn, was), _senders(turn, now)))
    lines += [
        turn.text("apply_row", setting=turn.text(name), before=was_said, after=now_said)
        for name, was_said, now_said in rows
    ]
    return "\n".join(lines)


def _switch(turn: Turn, value: bool | None) -> str:
    if value is None:
        return turn.text("setting_unread")
    return turn.text("setting_on" if value else "setting_off")


def _senders(turn: Turn, senders: tuple[str, ...] | None) -> str:
    if senders is None:
        return turn.text("setting_unread")
    return ", ".join(senders) if senders else turn.text("setting_nobody")


def _say_problem(turn: Turn, key: str, detail: str, **values: str) -> None:
    """A problem in a sentence, with Exchange's own words when it gave any."""
    said = turn.text(key, **values)
    if detail:
        said += " " + turn.text("directory_detail", detail=detail)
    turn.replies.append(Text(said))
