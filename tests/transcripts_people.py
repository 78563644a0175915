"""Whole conversations in people's own words: how hurried staff and admins really answer.

Same shape as :mod:`tests.transcripts`: each step is (what the person types, fragments the bot's
replies must hold in order[, fragments they must not hold]). Written anew for these tests (not
taken from the training data, nor from the issue that asked for them), one conversation for each
way the bot used to misunderstand people.
"""

from __future__ import annotations

from tests.transcripts import (
    ASK_CENTRE,
    ASK_FIXED,
    ASK_METHOD,
    ASK_ROLE,
    ASK_TYPE,
    NEW_EAC_UNTICK,
    REASK,
    Transcript,
)

ALLOW_EVERYONE_STEPS = "allow everyone, in the"  # steps_intro for method 1
CHOSEN_STEPS = "allow chosen senders only, in the"  # steps_intro for method 2
SENDER_NOTE = "Note for the email admin at"
ESCALATE_CHOICE = "Escalate to an admin"

PEOPLE_TRANSCRIPTS: list[Transcript] = [
    # ---- roles, in ordinary words and other languages -------------------------------------------
    Transcript(
        "role_sender_in_a_sentence",
        [
            ("hey, mails to orders@northwind.com keep coming back with 5.7.12", [ASK_ROLE]),
            (
                "yeah that was me, i'm the one who emailed them",
                [SENDER_NOTE + " northwind.com"],
                [REASK],
            ),
        ],
    ),
    Transcript(
        "role_admin_in_a_sentence",
        [
            ("how do i sort out a 5.7.12", [ASK_ROLE]),
            ("i run the exchange online tenant here", [ASK_TYPE], [REASK]),
        ],
    ),
    Transcript(
        "role_in_french",
        [
            ("comment je corrige l'erreur 5.7.12 ?", [ASK_ROLE]),
            ("c'est moi qui ai envoyé le mail", ["Which address did you send to?"], [REASK]),
            ("compta@fabrikam.fr", [SENDER_NOTE + " fabrikam.fr"]),
            ("c'est moi l'expéditeur du message", ["already"], ["I help with Exchange Online"]),
        ],
    ),
    Transcript(
        "role_told_with_the_problem",
        [
            ("erreur 5.7.12 quand j'écris à compta@fabrikam.fr", [SENDER_NOTE + " fabrikam.fr"]),
        ],
    ),
    Transcript(
        "role_in_german",
        [
            ("wie behebe ich 5.7.12", [ASK_ROLE]),
            ("bin hier der exchange admin", [ASK_TYPE], [REASK]),
        ],
    ),
    # ---- a problem told in a sentence ------------------------------------------------------------
    Transcript(
        "problem_sentence_with_a_type",
        [
            (
                "the events@ distribution list won't take emails from anyone outside the company",
                ["Noted: Distribution group", ASK_ROLE],
                ["I help with Exchange Online bounces"],
            ),
            ("admin", [ASK_METHOD], [ASK_TYPE]),
        ],
    ),
    Transcript(
        "problem_sentence_with_an_address",
        [
            (
                "clients writing to billing@contoso.com get an error back saying we only "
                "accept internal mail",
                [ASK_ROLE],
                ["I help with Exchange Online bounces"],
            ),
        ],
    ),
    Transcript(
        "how_to_question_without_a_code",
        [
            (
                "whats the way to let external senders email one of our groups",
                [ASK_ROLE],
                ["I help with Exchange Online bounces"],
            ),
            ("admin", ["Which one is it?", "Microsoft 365 group"]),
        ],
    ),
    Transcript(
        "a_long_sentence_with_the_code_and_a_typo",
        [
            (
                "so our partner keeps hitting 5.7.12 every single time they send to the sharde "
                "inbox we set up for them last month",
                [ASK_ROLE],
                ["I help with Exchange Online bounces"],
            ),
        ],
    ),
    # ---- negation is never a choice --------------------------------------------------------------
    Transcript(
        "negated_method",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            ("user mailbox", [ASK_METHOD]),
            (
                "i don't want the whole internet mailing it, only our one supplier",
                [ASK_CENTRE],
            ),
            ("new eac", [CHOSEN_STEPS], [ALLOW_EVERYONE_STEPS]),
        ],
    ),
    Transcript(
        "negated_type",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            ("it isnt the shared one, it's a normal user mailbox", [ASK_METHOD]),
            ("everyone", [ASK_CENTRE]),
            ("new eac", ["Steps for User mailbox", NEW_EAC_UNTICK], ["Shared mailbox"]),
        ],
    ),
    Transcript(
        "a_question_about_allowing_everyone_is_not_a_choice",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            ("shared mailbox", [ASK_METHOD]),
            (
                "would it be risky to just let everybody send to it?",
                ["spam", ASK_METHOD],
                [ASK_CENTRE, ALLOW_EVERYONE_STEPS],
            ),
        ],
    ),
    # ---- corrections, mid-flow and after the answer, and "go back" -------------------------------
    Transcript(
        "correction_mid_flow",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            ("distribution list", [ASK_METHOD]),
            ("hang on, it's actually a shared mailbox", ["Changed: Shared mailbox", ASK_METHOD]),
            ("allow all", [ASK_CENTRE]),
            ("classic", ["Steps for Shared mailbox"], ["Distribution group"]),
        ],
    ),
    Transcript(
        "correction_after_the_answer",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            ("user mailbox", [ASK_METHOD]),
            ("allow everyone", [ASK_CENTRE]),
            ("powershell", ["Set-Mailbox", ASK_FIXED]),
            (
                "oh wait it's a DL actually",
                ["Changed: Distribution group", "Set-DistributionGroup", ASK_FIXED],
            ),
        ],
    ),
    Transcript(
        "go_back",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            ("shared mailbox", [ASK_METHOD]),
            ("everyone", [ASK_CENTRE]),
            ("go back", [ASK_METHOD]),
            ("only chosen senders", ["PowerShell"]),
        ],
    ),
    # ---- questions mid-flow, and "I don't know" --------------------------------------------------
    Transcript(
        "questions_mid_flow",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            (
                "why is it even set up like that",
                ["RequireSenderAuthenticationEnabled", ASK_TYPE],
                [REASK],
            ),
            ("how can i tell what type of recipient it is", ["Get-Recipient", ASK_TYPE], [REASK]),
            ("user mailbox", [ASK_METHOD]),
            ("what's the difference between the two", [ASK_METHOD], [REASK]),
        ],
    ),
    Transcript(
        "dont_know_twice",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            ("no clue tbh", ["Get-Recipient", ASK_TYPE], [ESCALATE_CHOICE]),
            ("honestly i dont know", ["Get-Recipient", ASK_TYPE, ESCALATE_CHOICE]),
            ("/click escalate", ["Is there anything you'd like to add"]),
        ],
    ),
    # ---- typos and partial button words ----------------------------------------------------------
    Transcript(
        "typos",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("admn", [ASK_TYPE]),
            ("shraed mailboxs", [ASK_METHOD], [REASK]),
            ("evryone", [ASK_CENTRE], [REASK]),
            ("powershel", ["Set-Mailbox"], [REASK]),
        ],
    ),
    Transcript(
        "partial_button_words",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("email admin", [ASK_TYPE]),
            ("dynamic", [ASK_METHOD]),
            ("chosen senders", ["Set-DynamicDistributionGroup"]),
        ],
    ),
    # ---- the related codes, several recipients, a bounce that names its type ---------------------
    Transcript(
        "bounce_57124_gets_the_list_fix",
        [
            ("/file tests/corpus/en-new-57124-group.txt", ["5.7.124", ASK_ROLE]),
            ("admin", ["allowed senders list"], [ASK_METHOD, "Allow everyone"]),
        ],
    ),
    Transcript(
        "bounce_57129_gets_the_list_fix",
        [
            ("/file tests/corpus/en-eml-57129-mailbox-7bit.eml", ["5.7.129", ASK_ROLE]),
            ("admin", ["allowed senders list"], [ASK_METHOD]),
        ],
    ),
    Transcript(
        "two_recipients_the_sender_note_names_both",
        [
            ("/file tests/corpus/en-eml-two-recipients-57134-57133.eml", [ASK_ROLE]),
            ("i sent it", [SENDER_NOTE, "p.novak@contoso.com", "board-members@contoso.com"]),
        ],
    ),
    Transcript(
        "two_recipients_the_admin_gets_each_type",
        [
            (
                "/file tests/corpus/en-eml-two-recipients-57134-57133.eml",
                ["p.novak@contoso.com (5.7.134)", "board-members@contoso.com (5.7.133)", ASK_ROLE],
            ),
            ("admin", [ASK_METHOD]),
            ("allow everyone", [ASK_CENTRE]),
            ("powershell", ["board-members@contoso.com (5.7.133)", "What kind of recipient"]),
            (
                "its a distribution list",
                [
                    "Set-Mailbox -Identity p.novak@contoso.com",
                    "Set-DistributionGroup -Identity board-members@contoso.com",
                ],
            ),
        ],
    ),
    Transcript(
        "bounce_names_its_type",
        [
            ("/file tests/corpus/en-new-5712-group-named.txt", [ASK_ROLE]),
            (
                "admin",
                ["The bounce says sales-team@contoso.com is a group"],
                ["User mailbox", "Shared mailbox"],
            ),
        ],
    ),
]

PEOPLE_TRANSCRIPTS += [
    Transcript(
        "ruling_out_one_of_two_is_the_other",
        [
            ("como resolvo o erro 5.7.12", [ASK_ROLE]),
            ("nao sou o admin", ["Which address did you send to?"]),
        ],
    ),
    Transcript(
        "not_everyone_in_portuguese_is_the_list",
        [
            ("como resolvo o erro 5.7.12", [ASK_ROLE]),
            ("sou o admin", [ASK_TYPE]),
            ("caixa compartilhada", [ASK_METHOD]),
            ("não quero liberar para todos", [CHOSEN_STEPS], [ALLOW_EVERYONE_STEPS]),
        ],
    ),
]

PEOPLE_TRANSCRIPTS += [
    Transcript(
        "the_outside_sender_named_in_words_goes_on_the_list",
        [
            (
                "need to whitelist vendor@fabrikam.com on our sales@contoso.com DL, im the admin",
                [
                    "Steps for sales@contoso.com (Distribution group)",
                    '@{Add="vendor@fabrikam.com"}',
                ],
                ["Steps for vendor@fabrikam.com"],
            ),
            (
                "can i do that in the new eac instead",
                ["I have no New Exchange admin center (new EAC) steps", "Set-DistributionGroup"],
                ["Changed: New Exchange admin center"],
            ),
        ],
    ),
]

# Found by trying the bot the way people talk (conversations not kept in the repository).
PEOPLE_TRANSCRIPTS += [
    Transcript(
        "taking_back_allow_everyone_before_the_steps",
        [
            ("5.7.12 admin shared mailbox", [ASK_METHOD]),
            ("allow everyone", [ASK_CENTRE]),
            (
                "wait no only certain senders",
                ["Changed: Allow chosen senders only", CHOSEN_STEPS],
                [ALLOW_EVERYONE_STEPS, "Sorry"],
            ),
        ],
    ),
    Transcript(
        "no_then_the_right_kind_in_french",
        [
            ("comment corriger 5.7.12", [ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            ("liste de distribution dynamique", [ASK_METHOD]),
            (
                "en fait non c'est un groupe de sécurité",
                ["Changed: Mail-enabled security group"],
                ["Sorry"],
            ),
        ],
    ),
    Transcript(
        "several_facts_with_the_role_in_one_line",
        [
            (
                "5.7.12 admin dist group everyone classic",
                ["Let everyone mail a group (classic EAC)"],
                [ASK_ROLE],
            ),
        ],
    ),
    Transcript(
        "a_sender_says_it_again_and_says_thanks",
        [
            ("comment corriger 5.7.12", [ASK_ROLE]),
            ("c'est moi qui ai envoyé", ["Which address did you send to?"]),
            ("oui c'est moi qui ai envoyé le mail", ["Which address did you send to?"], ["Sorry"]),
            ("merci", ["Which address did you send to?"], ["couldn't match"]),
        ],
    ),
    Transcript(
        "a_ruled_out_centre_is_noted_and_the_only_one_is_said_so",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            ("distribution list", [ASK_METHOD]),
            ("no powershell", ["Noted: not Exchange Online PowerShell", ASK_METHOD], ["Sorry"]),
            ("only let some senders in", ["You'd rather not use the Exchange Online PowerShell"]),
        ],
    ),
    Transcript(
        "a_fact_is_not_a_reason_to_start_over",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            ("group", []),
            ("eac new", [], ["Let's start over"]),
        ],
    ),
]

PEOPLE_TRANSCRIPTS += [
    Transcript(
        "a_question_sent_as_a_file",
        [("/file tests/corpus/de-q-5712.txt", [ASK_ROLE], ["I help with Exchange Online bounces"])],
    ),
]

# The second round of trying it the way people talk.
PEOPLE_TRANSCRIPTS += [
    Transcript(
        "senders_said_about_the_method_do_not_make_an_admin_a_sender",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            ("distribution list", [ASK_METHOD]),
            ("solo unos pocos remitentes", [CHOSEN_STEPS], ["I sent the message", "Which address"]),
        ],
    ),
    Transcript(
        "thanks_it_worked_in_german",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("admin, user mailbox, everyone, new eac", [ASK_FIXED]),
            ("danke hat funktioniert", ["Great, glad it works now"], [ASK_FIXED]),
        ],
    ),
    Transcript(
        "the_last_role_said_counts",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("im the sender... actually no im the admin at contoso", [ASK_TYPE], ["Which address"]),
        ],
    ),
    Transcript(
        "the_safer_one_with_an_ok",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("admin", [ASK_TYPE]),
            ("shared mailbox", [ASK_METHOD]),
            ("ok the safer one", [CHOSEN_STEPS], ["What letting everyone in risks"]),
        ],
    ),
    Transcript(
        "saying_admin_again_after_the_steps_is_not_escalating",
        [
            ("how do i fix 5.7.12", [ASK_ROLE]),
            ("admin, user mailbox, everyone, new eac", [ASK_FIXED]),
            ("admin", [ASK_FIXED], ["I'll hand this to our helpdesk admins"]),
        ],
    ),
    Transcript(
        "finally_powershell_in_french",
        [
            ("comment corriger 5.7.12", [ASK_ROLE]),
            ("admin, boîte partagée, tout le monde, nouveau eac", [ASK_FIXED]),
            ("ah non finalement en powershell", ["Set-Mailbox"], ["Noted: not"]),
        ],
    ),
]
