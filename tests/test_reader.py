"""The bounce reader's pieces, one behaviour each (the corpus tests run it on whole messages)."""

from __future__ import annotations

import io

import pytest

from knowledge.ndr import (
    BinaryInput,
    InputTooLarge,
    find_addresses,
    html_to_text,
    read_bounce,
    read_limited,
    slack_to_text,
)

OLD_FORMAT = """Delivery has failed to these recipients or groups:

sales@contoso.com
Your message couldn't be delivered.

Diagnostic information for administrators:

Generating server: BN6PR11MB1234.namprd11.prod.outlook.com

sales@contoso.com
Remote Server returned '550 {status} {resolver}; authentication required [Stage: CreateMessage]'

Original message headers:

Received: from BN6PR11MB5678.namprd11.prod.outlook.com (2603:10b6:404:11::22) by
 BN6PR11MB1234.namprd11.prod.outlook.com with HTTPS; id 15.20.7452.28
From: Alex Wilber <alex@fabrikam.com>
To: Sales <sales@contoso.com>, Bob <bob@contoso.com>
Subject: Q3 pricing
"""


def old_format(status: str, resolver: str = "RESOLVER.RST.SenderNotAuthenticatedForGroup") -> str:
    return OLD_FORMAT.format(status=status, resolver=resolver)


def test_old_format_facts() -> None:
    bounce = read_bounce(old_format("5.7.133"))
    assert bounce.is_bounce
    assert bounce.status == "5.7.133"
    assert bounce.smtp_code == "550"
    assert bounce.resolver == "RESOLVER.RST.SenderNotAuthenticatedForGroup"
    assert bounce.recipients == ("sales@contoso.com",)  # bob was on the mail but did not fail
    assert bounce.sender == "alex@fabrikam.com"
    assert bounce.subject == "Q3 pricing"
    assert bounce.reporting_server == "BN6PR11MB1234.namprd11.prod.outlook.com"
    assert bounce.recipient_type == "group"
    assert bounce.in_family
    assert not bounce.forwarded


def test_5_7_124_is_never_read_as_5_7_12() -> None:
    bounce = read_bounce(old_format("5.7.124", "RESOLVER.RST.RestrictedToGroupPermission"))
    assert bounce.status == "5.7.124"
    question = read_bounce("what does 5.7.124 mean?")
    assert question.status == "5.7.124"
    assert question.mentioned_statuses == ("5.7.124",)


@pytest.mark.parametrize(
    "text",
    [
        "We upgraded to MySQL 5.7.12 last night",
        "ping 10.5.7.12 and tell me",
        "release v15.7.12 is out",
        "server build 15.20.5.7.12",
        "mysqld Ver 5.7.12-log for Linux",
        "Exchange version 5.7.12 installed",
    ],
)
def test_version_numbers_and_addresses_are_not_status_codes(text: str) -> None:
    bounce = read_bounce(text)
    assert bounce.status is None
    assert not bounce.is_bounce


def test_teams_html_keeps_the_address_behind_a_named_link() -> None:
    html = (
        "<div><p>Delivery has failed to these recipients or groups:</p>"
        '<p><a href="mailto:sales@contoso.com">Sales Team</a></p>'
        "<p>Remote Server returned&nbsp;'550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup;"
        " authentication required'</p><!-- <p>550 5.1.1 hidden</p> --><style>p{x:1}</style></div>"
    )
    text = html_to_text(html)
    assert "Sales Team <sales@contoso.com>" in text
    assert "hidden" not in text
    assert "x:1" not in text
    bounce = read_bounce(html)
    assert bounce.format == "html"
    assert bounce.recipients == ("sales@contoso.com",)
    assert bounce.status == "5.7.133"


def test_slack_markup_is_undone() -> None:
    text = (
        "Sent to <mailto:sales@contoso.com|sales@contoso.com> &lt;ok&gt; &amp; <https://x.y|docs>"
    )
    assert slack_to_text(text) == "Sent to sales@contoso.com <ok> & docs"


def test_outlook_plain_text_links_do_not_glue_names_to_addresses() -> None:
    bounce = read_bounce(
        "Delivery has failed to these recipients or groups:\n"
        "Sales Team<mailto:sales@contoso.com>\n"
        "Remote Server returned '550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup'\n"
    )
    assert bounce.format == "text"
    assert bounce.recipients == ("sales@contoso.com",)


def test_addresses_are_found_and_lower_cased() -> None:
    text = "Mail Sales@Contoso.COM, not a@b, nor x@y.z1, but 'o.brien+tag@mail.adatum.com'."
    assert [a for _, a in find_addresses(text)] == [
        "sales@contoso.com",
        "o.brien+tag@mail.adatum.com",
    ]


def test_system_addresses_are_never_the_sender_or_a_recipient() -> None:
    bounce = read_bounce(
        "From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@fabrikam.com>\n"
        "Sent: Monday, June 3, 2024 10:01 AM\n"
        "To: Alex Wilber <alex@fabrikam.com>\n"
        "Subject: Undeliverable: Q3 pricing\n\n" + old_format("5.7.134").replace("From:", "X-F:")
    )
    assert bounce.sender == "alex@fabrikam.com"
    assert bounce.recipients == ("sales@contoso.com",)
    assert bounce.forwarded


def test_utf16_text_from_notepad_is_read() -> None:
    data = b"\xff\xfe" + old_format("5.7.134").encode("utf-16-le")
    assert read_bounce(data).status == "5.7.134"


def test_a_damaged_header_line_does_not_stop_mime_detection() -> None:
    eml = (
        b"Received: from a.example.com by b.example.com; Mon, 3 Jun 2024 10:01:02 +0000\n"
        b"X-Marker: ok\n"
        b"1;broken-continuation-without-indent\n"
        b"From: postmaster@contoso.onmicrosoft.com\n\n"
        b"body\n"
    )
    assert read_bounce(eml).format == "eml"


def test_binary_and_oversize_input_are_refused() -> None:
    with pytest.raises(BinaryInput, match="PDF"):
        read_bounce(b"%PDF-1.7\n" + bytes(100))
    with pytest.raises(InputTooLarge):
        read_limited(io.BytesIO(b"x" * 11), limit=10)
    assert read_limited(io.BytesIO(b"x" * 10), limit=10) == b"x" * 10


@pytest.mark.parametrize(("text", "language"), [("", None), ("550 5.7.12 a@b.com", None)])
def test_no_text_has_no_language(text: str, language: str | None) -> None:
    assert read_bounce(text).language == language


def test_a_forwarded_gmail_notice_gives_the_original_subject_and_sender() -> None:
    bounce = read_bounce(
        "---------- Forwarded message ---------\n"
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
        "Date: Tue, Mar 12, 2024 at 3:01 PM\n"
        "Subject: Delivery Status Notification (Failure)\n"
        "To: <jo.smith@gmail.com>\n\n"
        "Your message couldn't be delivered to sales@contoso.com.\n"
        "The response from the remote server was:\n"
        "550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; authentication required\n\n"
        "----- Original message -----\n"
        "DKIM-Signature: v=1; a=rsa-sha256; d=gmail.com\n"
        "From: Jo Smith <jo.smith@gmail.com>\n"
        "Message-ID: <CAF=abc@mail.gmail.com>\n"
        "Subject: Order question\n"
        "To: sales@contoso.com, info@contoso.com\n"
    )
    assert bounce.status == "5.7.133"
    assert bounce.recipients == ("sales@contoso.com",)  # info@ was on the mail but did not fail
    assert bounce.sender == "jo.smith@gmail.com"
    assert bounce.subject == "Order question"


def test_a_bounce_in_a_language_without_a_word_list_is_still_read() -> None:
    swedish = (
        "Leveransen misslyckades till de här mottagarna eller grupperna:\n\n"
        "forsaljning@contoso.se\n"
        "Ditt meddelande levererades inte eftersom mottagaren bara tar emot e-post från "
        "avsändare inom den egna organisationen.\n\n"
        "Diagnostisk information för administratörer:\n\n"
        "forsaljning@contoso.se\n"
        "Remote Server returned '550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; "
        "authentication required [Stage: CreateMessage]'\n\n"
        "Received: from HE1PR0701MB9999.eurprd07.prod.outlook.com by\n"
        " HE1PR0701MB2345.eurprd07.prod.outlook.com with HTTPS\n"
        "From: Anna Berg <anna.berg@fabrikam.se>\n"
        "To: forsaljning@contoso.se, olle@contoso.se\n"
        "Message-ID: <abc@fabrikam.se>\n"
    )
    bounce = read_bounce(swedish)
    assert bounce.recipients == ("forsaljning@contoso.se",)
    assert bounce.sender == "anna.berg@fabrikam.se"
    assert bounce.language == "sv"  # the English diagnostic line does not decide it
    assert not bounce.forwarded


def test_a_header_the_email_package_cannot_parse_is_read_raw() -> None:
    # Found by hypothesis: the stdlib's address parser raises AttributeError on "::;".
    bounce = read_bounce("TO::;0\nCONTENT-TYPE:")
    assert bounce.format == "eml"
    assert not bounce.is_bounce
