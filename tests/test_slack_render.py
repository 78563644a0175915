"""Block Kit rendering (bot/channels/slack/blocks.py and ticket_blocks.py): buttons that carry
the answer, the steps answer with its facts and PowerShell, a text fallback, and Slack's limits
kept by splitting."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from datetime import UTC, datetime

from bot.channels.slack.blocks import (
    ANSWER_ACTION,
    MAX_BLOCKS,
    MAX_FALLBACK_TEXT,
    MAX_SECTION_TEXT,
    answered_blocks,
    home_view,
    mrkdwn,
    render_replies,
)
from bot.channels.slack.ticket_blocks import ticket_card
from bot.store import Requester, TicketRecord
from bot.tickets import TicketCard
from dialogs.replies import (
    Choice,
    Fact,
    Question,
    SenderAnswer,
    Step,
    StepsAnswer,
    Text,
    TicketNotice,
)
from knowledge.kb import default_knowledge

STEPS = StepsAnswer(
    title="Let chosen outside senders mail a **user mailbox** (PowerShell)",
    intro="For **ana@contoso.com**: run these commands.",
    facts=(Fact("Recipient", "ana@contoso.com"), Fact("Status code", "550 5.7.12")),
    steps=(
        Step("Connect to **Exchange Online**.", code="Connect-ExchangeOnline"),
        Step(
            "Allow the sender.",
            substeps=("Keep the list.",),
            code=(
                "Set-Mailbox -Identity ana@contoso.com "
                '-AcceptMessagesOnlyFromSendersOrMembers @{Add="<group>"}'
            ),
        ),
    ),
    notes_label="Good to know",
    notes=("Use @{Add=...} & keep the rest.",),
    check_label="Check with",
    check="Get-Mailbox ana@contoso.com | Format-List AcceptMessagesOnlyFrom*",
    source_label="Source",
    source="https://learn.microsoft.com/x",
)

WORDS = default_knowledge().conversation


def _all_blocks_within_limits(messages: list) -> None:
    for message in messages:
        assert message.text.strip()
        assert len(message.text) <= MAX_FALLBACK_TEXT
        assert len(message.blocks) <= MAX_BLOCKS
        for block in message.blocks:
            if block["type"] == "section" and "text" in block:
                assert len(block["text"]["text"]) <= MAX_SECTION_TEXT
            if block["type"] == "section" and "fields" in block:
                assert len(block["fields"]) <= 10
            if block["type"] == "header":
                assert len(block["text"]["text"]) <= 150
            if block["type"] == "rich_text":
                assert len(block["elements"][0]["elements"][0]["text"]) <= 3000


def test_mrkdwn_escapes_slack_markup_and_turns_bold() -> None:
    assert mrkdwn("**Recipients** <a@b.c> & more") == "*Recipients* &lt;a@b.c&gt; &amp; more"


def test_a_question_has_one_button_per_choice_carrying_slot_and_answer() -> None:
    question = Question(
        "Who are you?", "role", (Choice("sender", "I sent it"), Choice("admin", "Admin"))
    )
    (message,) = render_replies([Text("That's **5.7.12**."), question], WORDS)
    actions = [block for block in message.blocks if block["type"] == "actions"]
    assert len(actions) == 1
    values = [json.loads(button["value"]) for button in actions[0]["elements"]]
    assert values == [{"slot": "role", "answer": "sender"}, {"slot": "role", "answer": "admin"}]
    ids = [button["action_id"] for button in actions[0]["elements"]]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(f"{ANSWER_ACTION}:") for i in ids)
    assert "*5.7.12*" in message.text
    assert "1. I sent it" in message.text
    assert "2. Admin" in message.text


def test_the_steps_answer_has_numbered_steps_facts_and_preformatted_powershell() -> None:
    (message,) = render_replies([STEPS], WORDS)
    kinds = [block["type"] for block in message.blocks]
    assert kinds[0] == "header"
    assert message.blocks[0]["text"]["text"] == (
        "Let chosen outside senders mail a user mailbox (PowerShell)"
    )
    fields = next(block["fields"] for block in message.blocks if "fields" in block)
    assert fields[0]["text"] == "*Recipient*\nana@contoso.com"
    code = [
        block["elements"][0]["elements"][0]["text"]
        for block in message.blocks
        if block["type"] == "rich_text"
    ]
    # Code goes out as it is: no escaping inside a preformatted block.
    assert 'AcceptMessagesOnlyFromSendersOrMembers @{Add="<group>"}' in code[1]
    sections = json.dumps([b for b in message.blocks if b["type"] == "section"])
    assert "*1.* Connect to *Exchange Online*." in sections
    assert "&amp; keep the rest" in sections
    assert "<https://learn.microsoft.com/x>" in json.dumps(message.blocks[-1])
    # The fallback text is mrkdwn too: the code in it is escaped.
    assert message.text.startswith("*Let chosen outside senders mail a user mailbox (PowerShell)*")
    assert '@{Add="&lt;group&gt;"}```' in message.text


def test_a_long_steps_answer_is_split_within_slack_limits() -> None:
    long_steps = replace(
        STEPS,
        steps=tuple(
            Step(f"Step {n} " + "word " * 200, code="Get-Mailbox\n" * 400) for n in range(40)
        ),
        notes=tuple("A note " * 100 for _ in range(20)),
    )
    messages = render_replies(
        [long_steps, Question("Did it work?", "fixed", (Choice("yes", "Y"),))], WORDS
    )
    assert len(messages) > 1
    _all_blocks_within_limits(messages)
    # Nothing lost: every step's number is there, in order.
    text = "\n".join(json.dumps(m.blocks) for m in messages)
    positions = [text.index(f"*{n}.* Step {n - 1} ") for n in range(1, 41)]
    assert positions == sorted(positions)
    assert messages[-1].blocks[-1]["type"] == "actions"


def test_a_very_long_text_is_cut_into_sections() -> None:
    messages = render_replies([Text("line of text\n" * 1000)], WORDS)
    _all_blocks_within_limits(messages)
    assert sum(len(m.blocks) for m in messages) >= 4


def test_the_sender_answer_has_the_note_preformatted() -> None:
    answer = SenderAnswer(
        who_can_fix="Only **contoso.com** can fix it.",
        what_to_do="Send them the note.",
        facts=(Fact("Recipient", "ana@contoso.com"),),
        note_heading="Note for the admin",
        note_subject_label="Subject",
        note_subject="Mail bounced",
        note_body="Hello,\n<please> fix & thanks",
        source_label="Source",
        source="https://learn.microsoft.com/x",
    )
    (message,) = render_replies([answer], WORDS)
    note = next(block for block in message.blocks if block["type"] == "rich_text")
    assert note["elements"][0]["elements"][0]["text"] == (
        "Subject: Mail bounced\n\nHello,\n<please> fix & thanks"
    )
    _all_blocks_within_limits([message])


def test_a_ticket_notice_names_the_ticket() -> None:
    (message,) = render_replies([TicketNotice("NDR-1001", "Ticket **NDR-1001** is open.")], WORDS)
    assert "NDR-1001" in message.text


def test_a_clicked_question_shows_the_choice_instead_of_its_buttons() -> None:
    question = Question("Who?", "role", (Choice("admin", "Admin"),))
    (message,) = render_replies([question], WORDS)
    block_id = message.blocks[-1]["block_id"]
    updated = answered_blocks(message.blocks, block_id, "Admin", "U0ADMIN01", WORDS)
    assert updated is not None
    assert updated[-1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "<@U0ADMIN01> chose *Admin*"}],
    }
    assert answered_blocks(updated, block_id, "Admin", "U0ADMIN01", WORDS) is None


def _card(ticket: TicketRecord) -> TicketCard:
    return TicketCard.of(ticket, (), default_knowledge())


def _ticket(number: int, status: str = "open") -> TicketRecord:
    now = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    requester = Requester("slack", "U0ADMIN01", "Robin", "slack:D0ADMIN01")
    return TicketRecord(
        id=f"NDR-{1000 + number}",
        number=number,
        status=status,
        requester=requester,
        bounce={"status": "5.7.12", "recipients": ["ana@contoso.com"]},
        path={},
        note=None,
        dedupe_key=None,
        assignee=None,
        created_at=now,
        updated_at=now,
        version=1,
    )


def test_the_home_view_explains_the_bot_and_lists_open_tickets() -> None:
    view = home_view(
        "Here is what I can do", [_card(_ticket(1)), _card(_ticket(2, "assigned"))], WORDS
    )
    assert view["type"] == "home"
    text = json.dumps(view)
    for surface in ("/ndr", "Ask the NDR helpdesk", ".eml", "mention me"):
        assert surface in text
    sections = [b["text"]["text"] for b in view["blocks"] if b["type"] == "section"]
    assert any(line.startswith("*NDR-1001* (open): 5.7.12 · ana@contoso.com") for line in sections)
    assert "NDR-1002" in text

    empty = json.dumps(home_view("help", [], WORDS))
    assert "no open tickets" in empty

    many = home_view("help", [_card(_ticket(n)) for n in range(1, 60)], WORDS)
    assert len(many["blocks"]) <= 100
    assert "and 39 more" in json.dumps(many)


def test_a_ticket_opened_from_a_sentence_shows_what_it_is_about() -> None:
    ticket = dataclasses.replace(_ticket(1), bounce={"about": "board@ rejects the auditors"})
    message = ticket_card(_card(ticket), WORDS)
    assert "board@ rejects the auditors" in json.dumps(message.blocks)
