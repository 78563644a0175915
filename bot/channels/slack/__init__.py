"""Slack through slack-bolt: the only package that imports slack_bolt and slack_sdk.

Direct messages, @mentions (answered in the thread), ``/ndr``, the "Ask the NDR helpdesk" message
shortcut, ``.eml`` files, button clicks and the App Home tab all become one neutral ``Message`` for
the conversation service; its replies go back as Block Kit. Tickets: ``SlackTicketNotifier`` posts
and updates the ticket cards in the admins' channel for the tickets service (``bot/tickets/``) and
brings the requesters their news; the cards' buttons and modals become the service's ``act``
calls, and ``@bot register admins`` in a channel makes it the admins' channel. These platform
commands never reach the dialogs. A delivery Slack retries is answered once, across instances,
and one acknowledged is kept in the store first, so that a process killed loses none of them.

The rooms, one concern each:

- ``endpoint.py``: ``mount``, ``/slack/events`` over HTTP (malformed bodies refused), the lifetime
- ``connection.py``: the bolt app, auth.test and the bot's identity, signatures, Socket Mode
- ``listeners.py``: bolt's listeners in one table; each keeps, acknowledges, then work goes on
- ``inbox.py``: a delivery kept before it is acknowledged, and finished if its process died
- ``events.py``: what Slack sends, read into ``Message``\\ s (pure, tested without HTTP)
- ``conversations.py``: the people's turns and the App Home
- ``files.py``: the files shared with a message, downloaded size-capped
- ``web_api.py``: the Web API client, posting, DMs, names, counted retries, a busy Slack
- ``late.py``: a turn's replies Slack did not take, kept in the outbox and posted later
- ``blocks.py``: Block Kit for replies and the App Home
- ``ticket_blocks.py``, ``ticket_actions.py``, ``ticket_notifier.py``: the admins' tickets
- ``repeats.py``: a repeated delivery dropped
- ``channel.py``: ``SlackChannel``, the parts put together
- ``manifest.py``: the app manifest behind ``python -m bot manifest slack``
"""

from __future__ import annotations

from typing import Final

from bot.channels.slack import late, listeners, ticket_actions, ticket_blocks
from bot.channels.slack.channel import SlackChannel
from bot.channels.slack.endpoint import SLACK, mount
from bot.channels.slack.events import EVENTS_PATH, SHORTCUT_CALLBACK_ID, SLASH_COMMAND
from bot.channels.slack.ticket_notifier import SlackTicketNotifier

#: The texts of conversation.yaml the package looks up (its modules' declarations together);
#: checked when the bot starts.
TEXTS: Final = listeners.TEXTS | ticket_blocks.TEXTS | ticket_actions.TEXTS | late.TEXTS

__all__ = [
    "EVENTS_PATH",
    "SHORTCUT_CALLBACK_ID",
    "SLACK",
    "SLASH_COMMAND",
    "TEXTS",
    "SlackChannel",
    "SlackTicketNotifier",
    "mount",
]
