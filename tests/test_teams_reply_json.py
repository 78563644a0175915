"""A turn's replies are posted as JSON built without msrest's models: the body must be, byte for
byte, what botbuilder's own path (``TurnContext.send_activity``, or the adapter's
``send_activities`` for a new message) has msrest write, for every recorded payload and for
payloads whose fields msrest would have to convert (those go through msrest)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botbuilder.core import TurnContext
from botbuilder.schema import Activity
from botframework.connector import models
from msrest import Serializer

from bot.channels.teams.cards import text_activity, typing_activity
from bot.channels.teams.sending import outgoing_json, reply_address, to_activity
from tests.fakes.teams_harness import PAYLOADS

_CARD = {
    "type": "message",
    "summary": "Pick one",
    "attachments": [
        {
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "é"}]},
        }
    ],
}
# What ConnectorClient serialises an activity with (its operations' ``_serialize.body``).
_CONNECTOR_SERIALIZER = Serializer({k: v for k, v in vars(models).items() if isinstance(v, type)})
RENDERED = [text_activity("**Hello**"), typing_activity(), _CARD]


def _payloads() -> Iterator[Any]:
    for path in sorted(PAYLOADS.glob("*.json")):
        body = json.loads(path.read_text("utf-8"))
        yield pytest.param(body, id=path.stem)
        for channel in ("webchat", "directline"):
            yield pytest.param({**body, "channelId": channel}, id=f"{path.stem}-{channel}")
        odd = copy.deepcopy(body)
        odd["from"]["name"] = 5  # msrest reads it as "5"
        odd["conversation"]["isGroup"] = "true"  # and this as True
        odd["conversation"]["tenantID"] = "tenant"
        odd["recipient"]["properties"] = {"a": [1, {"b": None}]}
        yield pytest.param(odd, id=f"{path.stem}-converted")


def _as_botbuilder_sends(body: dict[str, Any], rendered: dict[str, Any], *, reply: bool) -> str:
    incoming = Activity().deserialize(body)
    reference = TurnContext.get_conversation_reference(incoming)
    if reply:  # TurnContext.send_activities
        activity = TurnContext.apply_conversation_reference(
            copy.deepcopy(to_activity(rendered)), reference
        )
        activity.type = activity.type or "message"
        activity.input_hint = activity.input_hint or "acceptingInput"
    else:  # post_activity(reply=False)
        activity = TurnContext.apply_conversation_reference(to_activity(rendered), reference)
        activity.reply_to_id = None
    activity.id = None
    return json.dumps(_CONNECTOR_SERIALIZER.body(activity, "Activity"))


@pytest.mark.parametrize("body", list(_payloads()))
@pytest.mark.parametrize("reply", [True, False])
def test_a_reply_is_the_json_botbuilder_would_send(body: dict[str, Any], reply: bool) -> None:
    address = reply_address(body, Activity().deserialize(body))
    for rendered in RENDERED:
        ours = json.dumps(outgoing_json(address, rendered, reply=reply))
        assert ours == _as_botbuilder_sends(body, rendered, reply=reply)


def test_the_recorded_payloads_are_all_there() -> None:
    assert len(list(PAYLOADS.glob("*.json"))) >= 9
