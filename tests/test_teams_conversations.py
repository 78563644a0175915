"""Teams over real HTTP: whole conversations by text and by card clicks, @mentions in a channel,
an HTML paste, an .eml file, the welcome card, expectReplies, invokes. The bot runs as
``create_app`` builds it, in local mode; replies land on a fake Bot Connector on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.channels import teams
from bot.turns import conversation_key
from dialogs.messages import Message
from dialogs.replies import Text
from knowledge.kb import default_knowledge
from tests.fakes.teams_harness import RUNTIME, TeamsBot, payload, teams_bot, words
from tests.transcripts import (
    ASK_CENTRE,
    ASK_FIXED,
    ASK_METHOD,
    ASK_NOTE,
    ASK_ROLE,
    ASK_TYPE,
    FIXED_YES,
    TICKET,
)

CORPUS = Path(__file__).resolve().parent / "corpus"
PERSONAL = payload("personal_message")["conversation"]


def say(key: str, **values: str) -> str:
    """What the knowledge base has the bot say for ``key``."""
    return default_knowledge().conversation.text(key, **values)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[TeamsBot]:
    async with teams_bot(tmp_path, env={"ORG_DOMAINS": "contoso.com"}) as running:
        yield running


def _buttons(bot: TeamsBot) -> list[str]:
    card = bot.last_card or {}
    titles = [action["title"] for action in card.get("actions", [])]
    for element in card.get("body", []):
        if element.get("type") == "Input.ChoiceSet":
            titles += [choice["title"] for choice in element["choices"]]
    return titles


async def test_an_admin_conversation_by_card_clicks(bot: TeamsBot) -> None:
    posted = await bot.say("how do I fix 5.7.12")
    assert [each.kind for each in posted] == ["reply", "reply"]
    assert "That's 5.7.12" in words(posted)
    assert ASK_ROLE in words(posted)
    assert _buttons(bot) == ["I sent the message", "I'm an email admin"]
    assert bot.last_card is not None
    assert bot.last_card["actions"][1]["data"] == {"slot": "role", "answer": "admin"}

    posted = await bot.click("I'm an email admin")
    assert ASK_TYPE in words(posted)
    assert "Shared mailbox" in _buttons(bot)
    assert len(_buttons(bot)) == 9

    assert ASK_METHOD in words(await bot.click("Shared mailbox"))
    assert ASK_CENTRE in words(await bot.click("Allow everyone"))
    posted = await bot.click("Exchange Online PowerShell")
    assert len(posted) == 1, "the steps and 'did that fix it?' are one card"
    card = posted[0].cards[0]
    assert card["body"][0]["text"] == "Let everyone mail a shared mailbox (PowerShell)"
    codes = [element["codeSnippet"] for element in card["body"] if element["type"] == "CodeBlock"]
    assert any(code.startswith("Set-Mailbox -Identity") for code in codes)
    assert any(element["type"] == "FactSet" for element in card["body"])
    assert [a["title"] for a in card["actions"]] == [
        "It worked",
        "Still failing",
        "Escalate to an admin",
    ]
    assert ASK_FIXED in card["fallbackText"]
    assert "Set-Mailbox" in card["fallbackText"]
    assert posted[0].activity["summary"]

    assert FIXED_YES in words(await bot.click("It worked"))
    assert 'ndrbot_flows_finished_total{channel="msteams"} 1.0' in bot.metrics_text
    assert 'ndrbot_turns_total{channel="msteams",intent="question_5712"} 1.0' in bot.metrics_text


async def test_an_admin_conversation_by_text(bot: TeamsBot) -> None:
    assert ASK_ROLE in words(await bot.say("how do I fix 5.7.12"))
    assert ASK_TYPE in words(await bot.say("I'm an admin"))
    assert ASK_METHOD in words(await bot.say("DL"))
    assert ASK_CENTRE in words(await bot.say("allow everyone"))
    posted = await bot.say("PS")
    assert "Set-DistributionGroup -Identity" in words(posted)
    assert ASK_FIXED in words(posted)
    assert FIXED_YES in words(await bot.say("yes"))


async def test_a_sender_conversation_by_text(bot: TeamsBot) -> None:
    bounce = (CORPUS / "en-new-57193-m365group.txt").read_text("utf-8")
    posted = await bot.say(bounce)
    assert "That's 5.7.193" in words(posted)
    assert ASK_ROLE in words(posted)
    posted = await bot.say("I sent it")
    said = words(posted)
    assert "Note for the email admin at adatum.com:" in said
    assert "Booth materials for the expo" in said
    note_card = next(each.cards[0] for each in posted if each.cards)
    assert any(element["type"] == "Container" for element in note_card["body"])


async def test_a_sender_conversation_by_clicks_ends_in_a_ticket(bot: TeamsBot) -> None:
    bounce = (CORPUS / "en-new-5712-mailbox.txt").read_text("utf-8")
    assert ASK_ROLE in words(await bot.say(bounce))
    posted = await bot.click("I sent the message")
    assert "contoso.com is one of our own domains" in words(posted)
    assert ASK_NOTE in words(await bot.click("Open a ticket"))
    posted = await bot.click("No note")
    assert TICKET in words(posted)
    assert 'ndrbot_escalations_total{channel="msteams"} 1.0' in bot.metrics_text
    store = bot.app[RUNTIME].store
    key = conversation_key(Message(platform="msteams", conversation_id=PERSONAL["id"]))
    reference = await store.conversations.load_reference(key)
    assert reference is not None
    assert reference["serviceUrl"] == bot.connector.url
    assert reference["user"]["name"] == "Alex Wilber"


async def test_in_a_channel_it_answers_only_when_mentioned(bot: TeamsBot) -> None:
    unmentioned = bot.activity("channel_mention", text="how do I fix 5.7.12", entities=[])
    assert await bot.send(unmentioned) == []

    posted = await bot.send(bot.activity("channel_mention", text="<at>NDR Helper</at> help"))
    assert "Here is what I can do" in words(posted), "the mention is taken out of the text"

    posted = await bot.send(bot.activity("channel_mention"))
    assert ASK_ROLE in words(posted)
    thread = payload("channel_mention")["conversation"]["id"]
    assert {each.conversation_id for each in posted} == {thread}
    assert all(each.kind == "reply" and each.activity["replyToId"] for each in posted)

    # A click on a card in the channel carries no mention, and is answered.
    click = bot.activity(
        "card_submit",
        conversation=payload("channel_mention")["conversation"],
        value={"slot": "role", "answer": "admin"},
    )
    assert ASK_TYPE in words(await bot.send(click))


async def test_a_mention_in_a_group_chat_of_someone_else_is_not_for_the_bot(bot: TeamsBot) -> None:
    group = {"conversationType": "groupChat", "id": "19:group-chat-example@thread.v2"}
    other = [{"type": "mention", "mentioned": {"id": "29:someone-else"}, "text": "<at>Sam</at>"}]
    activity = bot.activity(
        "channel_mention", text="<at>Sam</at> help", entities=other, conversation=group
    )
    assert await bot.send(activity) == []


async def test_pasted_html_is_read_as_text(bot: TeamsBot) -> None:
    posted = await bot.send(bot.activity("html_paste"))
    assert "That's 5.7.12" in words(posted)
    store = bot.app[RUNTIME].store
    saved = await store.conversations.load_state(f"msteams:{PERSONAL['id']}")
    bounce = saved.state["bounce"]
    assert bounce["recipients"] == ["sales@contoso.com"]
    assert bounce["sender"] == "priya.raman@fabrikam.com"
    assert "<p>" not in bounce["text"]


async def test_an_html_answer_to_a_question_is_read_as_its_words(bot: TeamsBot) -> None:
    await bot.say("how do I fix 5.7.12")
    assert ASK_TYPE in words(await bot.say("<p>I'm an&nbsp;<b>admin</b></p>"))


async def test_an_eml_file_is_downloaded_and_read(bot: TeamsBot) -> None:
    eml = (CORPUS / "en-eml-57133-group-qp.eml").read_bytes()
    url = bot.connector.serve_file("bounce.eml", eml)
    activity = bot.activity("file_download_info")
    activity["attachments"][0]["content"]["downloadUrl"] = url
    response = await bot.post(activity)
    assert response.status == 201
    posted = bot.connector.take()
    assert posted[0].activity["type"] == "typing", "typing... before the slow work"
    said = words(posted)
    assert "That's 5.7.133" in said
    assert ASK_ROLE in said
    assert bot.connector.downloads == 1


@pytest.mark.parametrize("declare_length", [True, False])
async def test_a_file_over_the_limit_is_refused_politely(
    tmp_path: Path, declare_length: bool
) -> None:
    async with teams_bot(tmp_path, env={"FILE_MAX_BYTES": "1024"}) as bot:
        await bot.say("how do I fix 5.7.12")
        url = bot.connector.serve_file("big.eml", b"x" * 200_000, declare_length=declare_length)
        activity = bot.activity("file_download_info")
        activity["attachments"][0]["content"]["downloadUrl"] = url
        posted = await bot.send(activity)
        too_large = say("file_too_large", name="bounce.eml", limit="1 KB")
        assert too_large.startswith("bounce.eml is over 1 KB")
        assert too_large in words(posted)
        assert 'ndrbot_errors_total{channel="msteams",kind="download"} 1.0' in bot.metrics_text
        # The question asked before still stands.
        assert ASK_TYPE in words(await bot.say("admin"))


async def test_a_file_that_cannot_be_downloaded_gets_a_polite_reply(bot: TeamsBot) -> None:
    activity = bot.activity("file_download_info")
    activity["attachments"][0]["content"]["downloadUrl"] = f"{bot.connector.url}/files/gone.eml"
    failed = say("file_download_failed", name="bounce.eml")
    assert "bounce.eml" in failed
    assert failed in words(await bot.send(activity))


async def test_welcome_card_on_install_and_when_added_to_a_team(bot: TeamsBot) -> None:
    posted = await bot.send(bot.activity("conversation_update_personal"))
    assert len(posted) == 1
    assert posted[0].kind == "send"
    card = posted[0].cards[0]
    assert card["body"][0]["text"].startswith("Hi! I help with Exchange Online bounces")
    help_button = {"type": "Action.Submit", "title": "Help", "data": {"intent": "help"}}
    assert card["actions"] == [help_button]

    posted = await bot.send(bot.activity("conversation_update_team"))
    assert len(posted) == 1
    assert posted[0].conversation_id == payload("conversation_update_team")["conversation"]["id"]

    # Pressing Help on the welcome card.
    assert "Here is what I can do" in words(await bot.click("Help"))


async def test_someone_else_joining_a_team_gets_no_welcome(bot: TeamsBot) -> None:
    joined = bot.activity("conversation_update_team", membersAdded=[{"id": "29:new-member"}])
    assert await bot.send(joined) == []


async def test_installation_update_saves_the_conversation_reference(bot: TeamsBot) -> None:
    assert await bot.send(bot.activity("installation_update")) == []
    reference = await bot.app[RUNTIME].store.conversations.load_reference(
        f"msteams:{PERSONAL['id']}"
    )
    assert reference is not None
    assert reference["bot"]["name"] == "NDR Helper"


async def test_expect_replies_puts_the_replies_in_the_response(bot: TeamsBot) -> None:
    activity = bot.activity(text="how do I fix 5.7.12", deliveryMode="expectReplies")
    response = await bot.post(activity)
    assert response.status == 200
    body = await response.json()
    assert [each["type"] for each in body["activities"]] == ["message", "message"]
    assert body["activities"][1]["attachments"][0]["content"]["actions"]
    assert body["activities"][0]["conversation"]["id"] == PERSONAL["id"]
    assert bot.connector.take() == [], "nothing goes to the connector"


async def test_an_adaptive_card_action_invoke_is_a_click(bot: TeamsBot) -> None:
    await bot.say("how do I fix 5.7.12")
    response = await bot.post(bot.activity("invoke_card_action"))
    assert response.status == 200
    assert (await response.json())["statusCode"] == 200
    assert ASK_TYPE in words(bot.connector.take())

    other = bot.activity("invoke_card_action", name="composeExtension/query")
    assert (await bot.post(other)).status == 501


async def test_a_second_delivery_of_the_same_activity_is_answered_once(bot: TeamsBot) -> None:
    activity = bot.activity(text="how do I fix 5.7.12")
    assert len(await bot.send(activity)) == 2
    assert await bot.send(activity) == []


async def test_a_second_delivery_of_an_activity_with_a_file_downloads_nothing(
    bot: TeamsBot,
) -> None:
    eml = (CORPUS / "en-eml-57133-group-qp.eml").read_bytes()
    activity = bot.activity("file_download_info")
    activity["attachments"][0]["content"]["downloadUrl"] = bot.connector.serve_file("b.eml", eml)
    assert "That's 5.7.133" in words(await bot.send(activity))
    assert bot.connector.downloads == 1
    assert await bot.send(activity) == [], "answered once"
    assert bot.connector.downloads == 1, "and the file fetched once"


async def test_slow_turns_show_typing_first(tmp_path: Path) -> None:
    async with teams_bot(tmp_path, typing_after_seconds=0.0) as bot:
        await bot.post(bot.activity(text="how do I fix 5.7.12"))
        kinds = [each.activity["type"] for each in bot.connector.take()]
        assert kinds == ["typing", "message", "message"]


async def test_a_turn_in_flight_finishes_when_the_server_stops(tmp_path: Path) -> None:
    async with teams_bot(tmp_path) as bot:
        bot.connector.delay = 0.3
        request = asyncio.create_task(bot.post(bot.activity(text="how do I fix 5.7.12")))
        await asyncio.sleep(0.1)
        await bot.client.server.close()  # what SIGTERM does: stop listening, drain, clean up
        response = await request
        assert response.status == 201
        assert len(bot.connector.posted) == 2


async def test_proactive_messages_and_updates_go_to_the_saved_conversation(bot: TeamsBot) -> None:
    await bot.say("how do I fix 5.7.12")
    bot.connector.take()
    reference = await bot.app[RUNTIME].store.conversations.load_reference(
        f"msteams:{PERSONAL['id']}"
    )
    assert reference is not None
    channel = bot.app[teams.TEAMS].sender
    before = bot.connector.attempts
    bot.connector.fail_next(503, retry_after="0")
    assert await channel.send_proactive(reference, [Text("Ticket NDR-1001 is resolved.")]) == 1
    (sent,) = bot.connector.take()
    assert (sent.kind, sent.conversation_id) == ("send", PERSONAL["id"])
    assert sent.text == "Ticket NDR-1001 is resolved."
    assert sent.activity["from"]["id"] == reference["bot"]["id"]
    assert bot.connector.attempts == before + 2, "the 503 was retried"

    await channel.update(reference, "act-7", {"type": "message", "text": "Resolved"})
    (updated,) = bot.connector.take()
    assert (updated.kind, updated.activity_id, updated.text) == ("update", "act-7", "Resolved")
