"""A loopback TCP proxy in front of PostgreSQL that a test can make stall or refuse, and an
exclusive lock on a SQLite file: the two ways a real database stops answering.

``stall()`` keeps every connection open and accepts new ones, but forwards nothing (a database
host that froze, a network that drops packets); ``refuse()`` closes every connection and the
listening socket (the database is down); ``resume()`` goes back to forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.engine import make_url


class StallingProxy:
    """Forward 127.0.0.1:<port> to ``upstream`` until told to stall or refuse."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._forwarding = asyncio.Event()
        self._forwarding.set()
        self.port = 0

    async def start(self) -> StallingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, database_url: str) -> str:
        """``database_url`` pointed at this proxy."""
        return (
            make_url(database_url)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )

    def stall(self) -> None:
        self._forwarding.clear()

    async def refuse(self) -> None:
        """Close the listening socket and every connection: connects are refused."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def resume(self) -> None:
        if self._server is None:
            await self.start()
        self._forwarding.set()

    async def close(self) -> None:
        await self.refuse()
        self._forwarding.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._forwarding.wait()
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                await self._forwarding.wait()  # stalled: hold the bytes, forward nothing
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


@contextlib.asynccontextmanager
async def sqlite_locked(path: Path) -> AsyncIterator[None]:
    """Hold an exclusive transaction on the SQLite file at ``path``: every other connection's
    write waits for its busy timeout, then fails with "database is locked" (in WAL mode reads
    go on, from the last committed state). The lock is taken without blocking the event loop
    (the bot under test shares it and may be finishing a write of its own), within 10 s."""
    holder = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        for _ in range(200):
            try:
                holder.execute("BEGIN EXCLUSIVE")
                break
            except sqlite3.OperationalError:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"could not lock {path} within 10 s")
        holder.execute("CREATE TABLE IF NOT EXISTS lock_holder (x)")
        holder.execute("INSERT INTO lock_holder VALUES (1)")
        yield
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()
