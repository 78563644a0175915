"""A ticket's public reference in the store (issue 12, finding 3), on SQLite and, when
TEST_POSTGRES_URL is set, PostgreSQL: every ticket gets a random one when it is opened, unique,
kept through changes, and found only by itself: a ticket number, a lookalike or a guess names
no ticket."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from bot.store import Store
from bot.store.schema import tickets
from tests.test_store import BOUNCE, alice, bob, database, store

__all__ = ["database", "store"]  # the fixtures, shared with test_store


async def open_ticket(store: Store, recipient: str, who: str = "alice") -> str:
    record, _ = await store.tickets.open_or_join_ticket(
        requester=alice() if who == "alice" else bob(),
        conversation_key="c",
        bounce={**BOUNCE, "recipients": [recipient]},
        path={},
        note=None,
        dedupe_key=f"{recipient}|5.7.12",
    )
    return record.id


async def test_each_ticket_gets_its_own_random_reference(store: Store) -> None:
    ids = [await open_ticket(store, f"r{n}@contoso.com") for n in range(20)]
    records = [await store.tickets.get_ticket(ticket_id) for ticket_id in ids]
    refs = [record.ref for record in records if record is not None]
    assert len(set(refs)) == 20
    for record in records:
        assert record is not None
        assert len(record.ref) == 16, "12 random bytes, URL-safe"
        assert await store.tickets.get_ticket_by_ref(record.ref) == record


async def test_the_reference_is_kept_when_the_ticket_changes_or_is_joined(store: Store) -> None:
    ticket_id = await open_ticket(store, "sales@contoso.com")
    opened = await store.tickets.get_ticket(ticket_id)
    assert opened is not None
    updated = await store.tickets.update_ticket(
        ticket_id,
        expected_version=opened.version,
        actor="console:admin",
        kind="resolved",
        status="resolved",
    )
    assert updated.ref == opened.ref
    (listed,) = await store.tickets.list_tickets()
    assert listed.ref == opened.ref


@pytest.mark.parametrize(
    "asked", ["NDR-1001", "ndr-1001 ", "1001", "1", "", " ", "x" * 16, "%" * 16, "a" * 500]
)
async def test_a_number_a_lookalike_or_a_guess_names_no_ticket(store: Store, asked: str) -> None:
    await open_ticket(store, "sales@contoso.com")
    assert await store.tickets.get_ticket_by_ref(asked) is None
    assert await store.tickets.get_ticket_by_ref(secrets.token_urlsafe(12)) is None


async def test_two_tickets_cannot_share_a_reference(store: Store) -> None:
    ticket_id = await open_ticket(store, "sales@contoso.com")
    record = await store.tickets.get_ticket(ticket_id)
    assert record is not None
    row = {
        "ref": record.ref,
        "status": "open",
        "requester": alice().as_json(),
        "conversation_key": "c",
        "bounce": BOUNCE,
        "path": {},
        "version": 1,
        "created_at": record.created_at,
        "updated_at": record.created_at,
    }
    with pytest.raises(IntegrityError):
        async with store._engine.begin() as conn:  # the constraint itself
            await conn.execute(insert(tickets).values(**row))
