"""The command line: ``python -m bot <command>``. Each command is a small function of its own."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from bot.classify import classify_bytes
from bot.config import DEFAULT_ENV_FILE, Settings, SettingsError, load_settings
from bot.logs import configure_logging
from knowledge.kb import KnowledgeError, default_knowledge

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from bot.store import migrate

# The commands that run the bot (chat, tickets, serve) import the store, the channels and the
# server when they run, and ``manifest`` the platform packages (they import their SDKs):
# classify, which scripts call once per message, starts without them.
from knowledge.ndr import MAX_INPUT_BYTES, InputRejected, read_limited


def _read_input(source: str, stdin: IO[bytes]) -> bytes:
    if source == "-":
        return read_limited(stdin)
    path = Path(source)
    if path.is_dir():
        raise InputRejected(f"{source} is a folder, not a message file.")
    try:
        with path.open("rb") as handle:
            return read_limited(handle)
    except FileNotFoundError:
        raise InputRejected(f"{source}: no such file.") from None
    except PermissionError:
        raise InputRejected(f"{source}: permission denied.") from None
    except OSError as error:
        raise InputRejected(f"{source}: cannot be read ({error.strerror or error}).") from None


def _classify(args: argparse.Namespace) -> int:
    try:
        data = _read_input(args.file, sys.stdin.buffer)
        result = classify_bytes(data)
    except InputRejected as refused:
        print(f"classify: {refused}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False))
    return 0


def _settings(overrides: dict[str, str] | None = None) -> Settings:
    try:
        if overrides:
            return load_settings({**_environment(), **overrides}, env_file=DEFAULT_ENV_FILE)
        return load_settings()
    except SettingsError as error:
        raise _Stop(f"The settings are not valid:\n{error}", 2) from None


def _environment() -> dict[str, str]:
    return dict(os.environ)


class _Stop(Exception):
    """Ends a command with a message on stderr and an exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


async def _with_runtime(
    settings: Settings, work: Callable[[Runtime], Awaitable[int]], *, conversing: bool = True
) -> int:
    from bot.runtime import open_runtime  # noqa: PLC0415 - see the note at the imports
    from bot.store import SchemaMismatch, StoreError  # noqa: PLC0415

    try:
        async with open_runtime(settings, conversing=conversing) as runtime:
            return await work(runtime)
    except SchemaMismatch as error:
        raise _Stop(f"Refused to start: {error}", 3) from None
    except StoreError as error:
        raise _Stop(f"The database is not reachable: {error}", 3) from None
    except KnowledgeError as error:  # a text a platform declares is missing (see open_runtime)
        raise _Stop(f"The knowledge base is not valid: {error}", 3) from None


def _chat(args: argparse.Namespace) -> int:
    from bot.channels.console import (  # noqa: PLC0415 - see the note at the imports
        ConsoleChannel,
        terminal_prompt,
    )

    settings = _settings()
    configure_logging(settings.log_level if args.verbose else "WARNING")
    interactive = sys.stdin.isatty() and sys.stdout.isatty()

    async def chat(runtime: Runtime) -> int:
        channel = ConsoleChannel(
            runtime.turns,
            stdin=sys.stdin,
            stdout=sys.stdout,
            user_id=args.user,
            user_name=args.name or args.user,
            conversation_id=args.conversation,
            interactive=interactive,
            echo=(not sys.stdin.isatty()) if args.echo is None else args.echo,
            # On a terminal prompt_toolkit reads the lines: a pasted bounce is one message.
            reader=terminal_prompt() if interactive else None,
        )
        return await channel.run()

    return asyncio.run(_with_runtime(settings, chat))


def _tickets(args: argparse.Namespace) -> int:
    from bot.tickets import terminal  # noqa: PLC0415 - see the note at the imports

    settings = _settings()
    configure_logging("WARNING")

    async def tickets(runtime: Runtime) -> int:
        if args.action in _TICKET_ACTIONS:
            return await _act_on_ticket(runtime, args)
        if args.action == "show":
            ticket = await runtime.store.tickets.get_ticket(args.id)
            if ticket is None:
                raise _Stop(f"No ticket {args.id}.", 1)
            events = await runtime.store.tickets.ticket_events(ticket.id)
            requesters = await runtime.store.tickets.ticket_requesters(ticket.id)
            pending = await runtime.store.jobs.ticket_jobs(ticket.id, pending=True)
            print(terminal.show(ticket, events, requesters, pending=pending, as_json=args.json))
        else:
            found = await runtime.store.tickets.list_tickets(status=args.status, limit=args.limit)
            print(terminal.table(found, as_json=args.json))
        return 0

    return asyncio.run(_with_runtime(settings, tickets, conversing=False))


_TICKET_ACTIONS = ("assign", "reply", "resolve", "reopen")


async def _act_on_ticket(runtime: Runtime, args: argparse.Namespace) -> int:
    """An admin's action from the terminal, as trusted as the database it reads. The jobs it
    queues (cards, the requester's news, the webhook) are delivered by the running server."""
    from bot.tickets import TERMINAL, Action, ActionRequest, Actor  # noqa: PLC0415

    name = args.as_name or _login()
    actor = Actor(TERMINAL, name, name)
    action = {
        "assign": Action.ASSIGN,
        "reply": Action.REPLY,
        "resolve": Action.RESOLVE,
        "reopen": Action.REOPEN,
    }[args.action]
    assignee = None
    if args.action == "assign":
        assignee = actor if args.to in (None, "me") else Actor(TERMINAL, args.to, args.to)
        if assignee is actor:
            action = Action.ASSIGN_ME
    text = getattr(args, "note", None) or getattr(args, "text", None)
    result = await runtime.tickets.act(
        ActionRequest(args.id, action, actor, seen_version=None, assignee=assignee, text=text)
    )
    if not result.applied:
        raise _Stop(result.message, 1)
    print(result.message)
    return 0


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "terminal"


def _serve(args: argparse.Namespace) -> int:
    from bot.app import create_app, run  # noqa: PLC0415 - see the note at the imports

    overrides = {k: v for k, v in (("HOST", args.host), ("PORT", args.port)) if v is not None}
    settings = _settings(overrides)
    configure_logging(settings.log_level)
    return run(create_app(settings), settings)


def _db(args: argparse.Namespace) -> int:
    """``db upgrade`` and ``db current`` on DATABASE_URL: the schema's revision (Alembic);
    ``db revision`` writes the next one for a developer (no database of theirs needed)."""
    from bot.store import SchemaMismatch, StoreError, migrate  # noqa: PLC0415 - see the imports

    configure_logging("WARNING")
    try:
        if args.action == "revision":
            print(f"Wrote {asyncio.run(migrate.new_revision(args.message))}: read it over.")
            return 0
        settings = _settings()
        if args.action == "current":
            found = asyncio.run(migrate.status(settings.database_url))
            print(found.describe())
            return 0 if found.state is migrate.State.LATEST else 1
        done = asyncio.run(migrate.upgrade(settings.database_url))
    except SchemaMismatch as error:
        raise _Stop(f"Cannot upgrade: {error}", 3) from None
    except StoreError as error:
        raise _Stop(f"The database is not reachable: {error}", 3) from None
    print(_upgraded(done))
    return 0


def _upgraded(done: migrate.Upgraded) -> str:
    from bot.store.migrate import State  # noqa: PLC0415 - see the note at the imports

    before = done.before
    if before.state is State.LATEST:
        return f"The database is at {done.after}, the latest revision: nothing to do."
    if before.state is State.EMPTY:
        return f"Created the database's tables at {done.after}, the latest revision."
    if before.state is State.UNVERSIONED:
        start = f"Recognised a database made before migrations as {before.recognised}"
        if before.missing:
            start += f" (created its missing tables: {', '.join(before.missing)})"
        if before.recognised == done.after:
            return f"{start} and stamped it; {done.after} is the latest revision."
        return f"{start}, stamped it and upgraded it to {done.after}, the latest revision."
    return f"Upgraded the database from {before.current} to {done.after}, the latest revision."


def _exchange(args: argparse.Namespace) -> int:
    from bot.exchange import terminal  # noqa: PLC0415 - see the note at the imports

    settings = _settings()
    configure_logging("WARNING")
    knowledge = default_knowledge()
    try:
        if args.action == "check":
            return asyncio.run(terminal.check(settings, knowledge, args.address, sys.stdout))
        confirm = None if args.yes else terminal.ask_on(sys.stdin, sys.stderr)
        return asyncio.run(
            terminal.fix(
                settings,
                knowledge,
                args.address,
                args.method,
                args.sender,
                confirm=confirm,
                out=sys.stdout,
            )
        )
    except terminal.Failed as failed:
        raise _Stop(f"exchange {args.action}: {failed}", failed.status) from None


def _manifest(args: argparse.Namespace) -> int:
    # Here, not at the top: each platform's package loads its SDK, which classify goes without.
    from bot.channels.slack import manifest as slack_manifest  # noqa: PLC0415
    from bot.channels.teams import package as teams_package  # noqa: PLC0415

    try:
        if args.kind == "teams":
            out = teams_package.build_package(
                app_id=args.app_id, out=Path(args.out), name=args.name, domain=args.domain
            )
            print(f"Wrote {out}")
        else:
            text = slack_manifest.render_manifest(url=args.url, socket_mode=args.socket_mode)
            if args.out == "-":
                sys.stdout.write(text)
            else:
                Path(args.out).write_text(text, encoding="utf-8")
                print(f"Wrote {args.out}")
    except (teams_package.PackageError, slack_manifest.ManifestError) as error:
        raise _Stop(f"manifest: {error}", 2) from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one sub-command per contract in DESIGN.md."""
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="NDR helpdesk bot: reads Exchange Online 5.7.12 bounces and guides the fix.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    classify = commands.add_parser(
        "classify",
        help="read one message (text, HTML or .eml) and print what the bot reads in it, as JSON",
        description=(
            "Read one message and print one JSON object: intent, status, smtp_code, resolver, "
            "recipients, sender, recipient_domain, recipient_type, language. "
            f"Input over {MAX_INPUT_BYTES // (1024 * 1024)} MB or binary input is refused."
        ),
    )
    classify.add_argument("file", nargs="?", default="-", help="a file, or - for stdin (default)")
    classify.set_defaults(handler=_classify)

    serve = commands.add_parser(
        "serve",
        help="run the server: Teams at /api/messages, Slack at /slack/events, health, metrics",
    )
    serve.add_argument("--host", help="address to listen on (default HOST or 127.0.0.1)")
    serve.add_argument("--port", help="port to listen on (default PORT or 3978)")
    serve.set_defaults(handler=_serve)

    manifest = commands.add_parser("manifest", help="write the Teams app package or Slack manifest")
    kinds = manifest.add_subparsers(dest="kind", required=True, metavar="PLATFORM")
    teams = kinds.add_parser("teams", help="the Teams app package (a zip to upload)")
    teams.add_argument("--app-id", required=True, help="the bot's Microsoft App ID (a GUID)")
    teams.add_argument("--out", default="ndrbot-teams.zip", help="the zip to write")
    teams.add_argument("--name", help="the app's short name in Teams (default from the template)")
    teams.add_argument("--domain", help="the bot's public host name, for validDomains")
    slack = kinds.add_parser("slack", help="the Slack app manifest (YAML)")
    slack.add_argument("--url", help="the bot's public base URL, e.g. https://bot.contoso.com")
    slack.add_argument("--socket-mode", action="store_true", help="Socket Mode: no request URLs")
    slack.add_argument("--out", default="-", help="the file to write (default: stdout)")
    manifest.set_defaults(handler=_manifest)

    chat = commands.add_parser(
        "chat",
        help="talk to the bot in the terminal (piped stdin: one line per turn)",
        description=(
            "Talk to the bot in the terminal. With piped input each line is one user turn. "
            "Lines /file PATH, /click VALUE and /paste ... /end send a file, press a button and "
            "send several lines at once. State is kept in DATABASE_URL, so a conversation "
            "survives a restart."
        ),
    )
    chat.add_argument("--user", default="local-user", help="who is talking (default local-user)")
    chat.add_argument("--name", default="", help="the user's display name")
    chat.add_argument(
        "--conversation", default="console", help="which conversation (default console)"
    )
    chat.add_argument("-v", "--verbose", action="store_true", help="log at LOG_LEVEL to stderr")
    chat.add_argument(
        "--echo",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="print each piped line before the bot's answer (the default when stdin is not a "
        "terminal; --no-echo to leave it out)",
    )
    chat.set_defaults(handler=_chat)

    tickets = commands.add_parser(
        "tickets",
        help="list, show or work escalation tickets",
        description=(
            "The ticket store from the terminal. assign, reply, resolve and reopen act as an admin "
            "(the terminal is trusted) and queue the cards' updates, the requester's news and the "
            "webhook event; the running server delivers them."
        ),
    )
    actions = tickets.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the newest tickets first")
    listing.add_argument("--status", choices=["open", "assigned", "resolved"])
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = actions.add_parser("show", help="one ticket with its history")
    show.add_argument("id", help="a ticket id such as NDR-1001")
    show.add_argument("--json", action="store_true", help="print JSON")
    as_help = "the admin's name on the card's note (default: your login name)"
    assign = actions.add_parser("assign", help="assign a ticket to someone, or to you")
    assign.add_argument("id", help="a ticket id such as NDR-1001")
    assign.add_argument("--to", help="who takes it (a name; default: you)")
    assign.add_argument("--as", dest="as_name", help=as_help)
    reply = actions.add_parser("reply", help="send the requester a message on a ticket")
    reply.add_argument("id", help="a ticket id such as NDR-1001")
    reply.add_argument("--text", required=True, help="the message for the requester")
    reply.add_argument("--as", dest="as_name", help=as_help)
    resolve = actions.add_parser("resolve", help="resolve a ticket with a note")
    resolve.add_argument("id", help="a ticket id such as NDR-1001")
    resolve.add_argument("--note", required=True, help="the resolution, for the requester")
    resolve.add_argument("--as", dest="as_name", help=as_help)
    reopen = actions.add_parser("reopen", help="reopen a resolved ticket")
    reopen.add_argument("id", help="a ticket id such as NDR-1001")
    reopen.add_argument("--as", dest="as_name", help=as_help)
    tickets.set_defaults(handler=_tickets)

    db = commands.add_parser(
        "db",
        help="the database's schema: upgrade it to this version's, or show its revision",
        description=(
            "The schema of DATABASE_URL, versioned by Alembic's revisions. The server creates an "
            "empty database itself and refuses one that is behind: back it up, run "
            "'db upgrade', then start the server again."
        ),
    )
    db_actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    db_actions.add_parser(
        "upgrade",
        help="upgrade to the latest revision (a database made before migrations is recognised)",
    )
    db_actions.add_parser(
        "current", help="print the revision and whether it is the latest (exit 1 when not)"
    )
    revision = db_actions.add_parser(
        "revision",
        help="for developers: write the next revision from what bot/store/schema.py changed",
    )
    revision.add_argument("message", help="what the revision changes, e.g. 'ticket public ref'")
    db.set_defaults(handler=_db)

    exchange = commands.add_parser(
        "exchange",
        help="read or fix a recipient in Exchange Online (needs the EXCHANGE_ settings)",
        description=(
            "One recipient in Exchange Online, as the bot's app sees it. check prints how it is "
            "set as JSON; fix stops it requiring authenticated senders (allow-everyone) or adds "
            "one sender to its accept list (allow-sender), after showing the exact cmdlet."
        ),
    )
    exchange_actions = exchange.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = exchange_actions.add_parser("check", help="how a recipient is set, as JSON")
    check.add_argument("address", help="the recipient's address, e.g. sales@contoso.com")
    fix = exchange_actions.add_parser("fix", help="let outside senders reach a recipient")
    fix.add_argument("address", help="the recipient's address, e.g. sales@contoso.com")
    fix.add_argument("--method", required=True, choices=["allow-everyone", "allow-sender"])
    fix.add_argument("--sender", help="allow-sender: who may send (a mail contact or user)")
    fix.add_argument("--yes", action="store_true", help="run it without asking")
    exchange.set_defaults(handler=_exchange)

    nlu = commands.add_parser("nlu", help="the language layer: test it on its data, lint the data")
    nlu_actions = nlu.add_subparsers(dest="action", required=True, metavar="ACTION")
    nlu_test = nlu_actions.add_parser(
        "test", help="precision, recall and F1 per intent and slot, the confusion matrix, misreads"
    )
    nlu_test.add_argument(
        "--folds", type=int, default=5, help="cross-validation folds (default 5; 0: held-out only)"
    )
    nlu_test.add_argument("--misreads", type=int, default=40, help="misreads to list (default 40)")
    nlu_test.add_argument("--data", type=Path, help="a folder of training files instead")
    nlu_check = nlu_actions.add_parser(
        "check", help="lint the data: duplicates, one utterance under two intents, bad values"
    )
    nlu_check.add_argument("--data", type=Path, help="a folder of training files instead")
    nlu.set_defaults(handler=_nlu)
    return parser


def _nlu(args: argparse.Namespace) -> int:
    from dialogs.understanding.data import (  # noqa: PLC0415 - see the note at the imports
        DataError,
        load_training_data,
    )
    from dialogs.understanding.evaluate import (  # noqa: PLC0415
        confusion_matrix,
        cross_validate,
        format_report,
        held_out,
        lint,
    )

    try:
        data = load_training_data(args.data)
    except DataError as error:
        raise _Stop(f"The training data is not valid: {error}", 2) from None
    knowledge = default_knowledge()
    if args.action == "check":
        problems = lint(knowledge, data)
        for problem in problems:
            print(problem)
        print(f"{len(data.examples)} examples, {len(problems)} problems")
        return 1 if problems else 0
    report = held_out(knowledge, data)
    print(format_report(report, "Held-out split (never trained on)", misreads=args.misreads))
    if args.folds > 1:
        folds = cross_validate(knowledge, data, args.folds)
        print()
        print(format_report(folds, f"{args.folds}-fold cross-validation", misreads=args.misreads))
        print()
        print("Confusion matrix (rows: expected, columns: read):")
        print(confusion_matrix(folds))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status."""
    args = build_parser().parse_args(argv)
    try:
        default_knowledge()
    except KnowledgeError as error:
        print(f"The knowledge base is not valid: {error}", file=sys.stderr)
        return 3
    handler = args.handler
    try:
        status: int = handler(args)
    except _Stop as stop:
        print(stop, file=sys.stderr)
        return stop.status
    except KeyboardInterrupt:
        return 130
    return status
