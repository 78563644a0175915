"""Microsoft Teams through the Bot Framework (botbuilder): the only package that imports it
(botbuilder, botframework, msrest, azure.core).

``POST /api/messages`` takes an activity and hands it to botbuilder's ``CloudAdapter``, which
authenticates it with our ``BotFrameworkAuthentication`` and runs one turn: the activity read
into a neutral :class:`~dialogs.messages.Message`, the turn run, the replies rendered as Adaptive
Cards and sent back through the Bot Connector, retried on throttling. Tickets are posted as cards
in the admins' channel and worked through their Universal Actions.

With no MICROSOFT_APP_ID the endpoint runs in local mode for the Agents Playground and the Bot
Framework Emulator: no token is checked, and only loopback is served and answered: the peer's
address, the ``Host`` it names, the ``serviceUrl`` replies go to (unless
TEAMS_LOCAL_ALLOW_REMOTE). A request that carries a token anyway is refused, as is a bad one.
Files come only from TEAMS_ATTACHMENT_HOSTS, in every mode.

The rooms, in the order an activity meets them:

- ``endpoint.py``: ``mount``, the ``/api/messages`` handler, its status codes and reasons;
- ``auth.py``: the Bot Framework authentication and the signing keys; ``tokens.py``: the bot's
  own token; ``connector.py``: the Bot Connector clients over the app's aiohttp session;
- ``channel.py``: :class:`TeamsChannel`, the parts of one running app wired together;
- ``turn.py``: one turn, dispatched by a route table; ``activities.py``: reading an activity
  (pure); ``sending.py``: retries, ``Retry-After``, proactive messages, updates, members;
  ``late.py``: replies not taken within the turn, kept in the outbox and sent later;
- ``cards.py``: the replies as Adaptive Cards; ``ticket_cards.py``: the ticket card;
  ``card_elements.py``: what both draw with;
- ``tickets.py``: the ticket notifier and the admins' card actions; ``rosters.py``: the admins
  as Teams knows them;
- ``package.py``: the Teams app package (``python -m bot manifest teams``), imported on its own.
"""

from __future__ import annotations

from typing import Final

from bot.channels.teams import cards, late, ticket_cards, tickets
from bot.channels.teams.activities import reference_of
from bot.channels.teams.card_elements import CARD_CONTENT_TYPE, MAX_ACTIVITY_BYTES, activity_size
from bot.channels.teams.cards import MAX_BUTTONS, Labels, render_replies, welcome_activity
from bot.channels.teams.channel import TeamsChannel
from bot.channels.teams.endpoint import OPTIONS, TEAMS, mount
from bot.channels.teams.failures import SendFailed
from bot.channels.teams.options import TeamsOptions
from bot.channels.teams.ticket_cards import (
    TICKET_REFRESH_VERB,
    TicketCardView,
    TicketLabels,
    ticket_activity,
    ticket_card,
)
from bot.channels.teams.tickets import TeamsTicketNotifier

#: The texts of conversation.yaml the package's modules look up (each declares its own);
#: checked when the bot starts.
TEXTS: Final = cards.TEXTS | ticket_cards.TEXTS | tickets.TEXTS | late.TEXTS

__all__ = [
    "CARD_CONTENT_TYPE",
    "MAX_ACTIVITY_BYTES",
    "MAX_BUTTONS",
    "OPTIONS",
    "TEAMS",
    "TEXTS",
    "TICKET_REFRESH_VERB",
    "Labels",
    "SendFailed",
    "TeamsChannel",
    "TeamsOptions",
    "TeamsTicketNotifier",
    "TicketCardView",
    "TicketLabels",
    "activity_size",
    "mount",
    "reference_of",
    "render_replies",
    "ticket_activity",
    "ticket_card",
    "welcome_activity",
]
