"""Exchange Online over real HTTPS (bot/exchange/): the token from a fake Entra ID, cmdlets to a
fake admin API (tests/fakes_exchange/), every cmdlet and parameter asserted as Exchange got it;
the directory the dialogs see answers only admins about our own domains."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import Settings, load_settings
from bot.exchange import CmdletClient, CmdletFailed, ExchangeDirectory, Recipients, announce
from bot.exchange.answers import MAX_DETAIL, error_line, problem_of
from bot.exchange.recipients import KINDS
from bot.store import Store
from bot.tickets import Tickets
from dialogs.directory import FixPlan, Lookup
from dialogs.messages import Message
from knowledge.kb import default_knowledge
from tests.fakes_exchange import ANCHOR, CLIENT_SECRET, FakeExchange
from tests.test_log_privacy import logged

KNOWLEDGE = default_knowledge()
HASHTABLE = "#Exchange.GenericHashTable"
#: Every kind the bot fixes: address -> (RecipientTypeDetails, knowledge base id, cmdlet noun).
FIXABLE = {
    "ana@contoso.com": ("UserMailbox", "user_mailbox", "Mailbox"),
    "info@contoso.com": ("SharedMailbox", "shared_mailbox", "Mailbox"),
    "sales@contoso.com": (
        "MailUniversalDistributionGroup",
        "distribution_group",
        "DistributionGroup",
    ),
    "admins@contoso.com": ("MailUniversalSecurityGroup", "security_group", "DistributionGroup"),
    "everyone@contoso.com": (
        "DynamicDistributionGroup",
        "dynamic_distribution_group",
        "DynamicDistributionGroup",
    ),
    "project@contoso.com": ("GroupMailbox", "m365_group", "UnifiedGroup"),
    "partner@contoso.com": ("MailUser", "mail_user", "MailUser"),
    "archive@contoso.com": ("PublicFolder", "public_folder", "MailPublicFolder"),
}
ADMIN = Message(text="", user_id="admin-1", platform="msteams")  # listed in ADMIN_USERS below


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakeExchange]:
    exchange = FakeExchange(tmp_path)
    await exchange.start()
    yield exchange
    await exchange.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def settings_for(fake: FakeExchange, **more: str) -> Settings:
    return load_settings({**fake.env(), **more})


def recipients_for(fake: FakeExchange, session: aiohttp.ClientSession, **more: str) -> Recipients:
    settings = settings_for(fake, **more)
    return Recipients(CmdletClient(settings, session), KNOWLEDGE, settings.org_domains)


@pytest.fixture
async def directory(
    fake: FakeExchange, session: aiohttp.ClientSession, database_url: str
) -> AsyncIterator[ExchangeDirectory]:
    settings = settings_for(fake, ADMIN_USERS="msteams:admin-1", DATABASE_URL=database_url)
    store = await Store.open(database_url)
    try:
        tickets = Tickets(store, KNOWLEDGE, settings)
        recipients = Recipients(CmdletClient(settings, session), KNOWLEDGE)
        yield ExchangeDirectory(recipients, tickets)
    finally:
        await store.close()


# ---- reading recipients ------------------------------------------------------------------------


@pytest.mark.parametrize("address", sorted(FIXABLE))
async def test_every_kind_is_read_with_its_own_cmdlet(
    fake: FakeExchange, session: aiohttp.ClientSession, address: str
) -> None:
    type_details, type_id, noun = FIXABLE[address]
    found = await recipients_for(fake, session).look_up(address)
    assert found.problem is None
    assert found.setting is not None
    assert found.setting.type_details == type_details
    assert found.setting.type_id == type_id
    assert found.setting.require_sender_authentication
    assert found.setting.explains_5_7_12
    assert [(c.cmdlet, c.parameters) for c in fake.calls] == [
        ("Get-Recipient", {"Identity": address}),
        (f"Get-{noun}", {"Identity": address}),
    ]
    headers = fake.calls[0].headers
    assert headers["X-AnchorMailbox"] == ANCHOR
    assert headers["Authorization"] == "Bearer token-1"


async def test_a_recipient_that_already_takes_outside_mail_does_not_explain_the_bounce(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    found = await recipients_for(fake, session).look_up("open@contoso.com")
    assert found.setting is not None
    assert not found.setting.require_sender_authentication
    assert not found.setting.explains_5_7_12


async def test_an_accept_list_is_read(fake: FakeExchange, session: aiohttp.ClientSession) -> None:
    fake.recipients["ana@contoso.com"]["AcceptMessagesOnlyFrom"] = ["bob"]
    fake.recipients["ana@contoso.com"]["AcceptMessagesOnlyFromDLMembers"] = ["sales"]
    found = await recipients_for(fake, session).look_up("ana@contoso.com")
    assert found.setting is not None
    assert found.setting.accept_messages_only_from == ("bob", "sales")
    assert found.setting.accept_messages_only_from_senders_or_members == ()


async def test_an_unknown_recipient_is_unknown_in_exchanges_words(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    found = await recipients_for(fake, session).look_up("nobody@contoso.com")
    assert found.setting is None
    assert found.problem == "unknown"
    assert "nobody@contoso.com" in found.detail
    assert "couldn't be found" in found.detail
    assert "|" not in found.detail  # the Text of Type|Category|Text only
    assert fake.cmdlets() == ["Get-Recipient"]


async def test_a_kind_without_steps_is_shown_and_never_changed(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    recipients = recipients_for(fake, session)
    found = await recipients.look_up("room1@contoso.com")
    assert found.setting is not None
    assert found.setting.type_details == "RoomMailbox"
    assert found.setting.type_id is None
    plan = await recipients.plan("room1@contoso.com", "allow_all", None)
    assert isinstance(plan, Lookup)
    assert "RoomMailbox" in plan.detail
    assert not [c for c in fake.cmdlets() if c.startswith("Set-")]


def test_the_kinds_cmdlets_are_the_knowledge_bases() -> None:
    for type_details, kind in KINDS.items():
        if kind.type_id is None:
            continue
        cmdlets = KNOWLEDGE.recipient_type(kind.type_id).powershell
        assert cmdlets.get_cmdlet == f"Get-{kind.noun}", type_details
        assert cmdlets.set_cmdlet == f"Set-{kind.noun}", type_details
    assert {k.type_id for k in KINDS.values()} - {None} == {r.id for r in KNOWLEDGE.recipient_types}


# ---- throttling, errors, time ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (429, {"error": {"message": "Too many requests"}}, {"Retry_After": "0.2"}),
        (503, "Service Unavailable", {"Retry_After": "0"}),
        (
            500,
            {
                "error": {
                    "message": "You have reached the maximum number of concurrent requests "
                    "per tenant. Please wait before sending another request."
                }
            },
            {},
        ),
    ],
    ids=["429", "503", "concurrent"],
)
async def test_throttled_then_answered(
    fake: FakeExchange,
    session: aiohttp.ClientSession,
    status: int,
    body: Any,
    headers: dict[str, str],
) -> None:
    client = CmdletClient(settings_for(fake), session)
    fake.script(status, body, times=2, **headers)
    found = await client.run("Get-Recipient", {"Identity": "ana@contoso.com"})
    assert found[0]["RecipientTypeDetails"] == "UserMailbox"
    assert [c.status for c in fake.calls] == [status, status, 200]
    assert len({str(c.parameters) for c in fake.calls}) == 1  # the same call each time


async def test_a_wait_too_long_is_unavailable_at_once(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    client = CmdletClient(settings_for(fake), session)
    fake.script(429, "slow down", Retry_After="120")
    started = asyncio.get_running_loop().time()
    with pytest.raises(CmdletFailed) as failed:
        await client.run("Get-Recipient", {"Identity": "ana@contoso.com"})
    assert failed.value.problem == "unavailable"
    assert "busy" in failed.value.detail
    assert asyncio.get_running_loop().time() - started < 5
    assert len(fake.calls) == 1


async def test_throttled_past_the_attempts_is_unavailable(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    client = CmdletClient(settings_for(fake), session)
    fake.script(429, "", times=10, Retry_After="0")
    with pytest.raises(CmdletFailed) as failed:
        await client.run("Get-Recipient", {"Identity": "ana@contoso.com"})
    assert failed.value.problem == "unavailable"
    assert len(fake.calls) == 4


async def test_a_permission_error_is_denied(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    fake.script(
        403,
        {
            "error": {
                "message": "Error executing cmdlet",
                "details": [
                    {
                        "message": "Ex9|UnauthorizedAccessException|The user isn't assigned to "
                        "any management roles that allow Set-Mailbox.",
                        "target": "Set-Mailbox",
                    }
                ],
                "innererror": {"type": "Forbidden"},
            }
        },
    )
    found = await recipients_for(fake, session).look_up("ana@contoso.com")
    assert found.problem == "denied"
    assert found.detail == "The user isn't assigned to any management roles that allow Set-Mailbox."


async def test_a_plain_text_error_is_one_line(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    fake.script(500, "Internal failure:\n  at Microsoft.Exchange.Something()\n")
    found = await recipients_for(fake, session).look_up("ana@contoso.com")
    assert found.problem == "unavailable"
    assert found.detail == "Internal failure: at Microsoft.Exchange.Something()"


async def test_an_html_error_page_is_trimmed_to_its_title(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    page = "<html><head><title>502 - Web server received an invalid response</title></head>"
    fake.script(502, page + "<body>" + "x" * 5000 + "</body></html>")
    found = await recipients_for(fake, session).look_up("ana@contoso.com")
    assert found.problem == "unavailable"
    assert found.detail == "502 - Web server received an invalid response"


def test_error_lines() -> None:
    long_page = "<html><body><p>" + "word " * 500 + "</p></body></html>"
    assert len(error_line(500, long_page, "text/html")) == MAX_DETAIL
    assert error_line(404, "") == "HTTP 404"
    assert error_line(400, '{"error": {"message": "a|b|c|d"}}') == "c|d"
    assert problem_of(401, "whatever") == "denied"
    assert problem_of(400, "ManagementObjectNotFoundException") == "unknown"


async def test_a_slow_answer_is_unavailable_within_the_timeout(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    recipients = recipients_for(fake, session, EXCHANGE_TIMEOUT_SECONDS="1")
    fake.delay = 3.0
    started = asyncio.get_running_loop().time()
    found = await recipients.look_up("ana@contoso.com")
    assert found.problem == "unavailable"
    assert "within 1 s" in found.detail
    assert asyncio.get_running_loop().time() - started < 2.5


# ---- tokens ------------------------------------------------------------------------------------


async def test_the_token_is_kept_until_shortly_before_it_expires_then_renewed(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    # MSAL hands a cached token out until five minutes before it expires: 302 s is 2 s of use.
    fake.expires_in = 302
    client = CmdletClient(settings_for(fake), session)
    await client.run("Get-AcceptedDomain", {})
    await client.run("Get-AcceptedDomain", {})
    assert len(fake.token_requests) == 1
    await asyncio.sleep(2.5)
    await client.run("Get-AcceptedDomain", {})
    assert len(fake.token_requests) == 2
    assert fake.calls[-1].headers["Authorization"] == "Bearer token-2"
    assert fake.token_requests[0]["scope"] == f"{fake.base}/.default"


async def test_a_refused_token_is_renewed_once(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    client = CmdletClient(settings_for(fake), session)
    await client.run("Get-AcceptedDomain", {})
    fake.revoke_tokens()
    await client.run("Get-AcceptedDomain", {})
    assert [c.status for c in fake.calls] == [200, 401, 200]
    assert fake.calls[-1].headers["Authorization"] == "Bearer token-2"


async def test_the_certificate_signs_in_with_a_signed_assertion(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    settings = load_settings(fake.env(certificate=True))
    found = await CmdletClient(settings, session).run("Get-AcceptedDomain", {})
    assert found
    (request,) = fake.token_requests
    assert "client_secret" not in request
    assert request["client_assertion_type"].endswith("jwt-bearer")


async def test_a_wrong_secret_is_denied_without_the_secret(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    settings = load_settings({**fake.env(), "EXCHANGE_CLIENT_SECRET": "wrong-secret-123"})
    found = await Recipients(CmdletClient(settings, session), KNOWLEDGE).look_up("ana@contoso.com")
    assert found.problem == "denied"
    assert found.detail == "AADSTS7000215: Invalid client secret provided."
    assert not fake.calls


# ---- paging ------------------------------------------------------------------------------------


async def test_pages_are_followed_with_the_same_body(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    fake.domains = [
        "contoso.com",
        "contoso.onmicrosoft.com",
        "a.contoso.com",
        "b.contoso.com",
        "c.com",
    ]
    found = await CmdletClient(settings_for(fake), session).run("Get-AcceptedDomain", {})
    assert [d["DomainName"] for d in found] == fake.domains
    assert len(fake.calls) == 3
    assert {c.cmdlet for c in fake.calls} == {"Get-AcceptedDomain"}
    assert fake.calls[1].url.endswith("$skiptoken=2")


async def test_a_next_page_elsewhere_is_not_followed(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    fake.script(
        200, {"value": [{"DomainName": "contoso.com"}], "@odata.nextLink": "https://evil.example/x"}
    )
    with pytest.raises(CmdletFailed) as failed:
        await CmdletClient(settings_for(fake), session).run("Get-AcceptedDomain", {})
    assert "evil.example" in failed.value.detail
    assert len(fake.calls) == 1


# ---- fixing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("address", sorted(FIXABLE))
async def test_allow_all_for_every_kind_is_read_back(
    fake: FakeExchange, session: aiohttp.ClientSession, address: str
) -> None:
    noun = FIXABLE[address][2]
    recipients = recipients_for(fake, session)
    plan = await recipients.plan(address, "allow_all", None)
    assert isinstance(plan, FixPlan)
    assert (
        plan.command == f"Set-{noun} -Identity {address} -RequireSenderAuthenticationEnabled $false"
    )
    assert plan.warnings == ()
    fake.calls.clear()
    outcome = await recipients.apply(plan, "console:tester")
    assert outcome.applied
    assert outcome.before is not None
    assert outcome.before.explains_5_7_12
    assert outcome.after is not None
    assert not outcome.after.explains_5_7_12
    sets = [(c.cmdlet, c.parameters) for c in fake.calls if c.cmdlet.startswith("Set-")]
    assert sets == [
        (f"Set-{noun}", {"Identity": address, "RequireSenderAuthenticationEnabled": False})
    ]
    assert fake.cmdlets()[-1] == f"Get-{noun}"  # read back after the change


@pytest.mark.parametrize("address", sorted(FIXABLE))
async def test_allowed_senders_for_every_kind_adds_the_contact(
    fake: FakeExchange, session: aiohttp.ClientSession, address: str
) -> None:
    noun = FIXABLE[address][2]
    recipients = recipients_for(fake, session)
    plan = await recipients.plan(address, "allowed_senders", "Bob@Fabrikam.com")
    assert isinstance(plan, FixPlan)
    assert plan.sender == "bob@fabrikam.com"
    assert plan.command == (
        f"Set-{noun} -Identity {address} -RequireSenderAuthenticationEnabled $false "
        '-AcceptMessagesOnlyFromSendersOrMembers @{Add="bob@fabrikam.com"}'
    )
    assert len(plan.warnings) == 1  # the list was empty: from now on only the listed may send
    assert "everyone inside the organization included" in plan.warnings[0]
    fake.calls.clear()
    outcome = await recipients.apply(plan, "console:tester")
    assert outcome.applied
    (change,) = [c for c in fake.calls if c.cmdlet.startswith("Set-")]
    assert change.parameters == {
        "Identity": address,
        "RequireSenderAuthenticationEnabled": False,
        "AcceptMessagesOnlyFromSendersOrMembers": {
            "@odata.type": HASHTABLE,
            "Add": ["bob@fabrikam.com"],
        },
    }
    assert outcome.after is not None
    assert outcome.after.accept_messages_only_from_senders_or_members == ("bob",)


async def test_a_sender_is_added_never_replacing_the_list(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    recipients = recipients_for(fake, session)
    plan = await recipients.plan("board@contoso.com", "allowed_senders", "bob@fabrikam.com")
    assert isinstance(plan, FixPlan)
    assert plan.warnings == ()  # a list already: nobody new is shut out
    outcome = await recipients.apply(plan, "console:tester")
    assert outcome.after is not None
    assert outcome.after.accept_messages_only_from_senders_or_members == ("ana", "bob")


async def test_an_outside_sender_not_in_the_directory_needs_a_contact_first(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    plan = await recipients_for(fake, session).plan(
        "ana@contoso.com", "allowed_senders", "carol@tailspin.example"
    )
    assert isinstance(plan, Lookup)
    assert plan.problem == "unknown"
    assert "mail contact" in plan.detail
    assert "carol@tailspin.example" in plan.detail
    assert not [c for c in fake.cmdlets() if c.startswith("Set-")]


async def test_an_inside_sender_is_a_mailbox(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    plan = await recipients_for(fake, session).plan(
        "sales@contoso.com", "allowed_senders", "ana@contoso.com"
    )
    assert isinstance(plan, FixPlan)
    assert plan.sender == "ana@contoso.com"


async def test_a_plan_changed_on_the_way_runs_nothing(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    recipients = recipients_for(fake, session)
    plan = await recipients.plan("ana@contoso.com", "allow_all", None)
    assert isinstance(plan, FixPlan)
    forged = FixPlan(plan.address, plan.method, None, plan.command + "; Remove-Mailbox ana")
    outcome = await recipients.apply(forged, "console:tester")
    assert not outcome.applied
    assert outcome.problem == "unavailable"
    assert not [c for c in fake.cmdlets() if c.startswith(("Set-", "Remove-"))]


async def test_a_change_is_logged_with_who_what_before_and_after(
    fake: FakeExchange, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    recipients = recipients_for(fake, session)
    plan = await recipients.plan("info@contoso.com", "allow_all", None)
    assert isinstance(plan, FixPlan)
    with caplog.at_level(logging.INFO, logger="bot.exchange"):
        await recipients.apply(plan, "msteams:admin-1")
    (record,) = [r for r in caplog.records if r.getMessage() == "exchange change"]
    assert record.levelno == logging.INFO
    assert record.who == "msteams:admin-1"  # type: ignore[attr-defined]
    assert record.cmdlet == "Set-Mailbox"  # type: ignore[attr-defined]
    assert record.parameters == {  # type: ignore[attr-defined]
        "Identity": "info@contoso.com",
        "RequireSenderAuthenticationEnabled": False,
    }
    assert record.before["require_sender_authentication_enabled"] is True  # type: ignore[attr-defined]
    assert record.after["require_sender_authentication_enabled"] is False  # type: ignore[attr-defined]


# ---- who the directory answers -----------------------------------------------------------------


async def test_the_directory_answers_an_admin_about_our_domains(
    fake: FakeExchange, directory: ExchangeDirectory
) -> None:
    found = await directory.look_up(ADMIN, "Sales@Contoso.com")
    assert found is not None
    assert found.setting is not None
    assert found.setting.type_id == "distribution_group"
    await directory.look_up(ADMIN, "ana@contoso.com")
    assert fake.cmdlets().count("Get-AcceptedDomain") == 1  # read once, kept


async def test_the_directory_plans_and_applies_for_an_admin(
    fake: FakeExchange, directory: ExchangeDirectory
) -> None:
    plan = await directory.plan_fix(ADMIN, "project@contoso.com", "allow_all", None)
    assert isinstance(plan, FixPlan)
    outcome = await directory.apply_fix(ADMIN, plan)
    assert outcome.applied
    assert fake.recipients["project@contoso.com"]["RequireSenderAuthenticationEnabled"] is False


async def test_the_directory_does_not_answer_someone_not_an_admin(
    fake: FakeExchange, directory: ExchangeDirectory
) -> None:
    someone = Message(text="", user_id="someone", platform="msteams")
    assert await directory.look_up(someone, "sales@contoso.com") is None
    assert await directory.plan_fix(someone, "sales@contoso.com", "allow_all", None) is None
    plan = FixPlan(
        "sales@contoso.com",
        "allow_all",
        None,
        "Set-DistributionGroup -Identity sales@contoso.com"
        " -RequireSenderAuthenticationEnabled $false",
    )
    outcome = await directory.apply_fix(someone, plan)
    assert outcome.problem == "denied"
    assert not fake.calls


async def test_the_directory_does_not_answer_about_another_organizations_address(
    fake: FakeExchange, directory: ExchangeDirectory
) -> None:
    assert await directory.look_up(ADMIN, "bob@fabrikam.com") is None
    assert await directory.look_up(ADMIN, "not an address") is None
    assert fake.cmdlets() == ["Get-AcceptedDomain"]


async def test_org_domains_stand_in_for_the_accepted_domains(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    recipients = recipients_for(fake, session, ORG_DOMAINS="fabrikam.com")
    assert await recipients.domains() == {"fabrikam.com"}
    assert not fake.calls


async def test_domains_not_read_are_said_not_taken_for_foreign(
    fake: FakeExchange, directory: ExchangeDirectory
) -> None:
    fake.script(503, "down", times=10, Retry_After="0")
    found = await directory.look_up(ADMIN, "sales@contoso.com")
    assert found is not None
    assert found.problem == "unavailable"


# ---- logs --------------------------------------------------------------------------------------


async def test_no_log_line_holds_the_secret_or_a_token(
    fake: FakeExchange, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(fake)
    with caplog.at_level(logging.DEBUG):
        announce(settings)
        recipients = Recipients(CmdletClient(settings, session), KNOWLEDGE)
        fake.script(429, "", Retry_After="0")
        plan = await recipients.plan("ana@contoso.com", "allowed_senders", "bob@fabrikam.com")
        assert isinstance(plan, FixPlan)
        await recipients.apply(plan, "console:tester")
        fake.revoke_tokens()
        await recipients.look_up("nobody@contoso.com")
        wrong = load_settings({**fake.env(), "EXCHANGE_CLIENT_SECRET": "wrong-" + CLIENT_SECRET})
        await Recipients(CmdletClient(wrong, session), KNOWLEDGE).look_up("ana@contoso.com")
    everything = logged(caplog.records, logging.DEBUG) + caplog.text
    assert "exchange online on" in everything
    assert CLIENT_SECRET not in everything
    assert "token-1" not in everything
    assert "token-2" not in everything


def test_the_start_says_whether_exchange_is_on(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bot.exchange"):
        announce(load_settings({}))
    (line,) = caplog.records
    assert line.exchange == "off"  # type: ignore[attr-defined]


# ---- the runtime -------------------------------------------------------------------------------


async def test_the_runtime_hands_the_dialogs_a_directory_when_exchange_is_set(
    fake: FakeExchange, database_url: str
) -> None:
    from bot.runtime import open_runtime

    settings = settings_for(fake, DATABASE_URL=database_url, ADMIN_USERS="msteams:admin-1")
    async with open_runtime(settings, conversing=False) as runtime:
        directory = runtime.turns.context.directory
        assert isinstance(directory, ExchangeDirectory)
        found = await directory.look_up(ADMIN, "info@contoso.com")
        assert found is not None
        assert found.setting is not None
    async with open_runtime(load_settings({"DATABASE_URL": database_url}), conversing=False) as off:
        assert off.turns.context.directory is None


async def test_a_plan_whose_sender_is_not_in_the_directory_runs_nothing(
    fake: FakeExchange, session: aiohttp.ClientSession
) -> None:
    recipients = recipients_for(fake, session)
    command = (
        "Set-Mailbox -Identity ana@contoso.com -RequireSenderAuthenticationEnabled $false "
        '-AcceptMessagesOnlyFromSendersOrMembers @{Add="mallory@evil.example"}'
    )
    forged = FixPlan("ana@contoso.com", "allowed_senders", "mallory@evil.example", command)
    outcome = await recipients.apply(forged, "console:tester")
    assert outcome.problem == "unknown"
    assert not [c for c in fake.cmdlets() if c.startswith("Set-")]
