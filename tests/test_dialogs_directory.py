"""The admin's path with the organization's directory (issue 13): the recipient read from
Exchange Online and said (its type without a question, its setting, whether that explains the
bounce), and the fix applied only on the admin's confirmation, then read back.

The directory is an in-memory fake of :class:`dialogs.directory.RecipientDirectory` that records
every call; the conversations are typed the way a hurried admin types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from bot.render.text import render_all
from dialogs.conversation import TurnResult, handle_turn
from dialogs.desk import TicketReceipt, TicketRequest, TicketSummary
from dialogs.directory import FixMethod, FixOutcome, FixPlan, Lookup, RecipientSetting
from dialogs.messages import Message
from dialogs.replies import Question, Reply, StepsAnswer, Text
from dialogs.turn import DialogContext
from dialogs.understanding.layer import build_understanding
from knowledge.kb import KnowledgeBase, default_knowledge

CORPUS = Path(__file__).parent / "corpus"
KB: KnowledgeBase = default_knowledge()
UNDERSTANDING = build_understanding(KB)
MAILBOX_BOUNCE = (CORPUS / "en-new-5712-mailbox.txt").read_text(encoding="utf-8")  # ana.lopez@
LIST_BOUNCE = (CORPUS / "en-new-57124-group.txt").read_text(encoding="utf-8")  # board@
ANA = "ana.lopez@contoso.com"


def say(key: str, **values: str) -> str:
    return KB.conversation.text(key, **values)


def closed(address: str = ANA, type_id: str = "user_mailbox", **changes: Any) -> RecipientSetting:
    """A recipient that refuses outside senders, as 5.7.12 says."""
    details = {
        "user_mailbox": "UserMailbox",
        "distribution_group": "MailUniversalDistributionGroup",
    }
    setting = RecipientSetting(address, details.get(type_id, "UserMailbox"), type_id, True)
    return replace(setting, **changes)


@dataclass
class FakeDirectory:
    """Exchange Online as the dialogs see it: configurable answers, every call recorded."""

    lookups: dict[str, Lookup | None] = field(default_factory=dict)
    plan: FixPlan | Lookup | str | None = "plan"  # "plan": the usual plan for what was asked
    outcome_problem: str | None = None
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    async def look_up(self, message: Message, address: str) -> Lookup | None:
        self.calls.append(("look_up", address))
        return self.lookups.get(address.lower())

    async def plan_fix(
        self, message: Message, address: str, method: FixMethod, sender: str | None
    ) -> FixPlan | Lookup | None:
        self.calls.append(("plan_fix", address, method, sender))
        if self.plan != "plan":
            assert not isinstance(self.plan, str)
            return self.plan
        if method == "allow_all":
            command = f"Set-Mailbox -Identity {address} -RequireSenderAuthenticationEnabled $false"
        else:
            command = (
                f"Set-DistributionGroup -Identity {address} -RequireSenderAuthenticationEnabled "
                f'$false -AcceptMessagesOnlyFromSendersOrMembers @{{Add="{sender}"}}'
            )
        return FixPlan(address, method, sender, command, ("Anyone on the internet can mail it.",))

    async def apply_fix(self, message: Message, plan: FixPlan) -> FixOutcome:
        self.calls.append(("apply_fix", plan.command))
        before = self.lookups[plan.address.lower()]
        assert before is not None
        assert before.setting is not None
        if self.outcome_problem is not None:
            return FixOutcome(plan, before.setting, None, problem="denied", detail="Access denied")  # type: ignore[arg-type]
        after = replace(before.setting, require_sender_authentication=False)
        if plan.sender:
            listed = before.setting.accept_messages_only_from_senders_or_members
            after = replace(
                after, accept_messages_only_from_senders_or_members=(*listed, plan.sender)
            )
        return FixOutcome(plan, before.setting, after)

    def called(self, name: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == name]


@dataclass
class FakeDesk:
    """Records the tickets asked for."""

    requests: list[TicketRequest] = field(default_factory=list)

    async def open_ticket(self, message: Message, request: TicketRequest) -> TicketReceipt:
        self.requests.append(request)
        return TicketReceipt(f"NDR-{1000 + len(self.requests)}", created=True)

    async def my_tickets(self, message: Message) -> list[TicketSummary]:
        return []

    async def reopen_ticket(self, message: Message, ticket_id: str) -> bool:
        return False


@dataclass
class Chat:
    """A conversation held against the engine with a directory (or none)."""

    directory: FakeDirectory | None = field(default_factory=FakeDirectory)
    desk: FakeDesk = field(default_factory=FakeDesk)
    org_domains: frozenset[str] = frozenset({"contoso.com"})
    state: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None
    understanding: bool = True  # without: words read by the pattern tables

    async def send(self, said: str | dict[str, str]) -> TurnResult:
        if isinstance(said, dict):
            message = Message(text=said.get("answer", ""), value=dict(said))
        else:
            message = Message(text=said)
        context = DialogContext(
            KB,
            self.org_domains,
            self.desk,
            UNDERSTANDING if self.understanding else None,
            self.directory,
        )
        result = await handle_turn(self.state, self.profile, message, context)
        self.state, self.profile = result.state, result.profile
        return result

    async def talk(self, *turns: str | dict[str, str]) -> TurnResult:
        result: TurnResult | None = None
        for said in turns:
            result = await self.send(said)
        assert result is not None
        return result


def click(slot: str, answer: str) -> dict[str, str]:
    return {"slot": slot, "answer": answer}


def texts(result: TurnResult) -> list[str]:
    return [r.text for r in result.replies if isinstance(r, Text | Question)]


def question(result: TurnResult) -> Question:
    last = result.replies[-1]
    assert isinstance(last, Question), result.replies
    return last


def choices(result: TurnResult) -> list[str]:
    return [choice.value for choice in question(result).choices]


def asked(results: list[TurnResult], slot: str) -> bool:
    return any(isinstance(r, Question) and r.slot == slot for t in results for r in t.replies)


def steps(result: TurnResult) -> list[StepsAnswer]:
    return [r for r in result.replies if isinstance(r, StepsAnswer)]


def mailbox_directory(**changes: Any) -> FakeDirectory:
    return FakeDirectory(lookups={ANA: Lookup(ANA, closed(**changes))})


# ---- the recipient read and said --------------------------------------------------------------


async def test_an_admin_gets_the_type_unasked_the_steps_the_offer_and_the_fix_read_back() -> None:
    directory = mailbox_directory()
    chat = Chat(directory)
    first = await chat.send(f"I'm the admin, got this\n\n{MAILBOX_BOUNCE}")
    said = " ".join(texts(first))
    assert say("directory_found", recipient=ANA, type_label="User mailbox") in said
    assert say("directory_requires_authentication") in said
    # The type was not asked; the method is ("allowed senders list" in the bounce's own words
    # is Microsoft's, not the admin's choice).
    assert question(first).slot == "method"
    assert chat.state is not None
    assert chat.state["slots"]["recipient_type"] == "user_mailbox"
    result = await chat.talk("allow everyone", "powershell")
    assert steps(result)
    assert question(result).slot == "fixed"
    assert choices(result)[-1] == "apply"
    assert directory.called("look_up") == [("look_up", ANA)]  # once, not on every turn

    result = await chat.send("can you apply it for me")
    plan = steps(result)[0]
    assert plan.steps[0].code == (
        f"Set-Mailbox -Identity {ANA} -RequireSenderAuthenticationEnabled $false"
    )
    assert plan.notes == ("Anyone on the internet can mail it.",)
    assert question(result).slot == "apply_confirm"
    assert not directory.called("apply_fix")  # shown, not run

    result = await chat.send("yes do it")
    assert directory.called("apply_fix") == [("apply_fix", plan.steps[0].code)]
    report = texts(result)[0]
    assert report.startswith(say("apply_done", recipient=ANA))
    assert (
        say("apply_row", setting=say("setting_require_authentication"), before="on", after="off")
        in report
    )
    assert question(result).slot == "fixed"
    assert "apply" not in choices(result)  # made once; now: did it work?
    result = await chat.send("yep works now")
    assert say("fixed_yes") in texts(result)
    assert len(directory.called("look_up")) == 1


@pytest.mark.parametrize("typed", ["go ahead", "apply it", "ok go ahead and run it", "oui vas-y"])
async def test_a_typed_yes_runs_the_change(typed: str) -> None:
    directory = mailbox_directory()
    chat = Chat(directory)
    await chat.talk(MAILBOX_BOUNCE, "admin", "allow everyone", "powershell", "apply it for me")
    await chat.send(typed)
    assert len(directory.called("apply_fix")) == 1


NEGATED = ["no wait", "don't", "dont do it", "not yet", "hold on", "no", "nein, noch nicht"]


@pytest.mark.parametrize("typed", NEGATED)
async def test_a_negated_confirm_changes_nothing(typed: str) -> None:
    directory = mailbox_directory()
    chat = Chat(directory)
    await chat.talk(MAILBOX_BOUNCE, "admin", "allow everyone", "powershell")
    assert question(await chat.send(click("fixed", "apply"))).slot == "apply_confirm"
    result = await chat.send(typed)
    assert not directory.called("apply_fix")
    assert chat.state is not None
    assert not chat.state["fix_plan"]
    assert say("apply_cancelled", recipient=ANA) in texts(result)
    assert question(result).slot == "fixed"
    assert "apply" in choices(result)  # they may still change their mind


@pytest.mark.parametrize("typed", [*NEGATED, "please don't run it", "never do it"])
async def test_without_the_language_layer_a_negated_confirm_changes_nothing(typed: str) -> None:
    directory = mailbox_directory()
    chat = Chat(directory, understanding=False)
    await chat.talk(MAILBOX_BOUNCE, "admin", "user mailbox", "allow everyone", "powershell")
    assert question(await chat.send(click("fixed", "apply"))).slot == "apply_confirm"
    result = await chat.send(typed)
    assert not directory.called("apply_fix")
    assert question(result).slot in ("fixed", "apply_confirm")  # a no, or asked again


@pytest.mark.parametrize("understanding", [True, False])
async def test_words_that_only_come_close_to_a_yes_are_asked_again(understanding: bool) -> None:
    directory = mailbox_directory()
    chat = Chat(directory, understanding=understanding)
    await chat.talk(MAILBOX_BOUNCE, "admin", "allow everyone", "powershell", "apply it for me")
    result = await chat.send("never run it")  # without the layer: "run it" inside a sentence
    assert not directory.called("apply_fix")
    assert question(result).slot in ("fixed", "apply_confirm")
    if question(result).slot == "apply_confirm":
        assert say("reask") in texts(result)
        result = await chat.send(click("apply_confirm", "yes"))
        assert directory.called("apply_fix")


async def test_a_stale_confirm_click_runs_nothing() -> None:
    directory = mailbox_directory()
    chat = Chat(directory)
    await chat.talk(MAILBOX_BOUNCE, "admin", "allow everyone", "powershell", "apply it for me")
    await chat.send("help")  # the confirm question is asked again: the plan still waits
    await chat.send("no")
    result = await chat.send(click("apply_confirm", "yes"))  # the old button, after the no
    assert not directory.called("apply_fix")
    assert say("fallback") in texts(result)


async def test_method_2_adds_the_bounces_sender_to_the_list() -> None:
    board = "board@contoso.com"
    setting = closed(
        board,
        "distribution_group",
        require_sender_authentication=False,
        accept_messages_only_from_senders_or_members=("Board members",),
    )
    directory = FakeDirectory(lookups={board: Lookup(board, setting)})
    chat = Chat(directory)
    first = await chat.send(LIST_BOUNCE)
    result = await chat.send("I'm the admin")
    said = " ".join(texts(first) + texts(result))
    assert say("directory_found", recipient=board, type_label="Distribution group") in said
    assert say("directory_accept_list", senders="Board members") in said
    assert say("directory_list_code", status="5.7.124") in said
    result = await chat.send("new eac" if question(result).slot == "centre" else "hm")
    assert "apply" in choices(result)
    await chat.send("do it for me")
    sender = directory.called("plan_fix")[0][3]
    assert directory.called("plan_fix") == [("plan_fix", board, "allowed_senders", sender)]
    assert sender == "lee.chen@tailspintoys.com"
    result = await chat.send(click("apply_confirm", "yes"))
    report = texts(result)[0]
    row = say(
        "apply_row",
        setting=say("setting_accept_only_from_senders_or_members"),
        before="Board members",
        after=f"Board members, {sender}",
    )
    assert row in report


async def test_a_plan_that_cannot_be_made_says_why_and_offers_the_rest() -> None:
    board = "board@contoso.com"
    directory = FakeDirectory(
        lookups={board: Lookup(board, closed(board, "distribution_group"))},
        plan=Lookup(board, problem="unknown", detail="lee.chen@tailspintoys.com has no contact"),
    )
    chat = Chat(directory)
    await chat.talk(LIST_BOUNCE, "admin")
    result = await chat.send(click("centre", "powershell"))
    assert "apply" in choices(result)
    result = await chat.send("apply it")
    said = " ".join(texts(result))
    assert say("apply_cannot_plan") in said
    assert "lee.chen@tailspintoys.com has no contact" in said
    assert question(result).slot == "fixed"
    assert choices(result) == ["yes", "no", "escalate"]
    assert not directory.called("apply_fix")


async def test_a_change_that_fails_is_said_and_the_steps_remain() -> None:
    directory = mailbox_directory()
    directory.outcome_problem = "denied"
    chat = Chat(directory)
    await chat.talk(MAILBOX_BOUNCE, "admin", "allow everyone", "powershell", "apply it")
    result = await chat.send("yes")
    said = " ".join(texts(result))
    assert say("apply_denied", recipient=ANA) in said
    assert "Access denied" in said
    assert choices(result) == ["yes", "no", "escalate"]


async def test_a_recipient_that_already_accepts_outside_mail_points_elsewhere() -> None:
    directory = mailbox_directory(require_sender_authentication=False)
    chat = Chat(directory)
    result = await chat.talk(MAILBOX_BOUNCE, "i'm an admin")
    said = " ".join(texts(result))
    assert say("directory_accepts_outside") in said
    assert question(result).slot == "setting_fine"
    assert question(result).text == say("directory_not_the_setting", status="5.7.12")
    assert not steps(result)
    result = await chat.send("yes please")  # to "shall I hand it to our helpdesk admins?"
    assert question(result).slot == "escalate_note"
    result = await chat.send("no note")
    assert chat.desk.requests[0].path["recipient_type"] == "user_mailbox"


async def test_steps_anyway_when_the_setting_does_not_explain_it() -> None:
    chat = Chat(mailbox_directory(require_sender_authentication=False))
    await chat.talk(MAILBOX_BOUNCE, "admin")
    result = await chat.talk("show me the steps anyway", "allow everyone", "new eac")
    assert steps(result)
    assert "apply" not in choices(result)  # the setting is not what bounced it


@pytest.mark.parametrize(
    ("problem", "detail"),
    [
        ("unknown", "Couldn't find object ana.lopez@contoso.com"),
        ("denied", "The app has no Exchange role"),
        ("unavailable", "Exchange Online timed out"),
        ("unavailable", ""),
    ],
)
async def test_a_look_up_that_fails_is_said_plainly_and_the_type_asked(
    problem: str, detail: str
) -> None:
    lookup = Lookup(ANA, problem=problem, detail=detail)  # type: ignore[arg-type]
    chat = Chat(FakeDirectory(lookups={ANA: lookup}))
    result = await chat.talk(MAILBOX_BOUNCE, "admin")
    expected = say(f"directory_{problem}", recipient=ANA)
    if detail:
        expected += " " + say("directory_detail", detail=detail)
    assert expected in texts(result)
    assert question(result).slot == "recipient_type"  # as without a directory
    result = await chat.talk("user mailbox", "allow everyone", "new eac")
    assert steps(result)
    assert "apply" not in choices(result)


async def test_a_directory_that_raises_is_an_outage() -> None:
    class Broken(FakeDirectory):
        async def look_up(self, message: Message, address: str) -> Lookup | None:
            raise RuntimeError("socket closed")

    chat = Chat(Broken())
    result = await chat.talk(MAILBOX_BOUNCE, "admin")
    assert say("directory_unavailable", recipient=ANA) in texts(result)
    assert question(result).slot == "recipient_type"


async def test_a_recipient_of_an_unknown_kind_is_asked_as_before() -> None:
    setting = replace(closed(), type_details="SchedulingMailbox", type_id=None)
    chat = Chat(FakeDirectory(lookups={ANA: Lookup(ANA, setting)}))
    result = await chat.talk(MAILBOX_BOUNCE, "admin")
    assert say(
        "directory_found_other", recipient=ANA, type_details="SchedulingMailbox"
    ) in " ".join(texts(result))
    assert question(result).slot == "recipient_type"


# ---- without a directory, or one that does not answer: as before --------------------------------


ADMIN_TURNS = (
    MAILBOX_BOUNCE,
    "admin",
    "user mailbox",
    "allow everyone",
    "new eac",
    "still failing",
)


@pytest.mark.parametrize("directory", [None, FakeDirectory()])  # None, or look_up -> None
async def test_without_an_answer_from_the_directory_the_conversation_is_as_before(
    directory: FakeDirectory | None,
) -> None:
    with_it, without = Chat(directory), Chat(None)
    for said in ADMIN_TURNS:
        one, other = await with_it.send(said), await without.send(said)
        assert one.replies == other.replies
    assert with_it.state is not None
    assert without.state is not None
    assert {**with_it.state, "looked_up": {}} == without.state
    if directory is not None:
        assert directory.called("look_up") == [("look_up", ANA)]  # asked once, answered None


async def test_a_sender_is_never_looked_up() -> None:
    directory = mailbox_directory()
    chat = Chat(directory)
    await chat.talk(MAILBOX_BOUNCE, "I sent it")
    assert not directory.calls


async def test_a_new_bounce_is_looked_up_again() -> None:
    directory = mailbox_directory()
    chat = Chat(directory)
    await chat.talk(MAILBOX_BOUNCE, "admin", "allow everyone")
    await chat.talk(MAILBOX_BOUNCE)
    assert len(directory.called("look_up")) == 2


# ---- drawn by every channel ----------------------------------------------------------------------


async def test_the_new_replies_are_drawn_as_text() -> None:
    chat = Chat(mailbox_directory())
    await chat.talk(MAILBOX_BOUNCE, "admin", "allow everyone", "powershell")
    replies: list[Reply] = list((await chat.send("apply it for me")).replies)
    drawn = render_all(replies)
    assert f"Set-Mailbox -Identity {ANA} -RequireSenderAuthenticationEnabled $false" in drawn
    assert "Yes, run it" in drawn
    replies = list((await chat.send("go ahead")).replies)
    assert "on → off" in render_all(replies)


async def test_the_plan_and_its_question_are_drawn_in_teams_and_slack() -> None:
    from bot.channels.slack.blocks import render_replies as slack_replies
    from bot.channels.teams.cards import Labels
    from bot.channels.teams.cards import render_replies as teams_replies

    chat = Chat(mailbox_directory())
    await chat.talk(MAILBOX_BOUNCE, "admin", "allow everyone", "powershell")
    replies = (await chat.send("apply it for me")).replies
    command = f"Set-Mailbox -Identity {ANA} -RequireSenderAuthenticationEnabled $false"
    teams = json.dumps(teams_replies(replies, Labels.of(KB.conversation)))
    assert json.dumps(command)[1:-1] in teams
    assert '"codeSnippet"' in teams
    assert "Yes, run it" in teams
    slack = json.dumps([message.payload() for message in slack_replies(replies, KB.conversation)])
    assert command in slack
    assert "```" in slack
    assert "Yes, run it" in slack


@pytest.mark.parametrize(
    "typed",
    [
        "apply it for me",
        "can you do it?",
        "pls just apply it",
        "fais-le pour moi",
        "mach es für mich",
    ],
)
async def test_apply_it_for_me_typed(typed: str) -> None:
    directory = mailbox_directory()
    chat = Chat(directory)
    await chat.talk(MAILBOX_BOUNCE, "admin", "allow everyone", "new eac")
    result = await chat.send(typed)
    assert question(result).slot == "apply_confirm"
    assert len(directory.called("plan_fix")) == 1


async def test_a_damaged_state_runs_nothing_and_looks_up_again() -> None:
    directory = mailbox_directory()
    chat = Chat(directory)
    await chat.talk(MAILBOX_BOUNCE, "admin", "allow everyone", "new eac", "apply it for me")
    assert chat.state is not None
    chat.state["fix_plan"] = {"address": ANA, "method": "delete_it", "command": "Remove-Mailbox"}
    chat.state["looked_up"] = {"x@contoso.com": "not a look-up", ANA: {"setting": {"address": 3}}}
    result = await chat.send(click("apply_confirm", "yes"))
    assert not directory.called("apply_fix")
    assert say("fallback") in texts(result)
    chat.state["looked_up"] = "damaged"
    await chat.send(MAILBOX_BOUNCE)  # a new bounce: looked up again, from a clean state
    assert len(directory.called("look_up")) == 2
