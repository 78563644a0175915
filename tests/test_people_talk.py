"""The conversations of :mod:`tests.transcripts_people`, held in-process through the terminal
channel with the real language layer, the store on SQLite and the ticket desk."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.channels.console import ConsoleChannel
from bot.config import load_settings
from bot.store import Store
from bot.tickets import StoreTicketDesk, Tickets
from bot.turns import Turns
from dialogs.turn import DialogContext
from dialogs.understanding.layer import build_understanding
from knowledge.kb import default_knowledge
from tests.test_console import _absent, _assert_in_order, _expected, _line, _say
from tests.transcripts import Transcript, prepare_tmp
from tests.transcripts_people import PEOPLE_TRANSCRIPTS


@pytest.mark.parametrize("transcript", PEOPLE_TRANSCRIPTS, ids=lambda t: t.name)
async def test_people_talk(transcript: Transcript, tmp_path: Path) -> None:
    prepare_tmp(tmp_path)
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    try:
        knowledge = default_knowledge()
        tickets = Tickets(store, knowledge, load_settings({}, env_file=None))
        context = DialogContext(
            knowledge=knowledge,
            org_domains=frozenset(transcript.org_domains),
            desk=StoreTicketDesk(store, tickets),
            understanding=build_understanding(),
        )
        channel = ConsoleChannel(
            Turns(store, context), stdin=io.StringIO(), stdout=io.StringIO(), user_id="sam"
        )
        for number, step in enumerate(transcript.steps, 1):
            output = await _say(channel, _line(step[0], tmp_path))
            where = f"{transcript.name}, turn {number} ({step[0]!r})"
            _assert_in_order(output, _expected(step), where)
            for fragment in _absent(step):
                assert fragment not in output, f"{where}: {fragment!r} should not be in:\n{output}"
    finally:
        await store.close()
