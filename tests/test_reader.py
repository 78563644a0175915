"""The bounce reader's pieces, one behaviour each (the corpus tests run it on whole messages)."""

from __future__ import annotations

import io
from pathlib import Path

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


# --------------------------------------------------------------------------- shared codes


@pytest.mark.parametrize(
    "words",
    [
        "User account disabled",
        "<jo@contoso.com>: account is disabled",
        "Benutzerkonto deaktiviert",
        "compte désactivé",
        "cuenta deshabilitada",
        "account disabilitato",
        "account uitgeschakeld",
        "conta desativada",
    ],
)
def test_5_7_13_with_account_disabled_words_is_not_the_public_folder_code(words: str) -> None:
    bounce = read_bounce(OLD_FORMAT.format(status="5.7.13", resolver=words))
    assert bounce.is_bounce
    assert bounce.status == "5.7.13"
    assert not bounce.in_family
    assert bounce.recipient_type is None


def test_5_7_13_with_no_telling_words_stays_the_public_folder_code() -> None:
    bounce = read_bounce(OLD_FORMAT.format(status="5.7.13", resolver="").replace(" ; ", " "))
    assert bounce.status == "5.7.13"
    assert bounce.in_family
    assert bounce.recipient_type == "public_folder"


def test_words_elsewhere_in_a_long_bounce_do_not_decide_a_shared_code() -> None:
    elsewhere = (
        "Is this the public folder problem? Sender was not authenticated for public folder, "
        "said our old ticket.\n\n"
    )
    disabled = read_bounce(
        elsewhere + OLD_FORMAT.format(status="5.7.13", resolver="User account disabled")
    )
    assert disabled.status == "5.7.13"
    assert not disabled.in_family
    bare = read_bounce(
        "Maybe the account is disabled?\n\n"
        + OLD_FORMAT.format(status="5.7.13", resolver="").replace(" ; ", " ")
    )
    assert bare.in_family
    assert bare.recipient_type == "public_folder"


def test_a_postfix_reply_wrapped_over_lines_keeps_its_code_and_words() -> None:
    bounce = read_bounce(
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n\n"
        "<jo@litware.com>: host mx.litware.com[203.0.113.5] said: 550\n"
        "    5.7.13 <jo@litware.com>: User account\n"
        "    disabled (in reply to RCPT TO command)\n"
    )
    assert bounce.is_bounce
    assert (bounce.status, bounce.smtp_code) == ("5.7.13", "550")
    assert bounce.recipients == ("jo@litware.com",)
    assert not bounce.in_family
    assert bounce.diagnostic is not None
    assert "disabled" in bounce.diagnostic


# --------------------------------------------------------------------------- SMTP transcripts


def test_in_a_transcript_the_reply_to_rcpt_to_is_the_code_not_an_earlier_failure() -> None:
    bounce = read_bounce(
        ">>> EHLO app01.fabrikam.com\n"
        "<<< 250-mx.contoso.com Hello\n"
        "<<< 250 STARTTLS\n"
        ">>> AUTH LOGIN\n"
        "<<< 530 5.7.57 Client not authenticated to send mail\n"
        ">>> MAIL FROM:<app@fabrikam.com>\n"
        "<<< 250 2.1.0 Sender OK\n"
        ">>> RCPT TO:<sales@contoso.com>\n"
        "<<< 550 5.7.12 Sender was not authenticated by organization\n"
        ">>> QUIT\n"
        "<<< 221 2.0.0 Bye\n"
    )
    assert bounce.is_bounce
    assert (bounce.status, bounce.smtp_code) == ("5.7.12", "550")
    assert bounce.recipients == ("sales@contoso.com",)
    assert bounce.sender == "app@fabrikam.com"
    assert bounce.failures == (("sales@contoso.com", "5.7.12"),)
    assert bounce.in_family


def test_a_transcript_without_arrows_names_only_the_refused_recipient() -> None:
    bounce = read_bounce(
        "STARTTLS\n"
        "454 4.7.0 TLS not available due to local problem\n"
        "MAIL FROM:<orders@northwind.com>\n"
        "250 2.1.0 Sender OK\n"
        "RCPT TO:<ok@contoso.com>\n"
        "250 2.1.5 Recipient OK\n"
        "RCPT TO:<jo@contoso.com>\n"
        "550 5.7.134 RESOLVER.RST.SenderNotAuthenticatedForMailbox; authentication required\n"
        "RCPT TO:<team@contoso.com>\n"
        "550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; authentication required\n"
    )
    assert bounce.status == "5.7.134"
    assert bounce.resolver == "RESOLVER.RST.SenderNotAuthenticatedForMailbox"
    assert bounce.recipients == ("jo@contoso.com", "team@contoso.com")
    assert bounce.failures == (("jo@contoso.com", "5.7.134"), ("team@contoso.com", "5.7.133"))
    assert bounce.recipient_type == "mailbox"


def test_a_refusal_after_data_fails_the_recipients_accepted_before_it() -> None:
    bounce = read_bounce(
        "C: MAIL FROM:<a@fabrikam.com>\n"
        "S: 250 2.1.0 OK\n"
        "C: RCPT TO:<x@contoso.com>\n"
        "S: 250 2.1.5 OK\n"
        "C: RCPT TO:<y@contoso.com>\n"
        "S: 250 2.1.5 OK\n"
        "C: DATA\n"
        "S: 354 Start mail input\n"
        "S: 550 5.7.12 Sender was not authenticated by organization\n"
    )
    assert bounce.status == "5.7.12"
    assert bounce.failures == (("x@contoso.com", "5.7.12"), ("y@contoso.com", "5.7.12"))


def test_in_reply_to_rcpt_to_marks_the_refusal_even_without_other_bounce_words() -> None:
    bounce = read_bounce(
        "<sales@contoso.com>: host mx.contoso.com[198.51.100.2] said: 550 5.7.12 Sender was\n"
        "    not authenticated by organization (in reply to RCPT TO command)\n"
    )
    assert bounce.is_bounce
    assert bounce.status == "5.7.12"
    assert bounce.recipients == ("sales@contoso.com",)


# --------------------------------------------------------------------------- codes in a question


@pytest.mark.parametrize(
    ("text", "listed"),
    [
        (
            "5.7.1, 5.7.12, 5.7.124, 5.7.133 and 5.7.134 are the codes for delivery restrictions.",
            ("5.7.1", "5.7.12", "5.7.124", "5.7.133", "5.7.134"),
        ),
        (
            "Codes you may see:\n- 5.7.12: any recipient\n- 5.7.133: a group\n"
            "- 5.7.134: a mailbox\n",
            ("5.7.12", "5.7.133", "5.7.134"),
        ),
        (
            "|Error code|Description|\n|---|---|\n|550 5.7.12|Sender was not authenticated|\n"
            "|550 5.7.133|RESOLVER.RST.SenderNotAuthenticatedForGroup|\n"
            "|550 5.1.10|RESOLVER.ADR.RecipientNotFound; Recipient not found|\n",
            ("5.7.12", "5.7.133", "5.1.10"),
        ),
    ],
)
def test_a_list_of_codes_is_not_a_question(text: str, listed: tuple[str, ...]) -> None:
    bounce = read_bounce(text)
    assert not bounce.is_bounce
    assert bounce.listed_statuses == listed
    assert bounce.mentioned_statuses == ()
    assert bounce.status is None


@pytest.mark.parametrize(
    ("text", "mentioned"),
    [
        (
            "our partner keeps getting 5.7.12 whenever they mail the sharde inbox since monday "
            "morning sadly",
            ("5.7.12",),
        ),
        (
            "our partner keeps seeing 5.7.12 whenever they mail the sharde inbox since monday "
            "morning sadly, and also 5.7.133 when they write to the sales list",
            ("5.7.12", "5.7.133"),
        ),
        ("what is the difference between 5.7.133, 5.7.134 and 5.7.135?", None),
    ],
)
def test_a_persons_sentence_naming_codes_keeps_them(
    text: str, mentioned: tuple[str, ...] | None
) -> None:
    bounce = read_bounce(text)
    assert bounce.listed_statuses == ()
    assert bounce.mentioned_statuses == (mentioned or ("5.7.133", "5.7.134", "5.7.135"))
    assert bounce.status == bounce.mentioned_statuses[0]


@pytest.mark.parametrize(
    "text",
    [
        "## Changelog\n\n### 5.7.12 (2024-03-01)\n- Fix crash\n- Bump dependency to 5.7.124\n\n"
        "### 5.7.11 (2024-02-14)\n- Add retry\n",
        "The team decided that we move the mailing list archive to the new server described in "
        "section 5.1.1 of the handbook next week",
        "After the long weekend the operations team upgraded the reporting cluster from 5.7.11 "
        "to 5.7.12 without any trouble at all",
    ],
)
def test_versions_and_section_numbers_in_long_texts_are_not_codes(text: str) -> None:
    bounce = read_bounce(text)
    assert bounce.mentioned_statuses == ()
    assert bounce.listed_statuses == ()
    assert bounce.status is None


# --------------------------------------------------------------------------- restricted delivery


RESTRICTED = {
    "en": "Your message can't be delivered because delivery to this address is restricted.",
    "fr": "Votre message ne peut pas être remis car la remise à cette adresse est restreinte.",
    "de": "Ihre Nachricht kann nicht zugestellt werden, da die Zustellung an diese Adresse "
    "eingeschränkt ist.",
    "es": "No se puede entregar el mensaje porque la entrega a esta dirección está restringida.",
    "it": "Impossibile recapitare il messaggio perché il recapito a questo indirizzo è limitato.",
    "nl": "Uw bericht kan niet worden bezorgd, omdat de bezorging op dit adres beperkt is.",
    "pt": "Não é possível entregar sua mensagem porque a entrega para este endereço é restrita.",
}


@pytest.mark.parametrize("language", sorted(RESTRICTED))
def test_the_restricted_delivery_text_is_this_problem_without_a_code(language: str) -> None:
    bounce = read_bounce(f"Sales Team <sales@contoso.com>\n{RESTRICTED[language]}\n")
    assert bounce.is_bounce
    assert bounce.in_family
    assert bounce.status is None  # never guessed
    assert bounce.recipients == ("sales@contoso.com",)
    assert bounce.failures == (("sales@contoso.com", None),)


def test_the_restricted_delivery_text_with_a_diagnostic_part_keeps_its_code() -> None:
    bounce = read_bounce(
        "Delivery has failed to these recipients or distribution lists:\n\n"
        "Sales Team<mailto:sales@contoso.com>\n"
        "Your message can\u2019t be delivered because delivery to this address is\n"
        "restricted.\n\n"
        "Diagnostic information for administrators:\n\n"
        "sales@contoso.com\n"
        "#550 5.7.1 RESOLVER.RST.AuthRequired; authentication required ##\n"
    )
    assert (bounce.status, bounce.resolver) == ("5.7.1", "RESOLVER.RST.AuthRequired")
    assert bounce.in_family


def test_a_look_alike_code_beside_the_restricted_text_is_still_a_look_alike() -> None:
    bounce = read_bounce(
        "Delivery has failed to these recipients or groups:\n\nsales@contoso.com\n"
        f"{RESTRICTED['en']}\n\nRemote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; "
        "not found'\n"
    )
    assert bounce.status == "5.1.1"
    assert not bounce.in_family


# --------------------------------------------------------------------------- several recipients


def test_each_failed_recipient_gets_its_own_code_in_any_order() -> None:
    bounce = read_bounce(
        "Delivery has failed to these recipients or groups:\n\n"
        "Jon Ward<mailto:jon@contoso.com>\nYour message wasn't delivered.\n\n"
        "Sales<mailto:sales@contoso.com>\nYour message wasn't delivered.\n\n"
        "Diagnostic information for administrators:\n\n"
        "Generating server: BN6PR11MB1234.namprd11.prod.outlook.com\n\n"
        "sales@contoso.com\n"
        "Remote Server returned '550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; x'\n\n"
        "jon@contoso.com\n"
        "Remote Server returned '550 5.7.134 RESOLVER.RST.SenderNotAuthenticatedForMailbox; x'\n"
    )
    assert bounce.recipients == ("jon@contoso.com", "sales@contoso.com")
    assert bounce.failures == (("jon@contoso.com", "5.7.134"), ("sales@contoso.com", "5.7.133"))
    assert bounce.status == "5.7.134"  # the first failure's code
    assert bounce.resolver == "RESOLVER.RST.SenderNotAuthenticatedForMailbox"
    assert bounce.recipient_type == "mailbox"


def test_newer_format_recipient_address_lines_pair_with_their_reported_errors() -> None:
    bounce = read_bounce(
        "Your message couldn't be delivered.\n\n"
        "Original Message Details\n"
        "Recipient Address:\tteam@contoso.com\n"
        "Error Details\n"
        "Reported error:\t550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; x\n\n"
        "Recipient Address:\tana@contoso.com\n"
        "Error Details\n"
        "Reported error:\t550 5.7.134 RESOLVER.RST.SenderNotAuthenticatedForMailbox; x\n"
    )
    assert bounce.failures == (("team@contoso.com", "5.7.133"), ("ana@contoso.com", "5.7.134"))


def test_one_code_for_several_listed_recipients_is_each_ones_code() -> None:
    bounce = read_bounce(
        "Your message couldn't be delivered.\n\n"
        "Recipient Address:\tteam@contoso.com; ana@contoso.com\n"
        "Reported error:\t550 5.7.12 Sender was not authenticated by organization\n"
    )
    assert bounce.failures == (("team@contoso.com", "5.7.12"), ("ana@contoso.com", "5.7.12"))


def test_the_machine_part_gives_each_recipient_its_status() -> None:
    eml = (
        "From: postmaster@contoso.onmicrosoft.com\nTo: a@fabrikam.com\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nDelivery has failed.\n\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns;mx.contoso.com\n\n"
        "Final-Recipient: rfc822;team@contoso.com\nAction: failed\nStatus: 5.7.133\n\n"
        "Final-Recipient: rfc822;ana@contoso.com\nAction: failed\nStatus: 5.7.134\n\n--b--\n"
    )
    bounce = read_bounce(eml)
    assert bounce.recipients == ("team@contoso.com", "ana@contoso.com")
    assert bounce.failures == (("team@contoso.com", "5.7.133"), ("ana@contoso.com", "5.7.134"))
    assert bounce.status == "5.7.133"


# --------------------------------------------------------------------------- named type


NEWER = (
    "Your message to x@contoso.com couldn't be delivered.\n\n{sentence}\n\n"
    "More Info for Email Admins\nStatus code: 550 {status}\n\n"
    "Original Message Headers\n\nSubject: The shared mailbox only accepts invoices\n"
)


@pytest.mark.parametrize(
    ("sentence", "named"),
    [
        ("The group sales-team only accepts messages from people in its organization.", "group"),
        (
            "The shared mailbox Support only accepts messages from people in its organization.",
            "shared_mailbox",
        ),
        ("The distribution list Board only accepts messages from inside.", "distribution_group"),
        ("The Microsoft 365 group Marketing only accepts messages from its members.", "m365_group"),
        (
            "Le groupe de sécurité Finance n'accepte que les messages de son organisation.",
            "security_group",
        ),
        (
            "Die dynamische Verteilergruppe Alle akzeptiert nur Nachrichten aus der Organisation.",
            "dynamic_distribution_group",
        ),
        ("El buzón ventas solo acepta mensajes de personas de su organización.", "mailbox"),
        (
            "La cartella pubblica Fatture accetta solo messaggi dalla propria organizzazione.",
            "public_folder",
        ),
        (
            "De e-mailgebruiker Jan accepteert alleen berichten van de eigen organisatie.",
            "mail_user",
        ),
        ("O grupo vendas só aceita mensagens de pessoas da sua organização.", "group"),
        ("x@contoso.com only accepts messages from people in its organization.", None),
    ],
)
def test_the_cause_sentence_names_the_recipient_kind(sentence: str, named: str | None) -> None:
    bounce = read_bounce(NEWER.format(sentence=sentence, status="5.7.12"))
    assert bounce.is_bounce
    assert bounce.recipient_type is None
    assert bounce.named_type == named


def test_the_named_kind_is_read_only_before_the_phrase_in_its_own_sentence() -> None:
    sentence = (
        "Thanks for the mailbox list. x@contoso.com only accepts messages from people in its "
        "group or organization."
    )
    assert read_bounce(NEWER.format(sentence=sentence, status="5.7.12")).named_type is None


def test_the_named_kind_is_not_read_where_the_code_tells_it() -> None:
    sentence = "The shared mailbox Support only accepts messages from people in its organization."
    bounce = read_bounce(NEWER.format(sentence=sentence, status="5.7.133"))
    assert bounce.recipient_type == "group"
    assert bounce.named_type is None


def test_the_named_kind_is_never_read_from_headers_or_hops() -> None:
    bounce = read_bounce(
        NEWER.format(sentence="Something went wrong.", status="5.7.12")
        + "Thread-Topic: the group only accepts\n"
    )
    assert bounce.named_type is None


def test_the_original_date_is_read_from_a_pasted_bounce() -> None:
    """The sender's note says when the message was sent: the details' Created Date, or the
    Date: of the original headers."""
    corpus = Path(__file__).parent / "corpus"
    new = read_bounce((corpus / "en-new-5712-group-named.txt").read_bytes())
    assert new.date == "4/19/2024 3:27:45 PM"
    old = read_bounce((corpus / "en-old-57133-group-display-name.txt").read_bytes())
    assert old.date == "Tue, 12 Mar 2024 14:22:10 +0000"
    assert read_bounce("how do I fix 5.7.12").date is None
