"""Tickets: opening or joining one, changing it under its version, and reading it back with
its history and the people waiting on it.

Its own room because a ticket is the aggregate the helpdesk works on: the ``tickets`` row, its
``ticket_requesters`` and ``ticket_events`` change together, in one transaction with the jobs
that tell everyone (built by the caller's ``JobsFor`` from the ``TicketChange``). The admins'
channels and cards, reminders and the job queue have rooms of their own beside it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.engine import Aggregate, StaleState, StoreError, UnknownTicket
from bot.store.jobs import insert_jobs
from bot.store.records import (
    KEEP,
    TICKET_STATUSES,
    JobsFor,
    Keep,
    Requester,
    TicketChange,
    TicketEvent,
    TicketRecord,
    is_ticket_ref,
    new_ticket_ref,
    ticket_from_row,
    ticket_number,
)
from bot.store.schema import admin_channels, ticket_cards, ticket_events, ticket_requesters, tickets


class TicketStore(Aggregate):
    """Tickets, their requesters and their history (``store.tickets``)."""

    async def open_or_join_ticket(
        self,
        *,
        requester: Requester,
        conversation_key: str,
        bounce: dict[str, Any],
        path: dict[str, Any],
        note: str | None,
        dedupe_key: str | None,
        jobs: JobsFor | None = None,
    ) -> tuple[TicketRecord, str]:
        """Open a ticket, or join the unresolved one with the same ``dedupe_key``, saying what
        happened: "opened", "joined", or "already" (the requester was on that ticket already).
        ``jobs`` builds the jobs to enqueue in the same transaction when it "opened" or "joined"."""
        for _ in range(5):
            if dedupe_key is not None:
                joined = await self._join_ticket(dedupe_key, requester, jobs)
                if joined is not None:
                    return joined
            try:
                created = await self._create_ticket(
                    requester=requester,
                    conversation_key=conversation_key,
                    bounce=bounce,
                    path=path,
                    note=note,
                    dedupe_key=dedupe_key,
                    jobs=jobs,
                )
            except IntegrityError:
                if dedupe_key is None:
                    raise
                continue  # another process opened it a moment ago: join that one
            return created, "opened"
        raise StoreError(f"could not open or join a ticket for dedupe key {dedupe_key!r}")

    async def _create_ticket(
        self,
        *,
        requester: Requester,
        conversation_key: str,
        bounce: dict[str, Any],
        path: dict[str, Any],
        note: str | None,
        dedupe_key: str | None,
        jobs: JobsFor | None,
    ) -> TicketRecord:
        now = self._clock()
        async with self._engine.begin() as conn:
            result = await conn.execute(
                tickets.insert().values(
                    ref=new_ticket_ref(),
                    status="open",
                    requester=requester.as_json(),
                    conversation_key=conversation_key,
                    bounce=bounce,
                    path=path,
                    note=note,
                    dedupe_key=dedupe_key,
                    assignee=None,
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
            )
            inserted = result.inserted_primary_key
            assert inserted is not None  # noqa: S101 - an INSERT always has one
            number = int(inserted[0])
            await conn.execute(
                ticket_requesters.insert().values(
                    ticket_number=number,
                    user_key=requester.key,
                    requester=requester.as_json(),
                    added_at=now,
                )
            )
            detail = {"note": note}
            await _add_event(
                conn, number, actor=requester.key, kind="opened", detail=detail, at=now
            )
            row = await _ticket_row(conn, number)
            assert row is not None  # noqa: S101 - inserted in this very transaction
            ticket = ticket_from_row(row)
            if jobs is not None:
                change = await _change(
                    conn, ticket, kind="opened", actor=requester.key, at=now, detail=detail
                )
                await insert_jobs(conn, number, jobs(change), now)
        return ticket

    async def _join_ticket(
        self, dedupe_key: str, requester: Requester, jobs: JobsFor | None
    ) -> tuple[TicketRecord, str] | None:
        now = self._clock()
        async with self._engine.begin() as conn:
            query = (
                select(tickets.c.number)
                .where(tickets.c.dedupe_key == dedupe_key)
                .where(tickets.c.status != "resolved")
                .with_for_update()
            )
            number = (await conn.execute(query)).scalar_one_or_none()
            if number is None:
                return None
            added = await conn.execute(
                self._insert(ticket_requesters)
                .values(
                    ticket_number=number,
                    user_key=requester.key,
                    requester=requester.as_json(),
                    added_at=now,
                )
                .on_conflict_do_nothing(
                    index_elements=[ticket_requesters.c.ticket_number, ticket_requesters.c.user_key]
                )
            )
            detail = {"user_key": requester.key, "name": requester.name}
            if added.rowcount == 1:
                await _add_event(
                    conn, number, actor=requester.key, kind="joined", detail=detail, at=now
                )
                await conn.execute(
                    tickets.update().where(tickets.c.number == number).values(updated_at=now)
                )
            row = await _ticket_row(conn, number)
            if row is None:
                return None
            ticket = ticket_from_row(row)
            if added.rowcount == 1 and jobs is not None:
                change = await _change(
                    conn, ticket, kind="joined", actor=requester.key, at=now, detail=detail
                )
                await insert_jobs(conn, number, jobs(change), now)
        return ticket, "joined" if added.rowcount == 1 else "already"

    async def update_ticket(
        self,
        ticket_id: str,
        *,
        expected_version: int,
        actor: str,
        kind: str,
        status: str | None = None,
        assignee: dict[str, Any] | Keep | None = KEEP,
        note: str | Keep | None = KEEP,
        path: dict[str, Any] | Keep = KEEP,
        detail: dict[str, Any] | None = None,
        jobs: JobsFor | None = None,
    ) -> TicketRecord:
        """Change a ticket if it is still at ``expected_version``, and record a ``kind`` event;
        ``jobs`` builds the jobs to enqueue in the same transaction. ``path`` replaces the
        conversation's path (a change asked for, and how far it got, are kept there).

        Raises UnknownTicket, StaleState when someone changed it first, or StoreError when
        reopening it would make two unresolved tickets with one dedupe key.
        """
        number = ticket_number(ticket_id)
        if number is None:
            raise UnknownTicket(f"{ticket_id!r} is not a ticket id")
        if status is not None and status not in TICKET_STATUSES:
            raise ValueError(f"status must be one of {sorted(TICKET_STATUSES)}, not {status!r}")
        now = self._clock()
        changes: dict[str, Any] = {"version": expected_version + 1, "updated_at": now}
        if status is not None:
            changes["status"] = status
        if assignee is not KEEP:
            changes["assignee"] = assignee
        if note is not KEEP:
            changes["note"] = note
        if path is not KEEP:
            changes["path"] = path
        update = (
            tickets.update()
            .where(tickets.c.number == number)
            .where(tickets.c.version == expected_version)
            .values(**changes)
        )
        event_detail = dict(detail or {})
        if status is not None:
            event_detail.setdefault("status", status)
        if assignee is not KEEP:
            event_detail.setdefault("assignee", assignee)
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(update)
                if result.rowcount == 1:
                    await _add_event(
                        conn, number, actor=actor, kind=kind, detail=event_detail, at=now
                    )
                row = await _ticket_row(conn, number)
                if result.rowcount == 1 and row is not None and jobs is not None:
                    change = await _change(
                        conn,
                        ticket_from_row(row),
                        kind=kind,
                        actor=actor,
                        at=now,
                        detail=event_detail,
                    )
                    await insert_jobs(conn, number, jobs(change), now)
        except IntegrityError:
            raise StoreError(
                f"{ticket_id} cannot be reopened: another unresolved ticket has its dedupe key"
            ) from None
        if row is None:
            raise UnknownTicket(f"there is no ticket {ticket_id}")
        if result.rowcount != 1:
            raise StaleState(f"{ticket_id} is no longer at version {expected_version}")
        return ticket_from_row(row)

    async def get_ticket(self, ticket_id: str) -> TicketRecord | None:
        """The ticket with this id ("NDR-1042"); None if there is none or the id is malformed."""
        number = ticket_number(ticket_id)
        if number is None:
            return None
        async with self._engine.begin() as conn:
            row = await _ticket_row(conn, number)
        return ticket_from_row(row) if row is not None else None

    async def get_ticket_by_ref(self, ref: str) -> TicketRecord | None:
        """The ticket with this public reference (what card payloads carry); None if there is
        none, or ``ref`` is not shaped like one (a ticket number is not a reference)."""
        if not is_ticket_ref(ref):
            return None
        async with self._engine.begin() as conn:
            row = (await conn.execute(select(tickets).where(tickets.c.ref == ref))).first()
        return ticket_from_row(row) if row is not None else None

    async def list_tickets(
        self, *, status: str | None = None, requester_key: str | None = None, limit: int = 50
    ) -> list[TicketRecord]:
        """Tickets, newest first, optionally only those with a status or a requester."""
        query = select(tickets).order_by(tickets.c.number.desc()).limit(limit)
        if status is not None:
            query = query.where(tickets.c.status == status)
        if requester_key is not None:
            asked = select(ticket_requesters.c.ticket_number).where(
                ticket_requesters.c.user_key == requester_key
            )
            query = query.where(tickets.c.number.in_(asked))
        async with self._engine.begin() as conn:
            rows = (await conn.execute(query)).all()
        return [ticket_from_row(row) for row in rows]

    async def ticket_events(self, ticket_id: str) -> list[TicketEvent]:
        """The ticket's history, oldest first ([] for an unknown or malformed id)."""
        number = ticket_number(ticket_id)
        if number is None:
            return []
        query = (
            select(ticket_events)
            .where(ticket_events.c.ticket_number == number)
            .order_by(ticket_events.c.id)
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(query)).all()
        return [
            TicketEvent(at=row.at, actor=row.actor, kind=row.kind, detail=dict(row.detail))
            for row in rows
        ]

    async def ticket_requesters(self, ticket_id: str) -> list[Requester]:
        """Everyone waiting on the ticket; the first is the one who opened it."""
        number = ticket_number(ticket_id)
        if number is None:
            return []
        async with self._engine.begin() as conn:
            return await _requesters(conn, number)


async def _requesters(conn: AsyncConnection, number: int) -> list[Requester]:
    """Everyone waiting on ticket ``number``, its opener first, read in ``conn``'s transaction."""
    opener = (
        await conn.execute(select(tickets.c.requester).where(tickets.c.number == number))
    ).scalar_one_or_none()
    rows = (
        await conn.execute(
            select(ticket_requesters.c.user_key, ticket_requesters.c.requester)
            .where(ticket_requesters.c.ticket_number == number)
            .order_by(ticket_requesters.c.added_at, ticket_requesters.c.user_key)
        )
    ).all()
    if opener is None:
        return []
    first = Requester.from_json(opener)
    others = [Requester.from_json(row.requester) for row in rows if row.user_key != first.key]
    return [first, *others]


async def _change(
    conn: AsyncConnection,
    ticket: TicketRecord,
    *,
    kind: str,
    actor: str,
    at: datetime,
    detail: dict[str, Any],
) -> TicketChange:
    """The ticket as a change just left it, with where it is shown, for its ``JobsFor``."""
    platforms = (await conn.execute(select(admin_channels.c.platform))).scalars().all()
    cards = (
        (
            await conn.execute(
                select(ticket_cards.c.platform).where(ticket_cards.c.ticket_number == ticket.number)
            )
        )
        .scalars()
        .all()
    )
    return TicketChange(
        ticket=ticket,
        kind=kind,
        actor=actor,
        at=at,
        detail=detail,
        requesters=await _requesters(conn, ticket.number),
        admin_platforms=frozenset(platforms),
        card_platforms=frozenset(cards),
    )


async def _ticket_row(conn: AsyncConnection, number: int) -> Row[Any] | None:
    return (await conn.execute(select(tickets).where(tickets.c.number == number))).first()


async def _add_event(
    conn: AsyncConnection,
    number: int,
    *,
    actor: str,
    kind: str,
    detail: dict[str, Any],
    at: datetime,
) -> None:
    await conn.execute(
        ticket_events.insert().values(
            ticket_number=number, at=at, actor=actor, kind=kind, detail=detail
        )
    )


__all__ = ["TicketStore"]
