"""``python -m bot exchange check|fix`` in a child process, pointed at the fake Exchange Online
(tests/fakes_exchange/) by its settings: EXCHANGE_CA_BUNDLE takes the test CA to both MSAL's
sign-in and the cmdlets' aiohttp calls."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes_exchange import FakeExchange

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Ran:
    status: int
    stdout: str
    stderr: str


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakeExchange]:
    exchange = FakeExchange(tmp_path)
    await exchange.start()
    yield exchange
    await exchange.close()


async def bot(tmp_path: Path, env: dict[str, str], *args: str, stdin: str = "") -> Ran:
    """Run the CLI with only ``env`` for settings (no EXCHANGE_ variable of the developer's,
    no .env: it runs in an empty folder)."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("EXCHANGE_", "ORG_"))}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=tmp_path,
        env={**kept, "PYTHONPATH": str(ROOT), **env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(stdin.encode()), 120)
    assert child.returncode is not None
    return Ran(child.returncode, out.decode(), err.decode())


async def test_check_prints_one_json_object(fake: FakeExchange, tmp_path: Path) -> None:
    ran = await bot(tmp_path, fake.env(), "exchange", "check", "Sales@contoso.com")
    assert ran.status == 0, ran.stderr
    assert json.loads(ran.stdout) == {
        "address": "sales@contoso.com",
        "recipient_type_details": "MailUniversalDistributionGroup",
        "recipient_type": "group",  # classify's name for the family
        "require_sender_authentication_enabled": True,
        "accept_messages_only_from": [],
        "accept_messages_only_from_senders_or_members": [],
        "explains_5_7_12": True,
    }
    assert [c.cmdlet for c in fake.calls] == ["Get-Recipient", "Get-DistributionGroup"]


async def test_check_with_the_certificate(fake: FakeExchange, tmp_path: Path) -> None:
    ran = await bot(
        tmp_path, fake.env(certificate=True), "exchange", "check", "project@contoso.com"
    )
    assert ran.status == 0, ran.stderr
    shown = json.loads(ran.stdout)
    assert shown["recipient_type"] == "m365_group"
    assert "client_assertion" in fake.token_requests[0]


async def test_check_says_why_in_one_line(fake: FakeExchange, tmp_path: Path) -> None:
    unknown = await bot(tmp_path, fake.env(), "exchange", "check", "nobody@contoso.com")
    assert unknown.status == 1
    assert unknown.stdout == ""
    assert unknown.stderr.startswith("exchange check: unknown: The operation couldn't be performed")
    assert len(unknown.stderr.strip().splitlines()) == 1

    off = await bot(tmp_path, {}, "exchange", "check", "sales@contoso.com")
    assert off.status == 2
    assert "Exchange Online is off" in off.stderr

    fake.script(403, "Forbidden", times=3)
    denied = await bot(tmp_path, fake.env(), "exchange", "check", "sales@contoso.com")
    assert denied.status == 1
    assert denied.stderr.strip() == "exchange check: denied: Forbidden"


async def test_half_set_is_a_settings_error(fake: FakeExchange, tmp_path: Path) -> None:
    env = fake.env()
    del env["EXCHANGE_CLIENT_SECRET"]
    ran = await bot(tmp_path, env, "exchange", "check", "sales@contoso.com")
    assert ran.status == 2
    assert "EXCHANGE_CLIENT_SECRET or EXCHANGE_CERTIFICATE_PATH is missing" in ran.stderr


async def test_fix_asks_first_and_does_nothing_without_a_yes(
    fake: FakeExchange, tmp_path: Path
) -> None:
    ran = await bot(
        tmp_path,
        fake.env(),
        "exchange",
        "fix",
        "info@contoso.com",
        "--method",
        "allow-everyone",
        stdin="n\n",
    )
    assert ran.status == 1
    assert (
        "Set-Mailbox -Identity info@contoso.com -RequireSenderAuthenticationEnabled $false"
        in ran.stderr
    )
    assert "not confirmed" in ran.stderr
    assert not [c for c in fake.calls if c.cmdlet.startswith("Set-")]


async def test_fix_confirmed_prints_before_and_after(fake: FakeExchange, tmp_path: Path) -> None:
    ran = await bot(
        tmp_path,
        fake.env(),
        "exchange",
        "fix",
        "info@contoso.com",
        "--method",
        "allow-everyone",
        stdin="y\n",
    )
    assert ran.status == 0, ran.stderr
    shown = json.loads(ran.stdout)
    assert shown["before"]["require_sender_authentication_enabled"] is True
    assert shown["after"]["require_sender_authentication_enabled"] is False
    assert shown["after"]["explains_5_7_12"] is False


async def test_fix_allow_sender_with_yes(fake: FakeExchange, tmp_path: Path) -> None:
    ran = await bot(
        tmp_path,
        fake.env(),
        "exchange",
        "fix",
        "sales@contoso.com",
        "--method",
        "allow-sender",
        "--sender",
        "bob@fabrikam.com",
        "--yes",
    )
    assert ran.status == 0, ran.stderr
    shown = json.loads(ran.stdout)
    assert shown["command"].endswith(
        '-AcceptMessagesOnlyFromSendersOrMembers @{Add="bob@fabrikam.com"}'
    )
    assert shown["after"]["accept_messages_only_from_senders_or_members"] == ["bob"]
    (warning,) = shown["warnings"]  # sales had no accept list: from now on only bob may send
    assert "only the senders on it may send" in warning
    (change,) = [c for c in fake.calls if c.cmdlet.startswith("Set-")]
    assert change.cmdlet == "Set-DistributionGroup"


async def test_fix_allow_sender_needs_a_sender(fake: FakeExchange, tmp_path: Path) -> None:
    ran = await bot(
        tmp_path,
        fake.env(),
        "exchange",
        "fix",
        "sales@contoso.com",
        "--method",
        "allow-sender",
        "--yes",
    )
    assert ran.status == 2
    assert "--sender" in ran.stderr
    assert not fake.calls
