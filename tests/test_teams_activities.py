"""Reading Teams activities, without HTTP or botbuilder: the functions of
``bot/channels/teams/activities.py`` and the endpoint's shape check and the turn's route key,
on the recorded payloads of ``tests/payloads/teams`` (changed where a case needs it)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bot.channels.teams.activities import (
    FILE_DOWNLOAD_INFO,
    actor_of,
    adds_bot,
    base_conversation_id,
    bot_mentions,
    button_value,
    file_links,
    has_files,
    in_group,
    mentions_bot,
    message_of,
    readable_text,
    reference_of,
    tenant_of,
)
from bot.channels.teams.endpoint import shape_problem
from bot.channels.teams.turn import ROUTES, route_key
from dialogs.messages import Platform
from knowledge.ndr import read_bounce

PAYLOADS = Path(__file__).resolve().parent / "payloads" / "teams"
BOT_ID = "28:00000000-0000-4000-8000-0000000000b0"


def payload(kind: str, **changes: Any) -> dict[str, Any]:
    """A recorded activity, with top-level fields changed."""
    activity: dict[str, Any] = json.loads((PAYLOADS / f"{kind}.json").read_text("utf-8"))
    activity.update(changes)
    return activity


# ---- card clicks ------------------------------------------------------------------------------


def test_a_card_click_is_its_data_without_the_keys_teams_adds() -> None:
    activity = payload("card_submit")
    assert button_value(activity["value"]) == {"slot": "role", "answer": "admin"}


@pytest.mark.parametrize(
    ("value", "read"),
    [
        ('{"slot": "role", "answer": "admin"}', {"slot": "role", "answer": "admin"}),
        ({"msteams": {"type": "messageBack"}}, None),
        ("not json", None),
        ("[1, 2]", None),
        (None, None),
        (42, None),
    ],
)
def test_a_click_value_sent_as_text_is_read_and_anything_else_is_no_click(
    value: Any, read: dict[str, Any] | None
) -> None:
    assert button_value(value) == read


# ---- mentions and text ------------------------------------------------------------------------


def test_a_channel_message_mentions_the_bot_and_its_text_leaves_the_mention_out() -> None:
    activity = payload("channel_mention")
    assert in_group(activity)
    assert mentions_bot(activity)
    assert bot_mentions(activity) == ["<at>NDR Helper</at>"]
    assert readable_text(activity) == "how do I fix 5.7.12"


def test_a_mention_of_someone_else_is_not_one_of_the_bot() -> None:
    activity = payload("channel_mention")
    activity["entities"][0]["mentioned"]["id"] = "29:someone-else"
    assert not mentions_bot(activity)
    assert bot_mentions(activity) == []
    assert not mentions_bot(payload("personal_message"))
    assert not in_group(payload("personal_message"))


def test_a_pasted_html_bounce_is_read_as_text() -> None:
    activity = payload("html_paste")
    text = readable_text(activity)
    assert "<p>" not in text
    assert "<br" not in text
    assert "Delivery has failed to these recipients or groups:" in text
    assert read_bounce(text).status == "5.7.12"


def test_an_empty_text_is_read_from_the_html_attachment() -> None:
    activity = payload("channel_mention", text="")
    assert readable_text(activity) == "NDR Helper how do I fix 5.7.12"


def test_plain_text_with_angle_brackets_is_left_as_it_is() -> None:
    activity = payload("personal_message", text="mail from <alex@contoso.com> bounced")
    assert readable_text(activity) == "mail from <alex@contoso.com> bounced"


# ---- files ------------------------------------------------------------------------------------


def test_a_teams_file_is_its_download_url_and_an_eml_is_a_message() -> None:
    activity = payload("file_download_info")
    ((name, url, kind),) = file_links(activity)
    assert name == "bounce.eml"
    assert url == activity["attachments"][0]["content"]["downloadUrl"]
    assert kind == "message/rfc822"
    assert has_files(activity)


def test_a_file_by_url_is_read_only_when_its_name_says_it_is_a_bounce() -> None:
    def attachment(name: str, url: str = "https://files.example/x") -> dict[str, Any]:
        return {"contentType": "text/plain", "contentUrl": url, "name": name}

    activity = payload(
        "personal_message",
        attachments=[
            attachment("bounce.txt"),
            attachment("holiday.jpg"),
            attachment("bounce.eml", url="file:///etc/passwd"),
            {"contentType": FILE_DOWNLOAD_INFO, "name": "x.eml", "content": "not a dict"},
            "not an attachment",
        ],
    )
    assert file_links(activity) == [("bounce.txt", "https://files.example/x", "text/plain")]
    assert not has_files(payload("personal_message"))
    assert not has_files(payload("html_paste"))  # the HTML copy of the text is no file


# ---- the message, who acted, where --------------------------------------------------------------


def test_a_message_is_read_into_the_neutral_message() -> None:
    activity = payload("card_submit")
    message = message_of(activity, value=activity["value"])
    assert message.text == ""
    assert message.value == {"slot": "role", "answer": "admin"}
    assert message.user_id == "00000000-0000-4000-8000-00000000a11e"  # the AAD object id
    assert message.user_name == "Alex Wilber"
    assert message.conversation_id == activity["conversation"]["id"]
    assert message.platform == Platform.TEAMS
    assert message.files == ()
    assert message.raw is activity
    assert message.tenant == tenant_of(activity) != ""  # who may look recipients up is checked


def test_a_message_without_an_aad_id_or_channel_id_falls_back() -> None:
    activity = payload("personal_message", channelId=None)
    activity["from"] = {"id": "29:emulator-user"}
    message = message_of(activity, value=None)
    assert (message.user_id, message.user_name) == ("29:emulator-user", "")
    assert message.platform == Platform.TEAMS
    assert message.value is None
    assert message.text == "how do I fix 5.7.12"


def test_the_actor_is_known_by_aad_id_and_named() -> None:
    actor = actor_of(payload("channel_mention"))
    assert (actor.platform, actor.user_id, actor.name) == (
        Platform.TEAMS,
        "00000000-0000-4000-8000-00000000be11",
        "Megan Bowen",
    )
    nameless = payload("personal_message", **{"from": {"id": "29:emulator-user"}})
    assert actor_of(nameless).name == "29:emulator-user"


def test_the_reference_is_where_the_conversation_lives() -> None:
    activity = payload("personal_message")
    reference = reference_of(activity)
    assert reference == {
        "activityId": activity["id"],
        "user": activity["from"],
        "bot": activity["recipient"],
        "conversation": activity["conversation"],
        "channelId": "msteams",
        "serviceUrl": activity["serviceUrl"],
        "locale": activity.get("locale"),
    }


def test_a_channel_is_its_conversation_id_without_the_thread() -> None:
    conversation = payload("channel_mention")["conversation"]
    assert base_conversation_id(conversation) == "19:exampleChannelId0123456789abcdef@thread.tacv2"
    assert base_conversation_id({}) == ""


def test_the_bot_added_is_told_from_someone_else_added() -> None:
    assert adds_bot(payload("conversation_update_team"))
    assert adds_bot(payload("conversation_update_personal"))
    assert not adds_bot(payload("conversation_update_team", membersAdded=[{"id": "29:x"}]))
    assert not adds_bot(payload("conversation_update_team", membersAdded=None))


# ---- the endpoint's shape check and the turn's routes -----------------------------------------


def test_every_recorded_payload_has_the_shape_of_an_activity_and_a_route() -> None:
    for path in sorted(PAYLOADS.glob("*.json")):
        activity = json.loads(path.read_text("utf-8"))
        assert shape_problem(activity) is None, path.name
        assert route_key(activity) in ROUTES, path.name


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"type": ""}, "no type"),
        ({"serviceUrl": "ftp://x"}, "no serviceUrl"),
        ({"conversation": {"id": 3}}, "no conversation.id"),
        ({"from": None}, "no from.id"),
        ({"recipient": "bot"}, "recipient is not an object"),
        ({"text": 5}, "text is not a string"),
        ({"entities": {}}, "entities is not a list"),
    ],
)
def test_a_malformed_activity_says_what_is_wrong(change: dict[str, Any], problem: str) -> None:
    activity = copy.deepcopy(payload("personal_message"))
    activity.update(change)
    assert shape_problem(activity) == problem
    assert shape_problem([activity]) == "the body is not a JSON object"
    assert shape_problem({"type": "typing"}) is None  # nothing is done with it


def test_an_invoke_is_routed_by_its_name() -> None:
    assert route_key(payload("invoke_card_action")) == ("invoke", "adaptiveCard/action")
    assert route_key(payload("invoke_card_action", name="composeExtension/query")) not in ROUTES
    assert route_key(payload("invoke_card_action", name=["odd"])) == ("invoke", "")
    assert route_key(payload("personal_message", name="ignored")) == ("message", "")
