"""What the benchmarks share: servers in child processes, their CPU and memory read from /proc,
and a load generator bounded in time.

A server runs alone in its own process so that its CPU time (``/proc/<pid>/stat``) and its
resident memory (``/proc/<pid>/status``) are its own, not the load generator's nor the fakes'.
The child listens on a free port of 127.0.0.1 that the system picks, prints it on its first line,
and stops when its stdin closes, so it goes with its parent even if the parent is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
# How long a child may take to print its port (the language layer may have to train first).
START_SECONDS = 120.0
STOP_SECONDS = 10.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_age(pid: int | str = "self") -> float:
    """Seconds since a process started (its imports included)."""
    started = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - started / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int | str = "self") -> float:
    """A process's resident memory (VmRSS) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def percentile(values: Sequence[float], share: float) -> float:
    """The value below which ``share`` of ``values`` lie (nearest rank); NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def median(values: Sequence[float]) -> float:
    """The median; NaN for none."""
    return statistics.median(values) if values else float("nan")


class ServerFailed(RuntimeError):
    """A child server did not start, or died: the message carries the end of its stderr."""


@dataclass
class Child:
    """A child process that printed its port (or a first line of its own) and waits on stdin."""

    name: str
    process: subprocess.Popen[str]
    first_line: str
    stderr: IO[str]

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    @property
    def port(self) -> int:
        """The port the child listens on."""
        return int(self.first_line)

    def check_alive(self) -> None:
        """Raise :class:`ServerFailed` with the child's stderr if it has died."""
        if self.process.poll() is not None:
            raise ServerFailed(
                f"{self.name} exited with {self.process.returncode}:\n{_tail(self.stderr)}"
            )


def _tail(stderr: IO[str], lines: int = 25) -> str:
    stderr.flush()
    stderr.seek(0)
    return "".join(stderr.readlines()[-lines:]) or "(nothing on stderr)"


@contextlib.asynccontextmanager
async def child(
    name: str,
    arguments: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    start_seconds: float = START_SECONDS,
    stop_seconds: float = STOP_SECONDS,
) -> AsyncIterator[Child]:
    """Run ``python <arguments>`` (a script of ours), wait for its first line, and end it when
    the block ends, whatever happens: stdin closed, then SIGTERM, then SIGKILL (each given
    ``stop_seconds``)."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stderr:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, our own scripts
            [sys.executable, *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
        try:
            assert process.stdout is not None
            try:
                async with asyncio.timeout(start_seconds):
                    first = await asyncio.to_thread(process.stdout.readline)
            except TimeoutError:
                raise ServerFailed(
                    f"{name} printed nothing in {start_seconds:.0f} s:\n{_tail(stderr)}"
                ) from None
            if not first.strip():
                process.wait(timeout=stop_seconds)
                raise ServerFailed(
                    f"{name} did not start (exit {process.returncode}):\n{_tail(stderr)}"
                )
            yield Child(name, process, first.strip(), stderr)
        finally:
            await asyncio.to_thread(_stop, process, stop_seconds)


def _stop(process: subprocess.Popen[str], seconds: float) -> None:
    if process.poll() is None:
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


async def listen(app: web.Application) -> None:
    """In a child: serve ``app`` on a free port of 127.0.0.1, print the port, and stop when the
    parent closes our stdin (or goes away)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await runner.cleanup()


async def serve_here(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve ``app`` in this process on a free port of 127.0.0.1; the runner and the base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


# ---- the load ---------------------------------------------------------------------------------


Request = tuple[bytes, Mapping[str, str]]


@dataclass
class Phase:
    """What one timed phase of load did."""

    requests: int = 0  # answered with an expected status
    errors: int = 0  # any other status, or no answer
    first_error: str = ""
    latencies: list[float] = field(default_factory=list)  # seconds, of the good ones
    seconds: float = 0.0  # from the first request sent to the last answer read

    @property
    def rate(self) -> float:
        """Good requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


async def load(
    url: str,
    request: Callable[[int], Request],
    *,
    connections: int,
    seconds: float,
    statuses: tuple[int, ...] = (200, 201, 202),
    timeout: float = 10.0,
) -> Phase:
    """``connections`` clients, each on its own keep-alive connection, posting one request after
    another (``request(client)`` gives the next body and headers) until ``seconds`` have passed.
    Each request may take ``timeout`` at most, so the phase ends by ``seconds + timeout``."""
    phase = Phase()
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def client(number: int) -> None:
            while time.perf_counter() < deadline:
                body, headers = request(number)
                sent = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        text = await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as error:
                    status, text = -1, repr(error).encode()
                if status in statuses:
                    phase.requests += 1
                    phase.latencies.append(time.perf_counter() - sent)
                else:
                    phase.errors += 1
                    phase.first_error = phase.first_error or f"HTTP {status}: {text[:200]!r}"
                    await asyncio.sleep(0.01)  # a failing server is not hammered in a loop

        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(client(number) for number in range(connections)))
        phase.seconds = time.perf_counter() - started
    return phase
