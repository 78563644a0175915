"""Whole conversations as data: what the user types, and what the bot's replies must say.

Each transcript is a list of steps ``(user line, [expected substrings, in order])``, optionally
with a third list of substrings that must NOT appear in that turn's replies. A user line is what
one would type into ``python -m bot chat``: plain text, ``/click VALUE``, ``/file PATH`` (paths
under ``tests/corpus/`` are relative to the repository), or ``/paste`` + lines + ``/end`` written
as one string with newlines. ``{tmp}`` in a line stands for a scratch folder the test provides;
it holds :data:`BINARY_FILE`, written by :func:`prepare_tmp`.

The expected fragments are the bot's own words, taken from ``knowledge/data/*.yaml``: the questions
of conversation.yaml and the UI labels of procedures.yaml. Both the in-process test and the
subprocess test of ``tests/test_console.py`` run every transcript here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# A step: (user line, expected substrings in order) or (..., substrings that must not appear).
Step = tuple[str, list[str]] | tuple[str, list[str], list[str]]

BINARY_FILE = "scan.bin"

# The questions, as conversation.yaml words them (the parts without placeholders).
ASK_ROLE = "Did you send the message that bounced, or are you an email admin"
ASK_TYPE = "What kind of recipient is"
ASK_METHOD = "How do you want to let outside senders reach"
ASK_CENTRE = "Where will you make the change?"
ASK_FIXED = "Did that fix it?"
ASK_NOTE = "Is there anything you'd like to add for them?"
REASK = "Sorry, I didn't catch that."
REASK_AGAIN = "I still couldn't match that to an option."
FIXED_NO = "Sorry it still fails."
FIXED_YES = "Great, glad it works now."
TICKET = "Ticket NDR-"
# The UI labels of the article (procedures.yaml, rendered without the ** marks).
NEW_EAC_UNTICK = "Untick Require senders to be authenticated"
CLASSIC_EAC_UNTICK = "Untick Require that all senders are authenticated"


@dataclass(frozen=True)
class Transcript:
    """A named conversation; ``org_domains`` is what ORG_DOMAINS holds while it runs."""

    name: str
    steps: list[Step]
    org_domains: tuple[str, ...] = field(default=())


def prepare_tmp(folder: Path) -> None:
    """Write the files the transcripts refer to as ``{tmp}/...``."""
    # A PNG header and random-looking bytes with NULs: nothing an email reader should accept.
    (folder / BINARY_FILE).write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    )


PASTED_57134 = "\n".join(
    [
        "/paste",
        "Delivery has failed to these recipients or groups:",
        "",
        "help@contoso.com",
        "Your message couldn't be delivered.",
        "",
        "Diagnostic information for administrators:",
        "Generating server: AM9PR04MB8401.eurprd04.prod.outlook.com",
        "help@contoso.com",
        "Remote Server returned '550 5.7.134 RESOLVER.RST.SenderNotAuthenticatedForMailbox; "
        "authentication required [Stage: CreateMessage]'",
        "",
        "Original message headers:",
        "From: Lee Chen <lee.chen@tailspintoys.com>",
        "To: help@contoso.com",
        "Subject: Order 4411",
        "/end",
    ]
)

TRANSCRIPTS: list[Transcript] = [
    Transcript(
        "admin_path_by_clicks",
        [
            ("how do I fix 5.7.12", ["That's 5.7.12", ASK_ROLE, "1. I sent the message"]),
            ("/click admin", [ASK_TYPE, "1. User mailbox", "2. Shared mailbox"], [ASK_ROLE]),
            ("/click Shared mailbox", [ASK_METHOD, "1. Allow everyone", "2. Allow chosen senders"]),
            ("/click 1", [ASK_CENTRE, "1. New Exchange admin center (new EAC)"]),
            (
                "/click classic_eac",
                [
                    "Let everyone mail a shared mailbox (classic EAC)",
                    "https://outlook.office365.com/ecp/",
                    "Mailbox features > Message Delivery Restrictions",
                    CLASSIC_EAC_UNTICK,
                    "Get-Mailbox -Identity",
                    ASK_FIXED,
                    "1. It worked",
                ],
            ),
            ("/click It worked", [FIXED_YES]),
        ],
    ),
    Transcript(
        "admin_path_typed_synonyms_and_typo",
        [
            ("how do I fix 5.7.12", [ASK_ROLE]),
            ("I'm an admin", [ASK_TYPE]),
            ("DL", [ASK_METHOD], [REASK]),
            ("alow evryone", [ASK_CENTRE], [REASK]),
            (
                "PS",
                [
                    "Let everyone mail a distribution group (PowerShell)",
                    "Connect-ExchangeOnline",
                    "Set-DistributionGroup -Identity <recipient address> "
                    "-RequireSenderAuthenticationEnabled $false",
                    ASK_FIXED,
                ],
            ),
        ],
    ),
    Transcript(
        "one_sentence_fills_every_answer",
        [
            (
                "I'm the admin, external people get 5.7.12 mailing our shared mailbox, "
                "I want to allow everyone, I use the new EAC",
                [
                    "Let everyone mail a shared mailbox (new EAC)",
                    "https://admin.exchange.microsoft.com",
                    "Manage mail flow settings",
                    NEW_EAC_UNTICK,
                    ASK_FIXED,
                ],
                [ASK_ROLE, ASK_TYPE, ASK_METHOD, ASK_CENTRE],
            ),
        ],
    ),
    Transcript(
        "attached_57133_group_skips_type",
        [
            (
                "/file tests/corpus/en-new-57133-group.txt",
                ["That's 5.7.133: The recipient is a group", ASK_ROLE],
            ),
            (
                "/click 2",
                [f"{ASK_METHOD} sales@contoso.com?"],
                [ASK_TYPE],
            ),
            ("allow everyone", [ASK_CENTRE]),
            (
                "new admin center",
                [
                    "Let everyone mail a group (new EAC)",
                    "Recipient: sales@contoso.com",
                    "Sender: priya.raman@fabrikam.com",
                    "550 5.7.133",
                    "Edit delivery management",
                    "Allow messages from people inside and outside my organization",
                    ASK_FIXED,
                ],
                [ASK_TYPE],
            ),
        ],
    ),
    Transcript(
        "pasted_57134_mailbox_then_no_then_other_method",
        [
            (PASTED_57134, ["That's 5.7.134: The recipient is a mailbox", ASK_ROLE]),
            (
                "admin",
                [ASK_METHOD],
                [ASK_TYPE],
            ),
            ("method 1", [ASK_CENTRE]),
            ("new EAC", ["The steps differ between these kinds of mailbox", "Which one is"]),
            (
                "user mailbox",
                [
                    "Let everyone mail a user mailbox (new EAC)",
                    "Recipient: help@contoso.com",
                    "Subject: Order 4411",
                    NEW_EAC_UNTICK,
                    ASK_FIXED,
                ],
            ),
            ("no", [FIXED_NO, "1. Try the other method", "2. Escalate to an admin"]),
            (
                "/click other_method",
                [
                    "Let chosen outside senders mail a user mailbox (new EAC)",
                    "Selected senders",
                    "Add sender",
                    "allowed senders list",
                    ASK_FIXED,
                ],
            ),
            ("yep", [FIXED_YES]),
        ],
    ),
    Transcript(
        "attached_57136_mail_user_classic_or_powershell",
        [
            (
                "/file tests/corpus/en-new-57136-mailuser.txt",
                ["That's 5.7.136: The recipient is a mail user", ASK_ROLE],
            ),
            ("I am the admin", [ASK_METHOD], [ASK_TYPE]),
            (
                "allow all",
                [
                    ASK_CENTRE,
                    "1. Classic Exchange admin center (classic EAC)",
                    "2. Exchange Online PowerShell",
                ],
                ["New Exchange admin center"],
            ),
            ("new EAC", ["Mail users can't have their mail flow settings edited in the new EAC"]),
            (
                "classic",
                [
                    "Let everyone mail a mail user (classic EAC)",
                    CLASSIC_EAC_UNTICK,
                    "Get-MailUser -Identity j.moreau@contoso.com",
                    ASK_FIXED,
                ],
            ),
        ],
    ),
    Transcript(
        "sender_outside_domain_gets_a_note",
        [
            ("/file tests/corpus/en-new-57193-m365group.txt", ["That's 5.7.193", ASK_ROLE]),
            (
                "I sent it",
                [
                    "by an email admin at adatum.com",
                    "Note for the email admin at adatum.com:",
                    "Subject: Mail from dana.smith@tailspintoys.com to marketing@adatum.com "
                    "bounced with 5.7.193",
                    '"550 5.7.193"',
                    "Subject: Booth materials for the expo",
                    "Anything else?",
                ],
                ["one of our own domains", ASK_FIXED],
            ),
        ],
        org_domains=("contoso.com",),
    ),
    Transcript(
        "sender_own_domain_is_offered_a_ticket",
        [
            ("/file tests/corpus/en-new-5712-mailbox.txt", ["That's 5.7.12", ASK_ROLE]),
            (
                "/click sender",
                [
                    "contoso.com is one of our own domains",
                    "ana.lopez@contoso.com",
                    "Shall I open a ticket",
                    "1. Open a ticket",
                ],
                ["Note for the email admin"],
            ),
            ("yes", [ASK_NOTE, "1. No note"]),
            ("/click No note", [TICKET, "is open"]),
        ],
        org_domains=("contoso.com", "contoso.net"),
    ),
    Transcript(
        "help_and_cancel",
        [
            ("how do I fix 5.7.12", [ASK_ROLE]),
            ("help", ["Here is what I can do", ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            ("?", ["Here is what I can do", ASK_TYPE]),
            ("cancel", ["Okay, I've stopped."], [ASK_TYPE]),
            ("cancel", ["There's nothing in progress."]),
        ],
    ),
    Transcript(
        "start_over_then_escalate_with_a_note",
        [
            ("how do I fix 5.7.12", [ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            ("start over", ["Let's start over.", "Hi! I help with Exchange Online bounces"]),
            ("how do I fix 5.7.12", [ASK_ROLE], ["Last time you told me"]),
            ("/click admin", [ASK_TYPE]),
            ("escalate", [ASK_NOTE, "1. No note", "2. Don't open a ticket"]),
            ("The CEO is waiting for this mail, please hurry", [TICKET, "is open"]),
        ],
    ),
    Transcript(
        "new_bounce_mid_flow_restarts_with_its_details",
        [
            ("how do I fix 5.7.12", [ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            ("shared mailbox", [ASK_METHOD]),
            (
                "/file tests/corpus/en-new-57133-group.txt",
                [
                    "Got a new bounce; starting again with its details.",
                    "That's 5.7.133: The recipient is a group",
                    f"{ASK_METHOD} sales@contoso.com?",
                ],
                [ASK_ROLE, ASK_TYPE],
            ),
            (
                "/click 2",
                [
                    "I have steps for this only in the Exchange Online PowerShell",
                    "The steps differ between these kinds of group",
                    "1. Distribution group",
                    "2. Dynamic distribution group",
                ],
            ),
            (
                "dynamic DL",
                [
                    "Let chosen outside senders mail a dynamic distribution group (PowerShell)",
                    "Set-DynamicDistributionGroup -Identity sales@contoso.com",
                    ASK_FIXED,
                ],
            ),
        ],
    ),
    Transcript(
        "reask_once_politely_then_offer_help",
        [
            ("how do I fix 5.7.12", [ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            ("banana", [REASK, ASK_TYPE], [REASK_AGAIN]),
            ("purple", [REASK_AGAIN, 'type "help"', ASK_TYPE], [REASK]),
            ("shraed mailbox", [ASK_METHOD], [REASK, REASK_AGAIN]),
        ],
    ),
    Transcript(
        "look_alike_bounces_are_a_different_problem",
        [
            (
                "/file tests/corpus/en-eml-5110-recipient-not-found-b64.eml",
                ["That bounce says 5.1.10", "different problem from 5.7.12", "escalate"],
                [ASK_ROLE],
            ),
            (
                "/file tests/corpus/en-old-5757-client-not-auth.txt",
                ["That bounce says 5.7.57", "different problem from 5.7.12"],
                [ASK_ROLE],
            ),
        ],
    ),
    Transcript(
        "binary_file_refused_and_the_flow_goes_on",
        [
            ("how do I fix 5.7.12", [ASK_ROLE]),
            ("/click admin", [ASK_TYPE]),
            ("/file {tmp}/" + BINARY_FILE, ["I couldn't read that file:", ASK_TYPE]),
            ("M365 group", [ASK_METHOD]),
            ("/click Allow everyone", [ASK_CENTRE]),
            (
                "new admin center",
                [
                    "Let outside senders mail a Microsoft 365 group (new EAC)",
                    "Allow external senders to email this group",
                    ASK_FIXED,
                ],
            ),
        ],
    ),
]
