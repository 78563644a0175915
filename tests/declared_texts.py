"""The conversation texts the code declares it needs, gathered for the tests: the dialogs' own
(checked when the knowledge base loads) and each platform module's ``TEXTS`` (checked at start),
the Exchange directory's with them."""

from __future__ import annotations

from bot import exchange
from bot.channels import slack as slack_channel
from bot.channels import teams as teams_channel
from knowledge.kb import CONVERSATION_TEXTS

#: Each platform module (and bot/exchange/) that looks up texts of its own, with the texts it
#: declares.
PLATFORM_DECLARATIONS: dict[str, frozenset[str]] = {
    module.__name__: module.TEXTS for module in (teams_channel, slack_channel, exchange)
}
#: Every text some part of the code declares it needs.
DECLARED_TEXTS: frozenset[str] = CONVERSATION_TEXTS.union(*PLATFORM_DECLARATIONS.values())
