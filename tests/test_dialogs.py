"""The flows, turn by turn, through the pure dialog engine (no store, no channel).

Every recipient type x method x admin centre the knowledge base has steps for is walked to its
answer, and the article's UI labels are checked in order in what the admin gets.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dialogs.asking import ASKS
from dialogs.conversation import TurnResult, handle_turn
from dialogs.desk import TicketReceipt, TicketRequest, TicketSummary
from dialogs.intent import IntentName, is_register_admins, recognise
from dialogs.messages import Attachment, Message
from dialogs.questions import SLOTS
from dialogs.replies import Question, Reply, SenderAnswer, StepsAnswer, Text, TicketNotice
from dialogs.state import DialogState
from dialogs.turn import DialogContext
from dialogs.understanding.layer import build_understanding
from knowledge.kb import KnowledgeBase, Procedure, default_knowledge
from tests.article_procedures import ARTICLE_PROCEDURES

CORPUS = Path(__file__).parent / "corpus"
BOLD = re.compile(r"\*\*(.+?)\*\*")
KB: KnowledgeBase = default_knowledge()
UNDERSTANDING = build_understanding(KB)


def say(key: str, **values: str) -> str:
    return KB.conversation.text(key, **values)


@dataclass
class FakeDesk:
    """Records ticket requests; fails on demand."""

    requests: list[TicketRequest] = field(default_factory=list)
    fail: bool = False

    async def open_ticket(self, message: Message, request: TicketRequest) -> TicketReceipt:
        if self.fail:
            raise RuntimeError("tracker down")
        self.requests.append(request)
        return TicketReceipt(f"NDR-{1000 + len(self.requests)}", created=True)

    async def my_tickets(self, message: Message) -> list[TicketSummary]:
        return [
            TicketSummary(f"NDR-{1001 + n}", "open", r.bounce.get("status"), None)
            for n, r in enumerate(self.requests)
        ]


Turn = str | dict[str, str] | bytes


@dataclass
class Chat:
    """A conversation held against the engine, keeping state and profile between turns."""

    org_domains: frozenset[str] = frozenset()
    desk: FakeDesk = field(default_factory=FakeDesk)
    state: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None
    results: list[TurnResult] = field(default_factory=list)

    async def send(self, turn: Turn) -> TurnResult:
        if isinstance(turn, bytes):
            message = Message(files=(Attachment("bounce.eml", turn, "message/rfc822"),))
        elif isinstance(turn, dict):
            message = Message(text=turn.get("answer", ""), value=dict(turn))
        else:
            message = Message(text=turn)
        context = DialogContext(KB, self.org_domains, self.desk, UNDERSTANDING)
        result = await handle_turn(self.state, self.profile, message, context)
        self.state, self.profile = result.state, result.profile
        self.results.append(result)
        return result

    async def talk(self, *turns: Turn) -> TurnResult:
        result: TurnResult | None = None
        for turn in turns:
            result = await self.send(turn)
        assert result is not None
        return result


def click(slot: str, answer: str) -> dict[str, str]:
    return {"slot": slot, "answer": answer}


def texts(result: TurnResult) -> list[str]:
    return [r.text for r in result.replies if isinstance(r, Text | Question | TicketNotice)]


def question(result: TurnResult) -> Question:
    last = result.replies[-1]
    assert isinstance(last, Question), result.replies
    return last


def only(result: TurnResult, kind: type[Reply]) -> Any:
    found = [r for r in result.replies if isinstance(r, kind)]
    assert len(found) == 1, result.replies
    return found[0]


# ---- every recipient type x method x admin centre ---------------------------------------------


def _combinations() -> list[tuple[str, str, str, Procedure]]:
    combos = []
    for procedure in KB.procedures:
        for type_id in procedure.recipient_types:
            combos.append((type_id, procedure.method, procedure.centre, procedure))
    return combos


@pytest.mark.parametrize(
    ("type_id", "method", "centre", "procedure"),
    _combinations(),
    ids=[f"{t}-{m}-{c}" for t, m, c, _ in _combinations()],
)
async def test_admin_gets_the_exact_steps(
    type_id: str, method: str, centre: str, procedure: Procedure
) -> None:
    chat = Chat()
    await chat.talk("how do I fix 5.7.12", click("role", "admin"), click("recipient_type", type_id))
    result = await chat.send(click("method", method))
    if question(result).slot == "centre":
        offered = {choice.value for choice in question(result).choices}
        assert offered == set(KB.centres_for(method, type_id))
        result = await chat.send(click("centre", centre))
    else:  # only one centre has steps: the bot says so and goes on
        assert KB.centres_for(method, type_id) == (centre,)
        assert say("only_centre", centre_label=KB.centre(centre).label) in texts(result)
    answer: StepsAnswer = only(result, StepsAnswer)
    flags = KB.step_flags("5.7.12")  # no sender known: an outside one, as for any 5.7.12
    assert answer.title == procedure.title
    assert [step.text for step in answer.steps] == [
        step.text for step in procedure.steps_for(flags)
    ]
    assert list(answer.notes) == [n.text for n in KB.notes_for(procedure, flags, "after")]
    for note in KB.notes_for(procedure, flags, "before"):  # prerequisites come first
        assert note.text in answer.intro
    assert answer.source == procedure.source
    if procedure.check:  # the check command, unless the last step already runs it
        last = procedure.steps[-1].code
        assert (answer.check is None) == (last == procedure.check)
        assert "{recipient}" not in (answer.check or "")
    if procedure.id in ARTICLE_PROCEDURES:
        _, _, _, expected = ARTICLE_PROCEDURES[procedure.id]
        shown = [BOLD.findall(" ".join((s.text, *s.substeps))) for s in answer.steps]
        assert shown == expected
    assert question(result).slot == "fixed"
    assert result.finished


async def test_every_article_procedure_is_reachable() -> None:
    reachable = {procedure.id for *_, procedure in _combinations()}
    assert set(ARTICLE_PROCEDURES) <= reachable


async def test_steps_carry_the_bounce_facts_and_fill_the_commands() -> None:
    chat = Chat()
    bounce = (CORPUS / "en-eml-57133-group-qp.eml").read_bytes()
    await chat.talk(bounce, "I'm the admin")
    result = await chat.talk(click("method", "allow_all"), click("centre", "powershell"))
    asked = question(result)
    assert asked.slot == "recipient_type"  # the cmdlets differ between kinds of group
    assert {c.value for c in asked.choices} == {"distribution_group", "dynamic_distribution_group"}
    result = await chat.send("dynamic")
    answer: StepsAnswer = only(result, StepsAnswer)
    codes = [step.code for step in answer.steps if step.code]
    assert any("Set-DynamicDistributionGroup -Identity sales@contoso.com" in c for c in codes)
    facts = {fact.label: fact.value for fact in answer.facts}
    assert facts[say("facts_recipient")] == "sales@contoso.com"
    assert facts[say("facts_status")] == "550 5.7.133"


# ---- skipping what the code or the sentence already tells ---------------------------------------


@pytest.mark.parametrize(
    ("corpus_file", "family_text", "asked"),
    [
        ("en-old-57133-group-display-name.txt", "group", "method"),
        ("en-eml-57129-mailbox-7bit.eml", "mailbox", "centre"),  # 5.7.129: the list, no method
        ("en-new-57136-mailuser.txt", "mail user", "method"),
        ("en-new-57193-m365group.txt", "Microsoft 365 group", "method"),
    ],
)
async def test_the_code_skips_the_recipient_type_question(
    corpus_file: str, family_text: str, asked: str
) -> None:
    chat = Chat()
    first = await chat.send((CORPUS / corpus_file).read_bytes())
    result = await chat.send(click("role", "admin"))
    assert any(family_text in text for text in texts(first) + texts(result))  # said once
    assert question(result).slot == asked


async def test_mail_users_are_steered_to_the_classic_eac() -> None:
    chat = Chat()
    await chat.talk((CORPUS / "en-new-57136-mailuser.txt").read_bytes(), click("role", "admin"))
    result = await chat.send(click("method", "allow_all"))
    assert {c.value for c in question(result).choices} == {"classic_eac", "powershell"}
    result = await chat.send("new admin center")
    assert say("mail_user_classic_only") in texts(result)
    assert {c.value for c in question(result).choices} == {"classic_eac", "powershell"}
    result = await chat.send("classic")
    assert (
        only(result, StepsAnswer).title
        == KB.procedures_for("allow_all", "mail_user", "classic_eac")[0].title
    )


async def test_one_sentence_goes_straight_to_the_steps() -> None:
    result = await Chat().send(
        "I'm the admin, external people get 5.7.12 mailing our shared mailbox, "
        "I want to allow everyone, I use the new EAC"
    )
    answer: StepsAnswer = only(result, StepsAnswer)
    expected = KB.procedures_for("allow_all", "shared_mailbox", "new_eac")[0]
    assert answer.title == expected.title
    assert not any(isinstance(r, Question) and r.slot != "fixed" for r in result.replies)


async def test_answers_given_in_passing_fill_later_questions() -> None:
    chat = Chat()
    await chat.send("how do I fix 5.7.12")
    result = await chat.send("admin. It's a DL and I'll use PS")
    assert question(result).slot == "method"
    result = await chat.send("allow everyone")
    answer: StepsAnswer = only(result, StepsAnswer)
    assert (
        answer.title == KB.procedures_for("allow_all", "distribution_group", "powershell")[0].title
    )


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("2", "shared_mailbox"),
        ("Shared mailbox", "shared_mailbox"),
        ("DL", "distribution_group"),
        ("M365 group", "m365_group"),
        ("its a shraed mailbox", "shared_mailbox"),
        ("distrubution list", "distribution_group"),
        ("mail usr", "mail_user"),
    ],
)
async def test_recipient_type_by_number_label_synonym_and_typo(answer: str, expected: str) -> None:
    chat = Chat()
    await chat.talk("how do I fix 5.7.12", "admin")
    await chat.send(answer)
    assert chat.state is not None
    assert chat.state["slots"]["recipient_type"] == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("PS", "powershell"), ("new admin center", "new_eac"), ("the classic one", "classic_eac")],
)
async def test_admin_centre_by_synonym(answer: str, expected: str) -> None:
    chat = Chat()
    await chat.talk("how do I fix 5.7.12", "admin", "user mailbox", "allow everyone")
    result = await chat.send(answer)
    assert chat.state is not None
    assert chat.state["slots"]["centre"] == expected
    assert only(result, StepsAnswer)


# ---- re-asks -----------------------------------------------------------------------------------


async def test_an_answer_that_fits_nothing_is_asked_again_then_help_is_offered() -> None:
    chat = Chat()
    await chat.talk("how do I fix 5.7.12")
    first = await chat.send("purple")
    assert texts(first)[0] == say("reask")
    assert question(first).slot == "role"
    second = await chat.send("banana")
    assert texts(second)[0] == say("reask_again")
    assert "help" in say("reask_again")
    assert question(second).slot == "role"
    third = await chat.send("admin")
    assert question(third).slot == "recipient_type"


# ---- the sender's path ------------------------------------------------------------------------


async def test_sender_gets_who_can_fix_it_and_a_note_with_the_bounce_details() -> None:
    chat = Chat()
    await chat.send((CORPUS / "en-eml-57133-group-qp.eml").read_bytes())
    result = await chat.send("I sent it")
    answer: SenderAnswer = only(result, SenderAnswer)
    assert "contoso.com" in answer.who_can_fix
    assert "sales@contoso.com" in answer.note_body
    assert "alex.kim@fabrikam.com" in answer.note_body
    assert "5.7.133" in answer.note_body
    assert KB.article_url in answer.note_body
    assert "{" not in answer.note_body + answer.note_subject
    assert result.finished
    assert chat.profile == {"role": "sender"}


async def test_sender_to_one_of_our_own_domains_is_offered_a_ticket() -> None:
    desk = FakeDesk()
    chat = Chat(org_domains=frozenset({"contoso.com"}), desk=desk)
    await chat.send((CORPUS / "en-eml-57133-group-qp.eml").read_bytes())
    result = await chat.send("I sent it")
    assert not [r for r in result.replies if isinstance(r, SenderAnswer)]
    assert question(result).slot == "sender_own_domain"
    await chat.send("yes please")
    result = await chat.send("No note")
    notice: TicketNotice = only(result, TicketNotice)
    assert notice.ticket_id == "NDR-1001"
    assert desk.requests[0].dedupe_key == "sales@contoso.com|5.7.133"
    assert desk.requests[0].path == {"role": "sender"}


ASKED_FIX = {"role": "sender", "fix": "allow_all", "fix_recipient": "sales@contoso.com"}


@pytest.mark.parametrize("answer", ["change it please", click("escalate_note", "ask_fix")])
async def test_sender_to_our_own_domain_may_ask_the_helpdesk_to_change_it(answer: Turn) -> None:
    desk = FakeDesk()
    chat = Chat(org_domains=frozenset({"contoso.com"}), desk=desk)
    await chat.send((CORPUS / "en-eml-57133-group-qp.eml").read_bytes())
    await chat.send("I sent it")
    result = await chat.send("yes please")
    asked = question(result)
    assert asked.slot == "escalate_note"
    assert asked.text == KB.conversation.text(
        "escalate_ask_note_fix", recipient="sales@contoso.com"
    )
    assert [c.value for c in asked.choices] == ["no_note", "ask_fix", "cancel"]
    result = await chat.send(answer)
    notice: TicketNotice = only(result, TicketNotice)
    assert notice.text == KB.conversation.text(
        "escalate_fix_opened", ticket="NDR-1001", recipient="sales@contoso.com"
    )
    [request] = desk.requests
    assert request.path == ASKED_FIX
    assert request.note is None
    assert request.dedupe_key == "sales@contoso.com|5.7.133"


async def test_a_change_is_not_offered_for_another_organization_an_admin_or_a_list_code() -> None:
    # Outside our domains: the conversation is as before, and "change it" is a note.
    desk = FakeDesk()
    chat = Chat(desk=desk)
    await chat.send((CORPUS / "en-eml-57133-group-qp.eml").read_bytes())
    await chat.send("I sent it")
    result = await chat.send("escalate")
    assert question(result).text == KB.conversation.text("escalate_ask_note")
    assert [c.value for c in question(result).choices] == ["no_note", "cancel"]
    await chat.send("change it please")
    assert desk.requests[0].path == {"role": "sender"}
    assert desk.requests[0].note == "change it please"

    # An email admin of our own domain has the steps (and the directory), not this offer.
    admin = Chat(org_domains=frozenset({"contoso.com"}), desk=FakeDesk())
    await admin.send((CORPUS / "en-eml-57133-group-qp.eml").read_bytes())
    await admin.send("I'm the admin")
    result = await admin.send("escalate")
    assert "ask_fix" not in [c.value for c in question(result).choices]

    # 5.7.124: the fix is the allowed senders list, which a sender cannot choose safely.
    listed = Chat(org_domains=frozenset({"contoso.com"}), desk=FakeDesk())
    await listed.send((CORPUS / "en-new-57124-group.txt").read_text("utf-8"))
    await listed.send("I sent it")
    result = await listed.send("yes")
    assert question(result).slot == "escalate_note"
    assert "ask_fix" not in [c.value for c in question(result).choices]

    chat = Chat()
    await chat.talk("what does 550 5.7.12 mean", "I sent the message")
    result = await chat.send("it was info@northwindtraders.com")
    answer: SenderAnswer = only(result, SenderAnswer)
    assert "northwindtraders.com" in answer.who_can_fix


# ---- interruptions -------------------------------------------------------------------------------


async def test_help_answers_and_asks_the_pending_question_again() -> None:
    chat = Chat()
    await chat.talk("how do I fix 5.7.12", "admin")
    result = await chat.send("help")
    assert texts(result)[0] == KB.help_text.help
    assert question(result).slot == "recipient_type"


async def test_cancel_stops_and_start_over_forgets_the_role() -> None:
    chat = Chat()
    await chat.talk("how do I fix 5.7.12", "admin", "user mailbox")
    result = await chat.send("cancel")
    assert texts(result) == [say("cancelled")]
    assert chat.state is not None
    assert chat.state["pending"] is None
    assert chat.state["slots"] == {"role": "admin"}
    result = await chat.send("start over")
    assert texts(result)[0] == say("started_over")
    assert chat.profile == {}
    result = await chat.send("how do I fix 5.7.12")
    assert question(result).slot == "role"


@pytest.mark.parametrize("at", ["role", "recipient_type", "method", "centre", "fixed"])
async def test_escalate_from_any_point_opens_a_ticket_with_the_path(at: str) -> None:
    steps: list[Turn] = ["how do I fix 5.7.12", "admin", "user mailbox", "allow everyone", "PS"]
    upto = {"role": 1, "recipient_type": 2, "method": 3, "centre": 4, "fixed": 5}[at]
    desk = FakeDesk()
    chat = Chat(desk=desk)
    result = await chat.talk(*steps[:upto])
    assert question(result).slot == at
    result = await chat.send("talk to an admin")
    assert question(result).slot == "escalate_note"
    result = await chat.send("The CEO's partner can't reach us")
    assert only(result, TicketNotice).ticket_id == "NDR-1001"
    assert result.escalated
    request = desk.requests[0]
    assert request.note == "The CEO's partner can't reach us"
    assert request.bounce["status"] == "5.7.12"
    assert list(request.path) == ["role", "recipient_type", "method", "centre"][: upto - 1]


async def test_escalation_can_be_cancelled_and_a_failing_desk_loses_nothing() -> None:
    desk = FakeDesk(fail=True)
    chat = Chat(desk=desk)
    await chat.talk("how do I fix 5.7.12", "escalate")
    result = await chat.send("cancel")
    assert texts(result)[0] == say("escalate_cancelled")
    assert question(result).slot == "role"  # back where they were
    await chat.send("escalate")
    result = await chat.send("No note")
    assert texts(result)[0] == say("escalate_failed")
    assert question(result).slot == "role"
    desk.fail = False
    await chat.send("escalate")
    result = await chat.send("No note")
    assert only(result, TicketNotice)


async def test_a_new_bounce_mid_flow_starts_again_with_its_details() -> None:
    chat = Chat()
    await chat.talk("how do I fix 5.7.12", "admin", "user mailbox")
    result = await chat.send((CORPUS / "en-old-57133-group-display-name.txt").read_bytes())
    assert texts(result)[0] == say("new_bounce")
    assert chat.state is not None
    assert chat.state["bounce"]["status"] == "5.7.133"
    assert "recipient_type" not in chat.state["slots"]
    assert chat.state["slots"]["role"] == "admin"  # who they are did not change
    assert question(result).slot == "method"


async def test_a_look_alike_bounce_is_explained_not_fixed() -> None:
    result = await Chat().send((CORPUS / "en-eml-5110-recipient-not-found-b64.eml").read_bytes())
    assert result.intent is IntentName.BOUNCE_OTHER
    assert "5.1.10" in texts(result)[0]
    assert "different problem" in texts(result)[0]
    assert not [r for r in result.replies if isinstance(r, Question)]


# ---- after the steps ----------------------------------------------------------------------------


async def test_still_failing_offers_the_other_method() -> None:
    chat = Chat()
    await chat.talk("how do I fix 5.7.12", "admin", "user mailbox", "allow everyone", "new EAC")
    result = await chat.send("still failing")
    assert question(result).slot == "after_failure"
    result = await chat.send("try the other method")
    answer: StepsAnswer = only(result, StepsAnswer)
    assert answer.title == KB.procedures_for("allowed_senders", "user_mailbox", "new_eac")[0].title
    result = await chat.send("yes")
    assert texts(result) == [say("fixed_yes")]


async def test_the_role_is_remembered_for_the_next_conversation() -> None:
    first = Chat()
    await first.talk("how do I fix 5.7.12", "I'm an email admin")
    second = Chat(profile=first.profile)
    result = await second.send("how do I fix 5.7.133")
    assert say("role_remembered_admin") in texts(result)
    assert question(result).slot == "method"


# ---- robustness ----------------------------------------------------------------------------------


async def test_a_binary_file_is_refused_and_the_question_stays() -> None:
    chat = Chat()
    await chat.talk("how do I fix 5.7.12", "admin")
    result = await chat.send(b"\x89PNG\r\n\x1a\n" + bytes(64))
    assert texts(result)[0].startswith(say("file_refused", reason="")[:10])
    assert question(result).slot == "recipient_type"


async def test_a_click_on_an_old_card_does_not_break_the_conversation() -> None:
    chat = Chat()
    await chat.send("hi")
    result = await chat.send(click("fixed", "no"))
    assert texts(result) == [say("fallback")]
    result = await chat.send(click("nonsense", "x"))
    assert result.replies
    await chat.talk("how do I fix 5.7.12", "admin")
    result = await chat.send(click("recipient_type", "zzz"))  # no such type: a forged click
    assert question(result).slot == "recipient_type"


REGISTER_ADMINS_SAID = (
    "register admins",
    "register the admins",
    "register helpdesk admins",
    "register the helpdesk admins channel",
    "register admins channel",
    "Register admins.",
    "REGISTER ADMINS!",
    "  register admin  ",
    "register admins' channel",
    "register admins\u2019 channel?",
)


@pytest.mark.parametrize("text", REGISTER_ADMINS_SAID)
def test_register_admins_is_one_command_on_every_platform(text: str) -> None:
    assert is_register_admins(text)


@pytest.mark.parametrize(
    "text",
    [
        "please register admins for me",
        "register admins and then help me with 5.7.12",
        "how do I register admins?",
        "register",
        "admins",
        "register admins\nand something else",
        "",
    ],
)
def test_a_longer_sentence_is_not_the_register_admins_command(text: str) -> None:
    assert not is_register_admins(text)


@pytest.mark.parametrize("text", REGISTER_ADMINS_SAID)
async def test_the_dialogs_never_take_register_admins_for_a_command_of_theirs(text: str) -> None:
    """The channels act on it before a turn runs; what reaches the dialogs is read as words."""
    message = Message(text=text)
    assert recognise(message, KB).name is IntentName.OTHER
    assert recognise(message, KB, UNDERSTANDING).name is not IntentName.REGISTER_ADMINS
    clicked = Message(text=text, value={"intent": IntentName.REGISTER_ADMINS.value})
    assert recognise(clicked, KB).name is IntentName.OTHER
    result = await Chat().send({"intent": "register_admins", "answer": text})
    assert result.intent is not IntentName.REGISTER_ADMINS


async def test_a_state_from_an_older_bot_is_tolerated() -> None:
    chat = Chat(state={"flow": "weird", "pending": "unknown_slot", "slots": {"x": 1}, "misses": -3})
    result = await chat.send("how do I fix 5.7.12")
    assert question(result).slot == "role"


async def test_my_tickets_lists_them_and_the_question_stays() -> None:
    chat = Chat()
    result = await chat.send("my tickets")
    assert result.intent is IntentName.MY_TICKETS
    assert texts(result) == [say("my_tickets_none")]
    await chat.talk("how do I fix 5.7.12", "escalate", "No note", "how do I fix 5.7.133")
    result = await chat.send("show my tickets")
    assert "NDR-1001" in texts(result)[0]
    assert question(result).slot == "role"


# ---- the related codes: the allowed senders list, for the sender as they are --------------------


def _codes(answer: StepsAnswer) -> list[str]:
    return [step.code for step in answer.steps if step.code]


async def test_57124_gives_the_list_fix_and_a_contact_only_for_an_outside_sender() -> None:
    bounce = (CORPUS / "en-new-57124-group.txt").read_bytes()
    outside = Chat()
    await outside.send(bounce)
    result = await outside.send(click("role", "admin"))
    assert not any(isinstance(r, Question) and r.slot == "method" for r in result.replies)
    result = await outside.send(click("recipient_type", "distribution_group"))
    answer: StepsAnswer = only(result, StepsAnswer)
    codes = _codes(answer)
    assert any("New-MailContact" in code for code in codes)  # lee.chen@ is outside
    assert not any("RequireSenderAuthenticationEnabled $false" in code for code in codes)
    assert any(
        'AcceptMessagesOnlyFromSendersOrMembers @{Add="lee.chen@tailspintoys.com"}' in c
        for c in codes
    )

    inside = Chat(org_domains=frozenset({"tailspintoys.com", "contoso.com"}))
    await inside.send(bounce)
    await inside.send(click("role", "admin"))
    answer = only(await inside.send(click("recipient_type", "distribution_group")), StepsAnswer)
    codes = _codes(answer)
    assert not any("New-MailContact" in code or "Get-Recipient" in code for code in codes)
    assert any('@{Add="lee.chen@tailspintoys.com"}' in code for code in codes)
    assert not any("a mail contact" in note for note in answer.notes)


async def test_a_click_on_allow_everyone_for_57129_is_not_offered() -> None:
    chat = Chat()
    await chat.send((CORPUS / "en-eml-57129-mailbox-7bit.eml").read_bytes())
    result = await chat.send(click("role", "admin"))
    assert not any(isinstance(r, Question) and r.slot == "method" for r in result.replies)
    result = await chat.send("I'd rather just allow everyone")
    assert say("related_code_list_only", status="5.7.129") in texts(result)
    assert chat.state is not None
    assert chat.state["slots"]["method"] == "allowed_senders"


async def test_escalating_with_nothing_in_progress_asks_what_it_is_about() -> None:
    chat = Chat()
    result = await chat.send("can a human look at something for me")
    assert question(result).slot == "escalate_about"
    result = await chat.send("our board@contoso.com list bounces mail from the auditors")
    assert question(result).slot == "escalate_note"
    result = await chat.send(click("escalate_note", "no_note"))
    assert only(result, TicketNotice)
    request = chat.desk.requests[-1]
    assert request.bounce["about"] == "our board@contoso.com list bounces mail from the auditors"
    assert request.bounce["recipients"] == ["board@contoso.com"]
    assert request.dedupe_key is None  # no code: nothing to join on


async def test_a_bounce_pasted_as_the_answer_to_what_it_is_about_goes_on_the_ticket() -> None:
    chat = Chat()
    await chat.send("escalate")
    await chat.send((CORPUS / "en-eml-57133-group-qp.eml").read_bytes())
    await chat.send("No note")
    request = chat.desk.requests[-1]
    assert request.bounce["status"] == "5.7.133"
    assert request.bounce["recipients"] == ["sales@contoso.com"]


async def test_a_thumb_answers_did_that_fix_it() -> None:
    chat = Chat()
    await chat.talk("how do I fix 5.7.12", "admin", "user mailbox", "allow everyone", "new EAC")
    result = await chat.send("👍")
    assert say("fixed_yes") in texts(result)


async def test_the_senders_note_for_57129_asks_only_to_be_added_to_the_list() -> None:
    chat = Chat()
    await chat.send((CORPUS / "en-eml-57129-mailbox-7bit.eml").read_bytes())
    answer: SenderAnswer = only(await chat.send(click("role", "sender")), SenderAnswer)
    assert answer.note_subject.startswith("Please add lee.chen@tailspintoys.com")
    assert "allowed senders list" in answer.note_body
    assert "letting outside senders reach" not in answer.note_body


async def test_a_question_about_another_code_keeps_the_bounce() -> None:
    chat = Chat()
    await chat.send((CORPUS / "en-new-57124-group.txt").read_bytes())
    await chat.send(click("role", "admin"))
    result = await chat.send("is that different from 5.7.12? what does it even mean")
    said = " ".join(texts(result))
    assert "That's 5.7.12" in said
    assert "That's 5.7.124" in said
    assert chat.state is not None
    assert chat.state["bounce"]["status"] == "5.7.124"


def test_every_question_is_asked_and_answered_by_the_same_name() -> None:
    # How a question is asked again (dialogs/asking.py) and what its answer does
    # (dialogs/questions.py) are two tables: they name the same questions.
    assert ASKS.keys() == SLOTS.keys()


def test_a_saved_state_is_what_asdict_gives_and_shares_nothing_with_the_state() -> None:
    state = DialogState(
        flow="admin",
        slots={"role": "admin"},
        bounce={"recipients": [{"address": "a@contoso.com", "codes": ["5.7.12"]}]},
        excluded={"method": ["allow_all"]},
        targets=[{"address": "b@contoso.com"}],
    )
    saved = state.to_json()
    assert saved == asdict(state)
    saved["bounce"]["recipients"][0]["codes"].append("5.7.133")
    saved["excluded"]["method"].clear()
    saved["targets"][0]["address"] = "c@contoso.com"
    assert state.to_json() == asdict(state) != saved
    assert DialogState.from_json(asdict(state)) == state
