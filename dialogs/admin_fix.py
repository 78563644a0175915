"""The admin's path: recipient type, method, admin centre, then the steps and "did that fix it?".

A question is asked only when its answer changes the steps: a code that names the recipient type
skips that question, and an admin centre offered only where the knowledge base has steps for it.
The further failed recipients of a bounce, each group asked about once, are kept apart in
:mod:`dialogs.admin_targets`.
"""

from __future__ import annotations

import logging
import re

from dialogs import recipient_lookup
from dialogs.admin_targets import current_target, target_types
from dialogs.answers import Option, find_mention
from dialogs.directory import Lookup, RecipientSetting
from dialogs.replies import Step, StepsAnswer, Text
from dialogs.turn import Turn
from knowledge.kb import FAMILIES, RECIPIENT_TYPE_IDS, Procedure

log = logging.getLogger(__name__)

_TYPE_IDS = frozenset(RECIPIENT_TYPE_IDS)

_BOLD = re.compile(r"\*\*(.+?)\*\*")


# ---- the options of each question --------------------------------------------------------------


def type_options(turn: Turn, type_ids: tuple[str, ...] | None = None) -> tuple[Option, ...]:
    """Recipient types to choose from (all, or the ``type_ids`` given)."""
    mentions = turn.knowledge.mentions("recipient_type")
    return tuple(
        Option(t.id, t.label, t.synonyms, mentions[t.id])
        for t in turn.knowledge.recipient_types
        if type_ids is None or t.id in type_ids
    )


def method_options(turn: Turn) -> tuple[Option, ...]:
    """Method 1 (allow everyone) and method 2 (allowed senders list)."""
    mentions = turn.knowledge.mentions("method")
    return tuple(
        Option(m.id, m.short_label, (m.label, *m.synonyms), mentions[m.id])
        for m in turn.knowledge.methods
    )


def centre_options(turn: Turn, centre_ids: tuple[str, ...] | None = None) -> tuple[Option, ...]:
    """Admin centres to choose from (all, or the ``centre_ids`` given)."""
    mentions = turn.knowledge.mentions("centre")
    return tuple(
        Option(c.id, c.label, c.synonyms, mentions[c.id])
        for c in turn.knowledge.centres
        if centre_ids is None or c.id in centre_ids
    )


# ---- what the conversation already tells ------------------------------------------------------


def family(turn: Turn) -> str | None:
    """The coarse recipient type the bounce tells (its code, or its own words: "The group ...
    only accepts"), or the person said ("our group"), if any."""
    named = turn.fact("named_type")
    if named is not None and named not in FAMILIES:
        named = turn.knowledge.recipient_type(named).family if named in _TYPE_IDS else None
    return turn.fact("recipient_type") or named or turn.state.slots.get("type_family")


def related(turn: Turn) -> bool:
    """Whether the bounce's code is a relative of 5.7.12 whose fix is the allowed senders list
    (5.7.124, 5.7.129): the sender is not on the recipient's list."""
    status = turn.fact("status")
    if status is None:
        return False
    entry = turn.knowledge.code(status, turn.fact("resolver"), turn.fact("diagnostic") or "")
    return getattr(entry, "fix", "same") == "related"


def sender_inside(turn: Turn) -> bool | None:
    """Whether the sender is inside the recipient's organization (None when unknown)."""
    sender = turn.fact("sender")
    if not sender or "@" not in sender:
        return None
    domain = sender.rsplit("@", 1)[1].lower()
    recipient = turn.recipient
    own = set(turn.context.org_domains)
    if recipient and "@" in recipient:
        own.add(recipient.rsplit("@", 1)[1].lower())
    return domain in own


def type_allowed(turn: Turn, type_id: str) -> bool:
    """Whether an answer naming ``type_id`` fits what the bounce's code says."""
    return type_id in candidate_types(turn)


def candidate_types(turn: Turn) -> tuple[str, ...]:
    """The recipient types still possible: the one chosen, those the code allows, or all."""
    chosen = turn.state.slots.get("recipient_type")
    if chosen:
        return (chosen,)
    found = tuple(t.id for t in turn.knowledge.recipient_types_in_family(family(turn)))
    if turn.state.slots.get("type_family") == "group" and family(turn) == "group":
        found += ("m365_group",)  # "our group" in people's words may be a Microsoft 365 group
    return found


def fill_from_sentence(turn: Turn, text: str) -> None:
    """Recipient type, method and admin centre named in a sentence, when they fit the bounce."""
    slots = turn.state.slots
    recipient_type = find_mention(text, type_options(turn))
    if recipient_type in candidate_types(turn) or (
        recipient_type and not family(turn) and "recipient_type" not in slots
    ):
        slots["recipient_type"] = recipient_type
    method = find_mention(text, method_options(turn))
    if method is not None:
        slots["method"] = method
    centre = find_mention(text, centre_options(turn))
    if centre is not None:
        slots["centre"] = centre


def available_centres(turn: Turn, method: str) -> tuple[str, ...]:
    """Admin centres with steps for ``method`` and at least one of the candidate types."""
    kb = turn.knowledge
    found = {c for t in candidate_types(turn) for c in kb.centres_for(method, t)}
    return tuple(c.id for c in kb.centres if c.id in found)


# ---- the flow -----------------------------------------------------------------------------------


def advance(turn: Turn) -> None:
    """Ask the next missing answer, or give the steps."""
    kb = turn.knowledge
    slots = turn.state.slots
    turn.look_up = recipient_lookup.wanted(turn)
    if turn.look_up is not None:
        return  # looked up first (see look_up), then the path goes on from here
    if not setting_explains(turn) and not recipient_lookup.entry(turn).get("steps_anyway"):
        ask_setting_fine(turn)  # it already accepts outside mail: not a fix to push
        return
    code_family = family(turn)
    named = turn.fact("named_type")
    if "recipient_type" not in slots and named in _TYPE_IDS and named in candidate_types(turn):
        slots["recipient_type"] = named  # the bounce's own words name it
    if "recipient_type" not in slots:
        slots.pop("type_exact", None)
        candidates = candidate_types(turn)
        if code_family is not None and "type_family" not in slots:
            told_by_code = turn.fact("recipient_type") is not None
            turn.say_once(
                "code_tells_type" if told_by_code else "bounce_names_type",
                status=turn.fact("status") or "",
                recipient=turn.recipient_label,
                family_label=kb.conversation.family(code_family).description,
            )
        if len(candidates) == 1:
            slots["recipient_type"] = candidates[0]
        elif code_family is None or "type_family" in slots:
            ask_recipient_type(
                turn,
                narrowed_type_options(turn, [(t,) for t in candidates])
                if "type_family" in slots
                else None,
            )
            return
    if "method" not in slots and related(turn):
        slots["method"] = "allowed_senders"
        turn.say_once("related_code_list_only", status=turn.fact("status") or "")
    if "method" not in slots:
        ask_method(turn)
        return
    method = slots["method"]
    centres = available_centres(turn, method)
    chosen_centre = slots.get("centre")
    if chosen_centre is not None and chosen_centre not in centres:
        del slots["centre"]
        explain_missing_centre(turn, chosen_centre)
        chosen_centre = None
    if chosen_centre is None:
        if len(centres) == 1:
            slots["centre"] = centres[0]
            excluded = centres[0] in turn.state.excluded.get("centre", ())
            turn.say(
                "only_centre_ruled_out" if excluded else "only_centre",
                centre_label=kb.centre(centres[0]).label,
            )
        else:
            ask_centre(turn, centres)
            return
    centre = slots["centre"]
    if "recipient_type" not in slots:
        groups = _types_by_steps(turn, method, centre)
        if len(groups) > 1:
            ask_recipient_type(turn, narrowed_type_options(turn, groups))
            return
        slots["recipient_type"] = groups[0][0]
        slots["type_exact"] = "no"  # the steps are the same for every type the code allows
    for index, target in enumerate(turn.state.targets):
        if not target.get("type"):
            types = target_types(turn, target)
            if len(types) == 1:
                target["type"] = types[0]
            else:
                ask_target_type(turn, index)
                return
    give_steps(turn)


def target_type_options(turn: Turn) -> tuple[Option, ...]:
    """The types the further recipient being asked about can be."""
    index = current_target(turn)
    if index is None:
        return ()
    return type_options(turn, target_types(turn, turn.state.targets[index]))


def ask_target_type(turn: Turn, index: int) -> None:
    """Ask the kind of one further group of failed recipients (once for the group)."""
    target = turn.state.targets[index]
    addresses = [str(a) for a in target.get("addresses") or ()]
    turn.ask(
        "target_type",
        turn.text(
            "ask_target_type",
            recipients=" and ".join(addresses) or "the other recipient",
            status=str(target.get("status") or ""),
        ),
        target_type_options(turn),
    )


def ask_recipient_type(turn: Turn, narrowed: tuple[Option, ...] | None = None) -> None:
    """Ask what kind of recipient it is (among ``narrowed`` when the code narrowed it down)."""
    kb = turn.knowledge
    code_family = family(turn)
    if narrowed is not None and code_family is not None:
        text = turn.text(
            "ask_recipient_type_narrow",
            recipient=turn.recipient_label,
            family_label=kb.conversation.family(code_family).description,
        )
    else:
        text = turn.text("ask_recipient_type", recipient=turn.recipient_label)
    turn.ask("recipient_type", text, narrowed or type_options(turn))


def ask_method(turn: Turn) -> None:
    """Ask method 1 or method 2, each with its trade-off in a line."""
    lines = [turn.text("ask_method", recipient=turn.recipient_label)]
    lines += [f"- **{m.short_label}** ({m.label}): {m.tradeoff}" for m in turn.knowledge.methods]
    turn.ask("method", "\n".join(lines), method_options(turn))


def ask_centre(turn: Turn, centre_ids: tuple[str, ...] | None = None) -> None:
    """Ask where they will make the change, offering only centres that have steps."""
    if centre_ids is None:
        centre_ids = available_centres(turn, turn.state.slots.get("method", "allow_all"))
    turn.ask("centre", turn.text("ask_centre"), centre_options(turn, centre_ids))


def explain_missing_centre(turn: Turn, centre: str) -> None:
    """Say why the admin centre they named has no steps here (mail users: classic EAC only)."""
    kb = turn.knowledge
    if "mail_user" in candidate_types(turn) and centre == "new_eac":
        turn.say("mail_user_classic_only")
        return
    types = candidate_types(turn)
    turn.say(
        "centre_not_available",
        centre_label=kb.centre(centre).label,
        type_label=kb.recipient_type(types[0]).label if len(types) == 1 else "recipient",
    )


def _click_path(procedure: Procedure) -> tuple[str, ...]:
    """What the admin clicks and types: the bold labels and the commands, in order."""
    path: list[str] = []
    for step in procedure.steps:
        for text in (step.text, *step.substeps):
            path += _BOLD.findall(text)
        if step.code:
            path.append(step.code)
    return tuple(path)


def _types_by_steps(turn: Turn, method: str, centre: str) -> list[tuple[str, ...]]:
    """Candidate types that have steps here, grouped by the clicks their steps take."""
    by_path: dict[tuple[str, ...], list[str]] = {}
    for type_id in candidate_types(turn):
        procedures = turn.knowledge.procedures_for(method, type_id, centre)
        if procedures:
            by_path.setdefault(_click_path(procedures[0]), []).append(type_id)
    return [tuple(types) for types in by_path.values()] or [candidate_types(turn)[:1]]


def narrowed_type_options(turn: Turn, groups: list[tuple[str, ...]]) -> tuple[Option, ...]:
    """One option per group of types whose steps are the same ("Distribution group or
    Mail-enabled security group"), answering to every name of the types in it."""
    kb = turn.knowledge
    mentions = kb.mentions("recipient_type")
    options = []
    for types in groups:
        entries = [kb.recipient_type(t) for t in types]
        label = " or ".join(e.label if i == 0 else e.label.lower() for i, e in enumerate(entries))
        synonyms = tuple(s for e in entries for s in (e.label, *e.synonyms))
        phrases = tuple(m for t in types for m in mentions[t])
        options.append(Option(types[0], label, synonyms, phrases))
    return tuple(options)


def give_steps(turn: Turn) -> None:
    """The steps answer (one per kind of failed recipient), then "did that fix it?"."""
    turn.replies.append(steps_answer(turn))
    slots = turn.state.slots
    for target in turn.state.targets:
        type_id = str(target.get("type") or "")
        if type_id not in _TYPE_IDS:
            continue
        status = str(target.get("status") or "")
        entry = turn.knowledge.code(status) if status else None
        method = "allowed_senders" if getattr(entry, "fix", "") == "related" else slots["method"]
        centre = slots["centre"]
        if not turn.knowledge.procedures_for(method, type_id, centre):
            centre = "powershell"
        addresses = [str(a) for a in target.get("addresses") or ()]
        turn.replies.append(
            steps_answer(
                turn,
                type_id=type_id,
                method_id=method,
                centre_id=centre,
                recipients=tuple(addresses),
                status=status or None,
            )
        )
    turn.finished = True
    ask_fixed(turn)


def steps_answer(
    turn: Turn,
    *,
    type_id: str | None = None,
    method_id: str | None = None,
    centre_id: str | None = None,
    recipients: tuple[str, ...] | None = None,
    status: str | None = None,
) -> StepsAnswer:
    """The steps for the chosen recipient type, method and centre, with the bounce's facts
    (or those given, for a further failed recipient)."""
    kb = turn.knowledge
    slots = turn.state.slots
    further = type_id is not None
    type_id = type_id or slots["recipient_type"]
    method_id = method_id or slots["method"]
    centre_id = centre_id or slots["centre"]
    procedure = kb.procedures_for(method_id, type_id, centre_id)[0]
    rtype, method, centre = kb.recipient_type(type_id), kb.method(method_id), kb.centre(centre_id)
    code_family = family(turn)
    type_label = (
        kb.conversation.family(code_family).label
        if slots.get("type_exact") == "no" and code_family and not further
        else rtype.label
    )
    addresses = recipients if recipients is not None else turn.recipients[:1]
    if not further and len(turn.recipients) > 1 and not turn.state.targets:
        addresses = turn.recipients
    recipient = addresses[0] if addresses else None
    values = {
        "recipient": recipient or "<recipient address>",
        "sender": turn.fact("sender") or "<outside sender's address>",
    }
    code = status or turn.fact("status")
    flags = kb.step_flags(
        code,
        None if further else turn.fact("resolver"),
        "" if further else turn.fact("diagnostic") or "",
        sender_inside=sender_inside(turn),
    )

    def fill(text: str) -> str:
        return _fill(text, values)

    target = " and ".join(addresses)
    intro = turn.text(
        "steps_intro",
        target=f"{target} ({type_label})" if target else type_label,
        method_short=method.short_label.lower(),
        centre_label=centre.label,
    )
    intro = f"{intro} {centre.how_to_open}"
    if len(addresses) > 1:
        intro += " " + turn.text("steps_each_recipient")
    before = [fill(note.text) for note in kb.notes_for(procedure, flags, "before")]
    if before:
        intro += "\n\n" + turn.text("before_you_start") + "\n" + "\n".join(f"- {n}" for n in before)
    steps = tuple(
        Step(
            fill(s.text),
            tuple(fill(sub) for sub in s.substeps),
            fill(s.code) if s.code else None,
        )
        for s in procedure.steps_for(flags)
    )
    check = fill(procedure.check) if procedure.check else None
    if check is not None and any(step.code == check for step in steps):
        check = None  # the last step already runs it
    facts = turn.bounce_facts(type_label)
    if further:
        facts = tuple(f for f in facts if f.label not in (turn.text("facts_recipient"),))
    return StepsAnswer(
        title=procedure.title,
        intro=intro,
        facts=facts,
        steps=steps,
        notes_label=turn.text("facts_notes"),
        notes=tuple(fill(note.text) for note in kb.notes_for(procedure, flags, "after")),
        check_label=turn.text("facts_check"),
        check=check,
        source_label=turn.text("facts_source"),
        source=procedure.source,
    )


def _fill(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


# ---- after the steps --------------------------------------------------------------------------


def fixed_options(turn: Turn) -> tuple[Option, ...]:
    """ "Did that fix it?": yes, no, escalate, and "Apply it for me" when the bot may."""
    options = turn.choice_options("fixed")
    return (*options, *turn.choice_options("fixed_apply")) if can_apply(turn) else options


def ask_fixed(turn: Turn) -> None:
    """Ask whether the change fixed it (after the steps, or after the bot made it)."""
    turn.ask("fixed", turn.text("ask_fixed"), fixed_options(turn))


def can_apply(turn: Turn) -> bool:
    """Whether to offer making the change: the directory found the recipient as the steps have
    it, its setting explains the bounce, and no earlier offer was taken, refused or failed."""
    setting = recipient_lookup.found(turn)
    slots = turn.state.slots
    method = slots.get("method")
    return (
        turn.context.directory is not None
        and setting is not None
        and setting.type_id is not None
        and setting.type_id == slots.get("recipient_type")
        and recipient_lookup.explains(setting, related(turn))
        and recipient_lookup.entry(turn).get("fix") not in recipient_lookup.FIX_DONE
        and len(turn.recipients) == 1
        and not turn.state.targets
        and (method == "allow_all" or (method == "allowed_senders" and bool(turn.fact("sender"))))
    )


def after_fixed(turn: Turn, answer: str) -> bool:
    """Handle "did that fix it?". Returns True when the user asked to escalate."""
    if answer == "yes":
        turn.say("fixed_yes")
        turn.state.flow, turn.state.pending = "done", None
        return False
    if answer == "escalate":
        return True
    turn.ask("after_failure", turn.text("fixed_no"), turn.choice_options("after_failure"))
    return False


def setting_explains(turn: Turn) -> bool:
    """Whether the recipient's setting explains the bounce (True when the directory did not
    tell: then the steps are the answer, as without one)."""
    setting = recipient_lookup.found(turn)
    return setting is None or recipient_lookup.explains(setting, related(turn))


def ask_setting_fine(turn: Turn) -> None:
    """The recipient already accepts outside mail: the cause is elsewhere; offer the helpdesk
    (or the steps anyway)."""
    turn.ask(
        "setting_fine",
        turn.text("directory_not_the_setting", status=turn.fact("status") or "5.7.12"),
        turn.choice_options("setting_fine"),
    )


def steps_anyway(turn: Turn) -> None:
    """The admin wants the steps although the setting does not explain the bounce."""
    found = recipient_lookup.entry(turn)
    if found:
        found["steps_anyway"] = True
    advance(turn)


# ---- the organization's directory ----------------------------------------------------------------


async def look_up(turn: Turn) -> bool:
    """Look up the recipient ``advance`` stopped for and say what was found; False when it
    stopped for none. The directory says None for anyone it does not answer (then nothing is
    said, and the conversation goes on as without a directory)."""
    address, turn.look_up = turn.look_up, None
    directory = turn.context.directory
    if address is None or directory is None or recipient_lookup.wanted(turn) != address:
        return False
    lookup: Lookup | None
    try:
        lookup = await directory.look_up(turn.message, address)
    except Exception:  # the directory's failure must not lose the conversation
        log.exception("looking up a recipient failed")
        lookup = Lookup(address, problem="unavailable")
    recipient_lookup.keep(turn, address, lookup)
    if lookup is not None:
        say_found(turn, address)
    return True


def say_found(turn: Turn, address: str) -> None:
    """What the directory found, in a message: the type (taken, so it is not asked), the
    setting in words and the accept lists; or the problem, plainly."""
    problem = recipient_lookup.problem_of(turn, address)
    if problem is not None:
        kind, detail = problem
        said = turn.text(f"directory_{kind}", recipient=address)
        if detail:
            said += " " + turn.text("directory_detail", detail=detail)
        turn.replies.append(Text(said))
        return
    setting = recipient_lookup.found(turn, address)
    if setting is None:
        return
    turn.replies.append(Text(" ".join(_found_sentences(turn, address, setting))))


def _found_sentences(turn: Turn, address: str, setting: RecipientSetting) -> list[str]:
    slots = turn.state.slots
    if setting.type_id in _TYPE_IDS:
        slots["recipient_type"] = setting.type_id
        slots.pop("type_family", None)
        slots.pop("type_exact", None)
        label = turn.knowledge.recipient_type(setting.type_id).label
        said = [turn.text("directory_found", recipient=address, type_label=label)]
    else:  # asked as without a directory
        said = [
            turn.text("directory_found_other", recipient=address, type_details=setting.type_details)
        ]
    required = setting.require_sender_authentication
    said.append(
        turn.text("directory_requires_authentication" if required else "directory_accepts_outside")
    )
    lists = (
        *setting.accept_messages_only_from,
        *setting.accept_messages_only_from_senders_or_members,
    )
    if lists:
        said.append(turn.text("directory_accept_list", senders=", ".join(lists)))
        if related(turn):
            said.append(turn.text("directory_list_code", status=turn.fact("status") or ""))
    return said


def switch_method(turn: Turn) -> None:
    """Try the other method, keeping the admin centre where it has steps."""
    slots = turn.state.slots
    current = slots.get("method", "allow_all")
    slots["method"] = next(m.id for m in turn.knowledge.methods if m.id != current)
    if slots.get("centre") not in available_centres(turn, slots["method"]):
        slots.pop("centre", None)
    advance(turn)
