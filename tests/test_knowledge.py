"""Tests for the knowledge base: the packaged data, the lookups, and the loader's error messages."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from knowledge.kb import (
    CONVERSATION_TEXTS,
    PROCEDURE_PLACEHOLDERS,
    RECIPIENT_TYPE_IDS,
    STEP_FLAGS,
    FamilyCode,
    KnowledgeBase,
    KnowledgeError,
    Lookalike,
    Procedure,
    Step,
    default_knowledge,
    fill_placeholders,
    load_knowledge,
    parse_status,
    placeholders_in,
)
from tests.declared_texts import DECLARED_TEXTS, PLATFORM_DECLARATIONS
from tests.kb_copies import edit_yaml

ARTICLE = (
    "https://learn.microsoft.com/en-us/troubleshoot/exchange/email-delivery/ndr/"
    "fix-error-code-5-7-12-in-exchange-online"
)
DATA = Path(__file__).resolve().parent.parent / "knowledge" / "data"
BOLD = re.compile(r"\*\*(.+?)\*\*")


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_knowledge()


def step_labels(step: Step) -> list[str]:
    """The bold UI labels of a step, its sub-steps included, in reading order."""
    labels = BOLD.findall(step.text)
    for sub in step.substeps:
        labels += BOLD.findall(sub)
    return labels


def procedure(kb: KnowledgeBase, procedure_id: str) -> Procedure:
    matches = [p for p in kb.procedures if p.id == procedure_id]
    assert len(matches) == 1, procedure_id
    return matches[0]


from tests.article_procedures import ARTICLE_PROCEDURES  # noqa: E402

METHOD_2_NOTES = (
    "external_sender_needs_contact",
    "everyone_inside_group",
    "not_antispam_allow_list",
)


def test_packaged_knowledge_loads_and_is_cached(kb: KnowledgeBase) -> None:
    assert default_knowledge() is kb
    assert {r.id for r in kb.recipient_types} == set(RECIPIENT_TYPE_IDS)
    assert kb.article_url == ARTICLE
    assert load_knowledge(DATA).article_url == ARTICLE


@pytest.mark.parametrize("procedure_id", sorted(ARTICLE_PROCEDURES))
def test_article_procedure_has_its_labels_in_order(kb: KnowledgeBase, procedure_id: str) -> None:
    method, centre, types, expected = ARTICLE_PROCEDURES[procedure_id]
    proc = procedure(kb, procedure_id)
    assert proc.method == method
    assert proc.centre == centre
    assert proc.recipient_types == types
    assert proc.source.startswith(ARTICLE)
    assert [step_labels(step) for step in proc.steps] == expected


def test_method_2_procedures_carry_the_three_article_notes(kb: KnowledgeBase) -> None:
    for procedure_id in (
        "allowed_senders.user_mailbox.new_eac",
        "allowed_senders.user_mailbox.classic_eac",
    ):
        notes = procedure(kb, procedure_id).notes
        assert all(n in notes for n in METHOD_2_NOTES)
    assert "**Protection > Spam filter**" in kb.note("not_antispam_allow_list").text


def test_mail_user_is_classic_eac_only_with_the_article_note(kb: KnowledgeBase) -> None:
    assert kb.recipient_type("mail_user").centres == ("classic_eac", "powershell")
    assert kb.procedures_for("allow_all", "mail_user", "new_eac") == ()
    assert kb.procedures_for("allowed_senders", "mail_user", "new_eac") == ()
    proc = procedure(kb, "allow_all.mail_user.classic_eac")
    assert [n.id for n in kb.notes_for(proc)] == ["mail_user_classic_only"]


def test_no_invented_eac_steps_for_method_2_on_groups(kb: KnowledgeBase) -> None:
    for type_id in ("distribution_group", "security_group", "dynamic_distribution_group"):
        found = kb.procedures_for("allowed_senders", type_id)
        assert [p.centre for p in found] == ["powershell"]
    assert kb.centres_for("allowed_senders", "user_mailbox") == (
        "new_eac",
        "classic_eac",
        "powershell",
    )


@pytest.mark.parametrize("type_id", RECIPIENT_TYPE_IDS)
def test_every_recipient_type_has_powershell_set_and_check(kb: KnowledgeBase, type_id: str) -> None:
    rtype = kb.recipient_type(type_id)
    set_cmdlet, get_cmdlet = rtype.powershell.set_cmdlet, rtype.powershell.get_cmdlet
    for method in ("allow_all", "allowed_senders"):
        (proc,) = kb.procedures_for(method, type_id, "powershell")
        codes = [step.code for step in proc.steps if step.code]
        assert codes[0] == "Connect-ExchangeOnline"
        assert (
            f"{set_cmdlet} -Identity {{recipient}} -RequireSenderAuthenticationEnabled $false"
            in codes
        )
        check = (
            f"{get_cmdlet} -Identity {{recipient}} | "
            "Format-List RequireSenderAuthenticationEnabled,AcceptMessagesOnlyFrom*"
        )
        assert proc.check == check
        assert codes[-1] == check
        if method == "allowed_senders":
            add = (
                f"{set_cmdlet} -Identity {{recipient}} "
                '-AcceptMessagesOnlyFromSendersOrMembers @{Add="{sender}"}'
            )
            assert add in codes
            assert all("-AcceptMessagesOnlyFrom " not in c for c in codes)
        assert proc.source.startswith("https://learn.microsoft.com/")


def test_m365_group_uses_unified_group_cmdlets(kb: KnowledgeBase) -> None:
    rtype = kb.recipient_type("m365_group")
    assert rtype.powershell.set_cmdlet == "Set-UnifiedGroup"
    assert rtype.powershell.allowed_senders_parameters == (
        "AcceptMessagesOnlyFromSendersOrMembers",
    )
    (proc,) = kb.procedures_for("allow_all", "m365_group", "powershell")
    assert "m365_guest_alternative" in proc.notes
    assert kb.note("m365_guest_alternative").confidence == "uncertain"


def test_every_entry_has_an_https_source(kb: KnowledgeBase) -> None:
    sources: list[str] = [
        *(r.source for r in kb.recipient_types),
        *(r.powershell.source for r in kb.recipient_types),
        *(m.source for m in kb.methods),
        *(c.source for c in kb.centres),
        *(n.source for n in kb.notes),
        *(p.source for p in kb.procedures),
        *(f.source for f in kb.family),
        *(lk.source for lk in kb.lookalikes),
        *(t.source for t in kb.topics),
        *(s for t in kb.topics for s in t.sources),
        *(h.source for h in kb.hints.values()),
        kb.sender_guidance.who_can_fix.source,
        kb.sender_guidance.what_to_do.source,
        kb.sender_guidance.admin_note.source,
        kb.sender_guidance.own_organization.source,
    ]
    assert sources
    assert all(s.startswith("https://") for s in sources)


def test_procedure_placeholders_are_only_recipient_and_sender(kb: KnowledgeBase) -> None:
    for proc in kb.procedures:
        for text in proc.texts():
            assert placeholders_in(text) <= PROCEDURE_PLACEHOLDERS


def test_fill_placeholders_leaves_powershell_braces_alone() -> None:
    command = (
        "Set-Mailbox -Identity {recipient} "
        '-AcceptMessagesOnlyFromSendersOrMembers @{Add="{sender}"}'
    )
    filled = fill_placeholders(
        command, {"recipient": "info@contoso.com", "sender": "a@fabrikam.com"}
    )
    assert filled == (
        "Set-Mailbox -Identity info@contoso.com "
        '-AcceptMessagesOnlyFromSendersOrMembers @{Add="a@fabrikam.com"}'
    )


def test_sender_note_uses_every_placeholder(kb: KnowledgeBase) -> None:
    body = kb.sender_guidance.admin_note.body
    for name in (
        "recipient",
        "recipient_domain",
        "sender",
        "status",
        "smtp_code",
        "date",
        "subject",
        "article_url",
    ):
        assert "{" + name + "}" in body
    assert kb.sender_guidance.own_organization.offer_escalation is True


# ---- step conditions and note placement ---------------------------------------------------------

ALL_FLAGS = frozenset(STEP_FLAGS)
BEFORE_NOTES = {
    "external_sender_needs_contact",
    "mail_user_classic_only",
    "article_steps_user_mailboxes_only",
    "add_internal_senders_too",
}
OUTSIDE_SENDER_NOTES = {
    "external_sender_needs_contact",
    "mail_contact_counts_as_external",
    "allowed_values_internal_only",
}


def _codes(steps: tuple[Step, ...]) -> list[str]:
    return [step.code for step in steps if step.code]


@pytest.mark.parametrize("type_id", RECIPIENT_TYPE_IDS)
def test_allowed_senders_powershell_steps_carry_their_conditions(
    kb: KnowledgeBase, type_id: str
) -> None:
    (proc,) = kb.procedures_for("allowed_senders", type_id, "powershell")
    set_cmdlet = kb.recipient_type(type_id).powershell.set_cmdlet
    outside = [s.code for s in proc.steps if "outside_sender" in s.when]
    assert outside == [
        "Get-Recipient -Identity {sender}",
        'New-MailContact -Name "{sender}" -ExternalEmailAddress {sender}',
    ]
    auth = [s.code for s in proc.steps if "auth_required" in s.when]
    assert (
        auth[0]
        == f"{set_cmdlet} -Identity {{recipient}} -RequireSenderAuthenticationEnabled $false"
    )
    assert len(auth) == 2
    assert "<group of everyone in your organization>" in (auth[1] or "")
    assert proc.steps_for(ALL_FLAGS) == proc.steps
    # An inside sender of a related code (5.7.124/129): connect, add the sender, check.
    inside_related = proc.steps_for(frozenset())
    add = (
        f"{set_cmdlet} -Identity {{recipient}} "
        '-AcceptMessagesOnlyFromSendersOrMembers @{Add="{sender}"}'
    )
    assert _codes(inside_related) == ["Connect-ExchangeOnline", add, proc.check]
    for step in inside_related:
        assert "outside sender" not in step.text
    # An inside sender of 5.7.12 itself: no contact to look up or create.
    assert len(proc.steps_for(frozenset({"auth_required"}))) == len(proc.steps) - 2


def test_only_the_powershell_method_2_steps_have_conditions(kb: KnowledgeBase) -> None:
    for proc in kb.procedures:
        if proc.method == "allow_all" or proc.centre != "powershell":
            assert proc.steps_for(frozenset()) == proc.steps, proc.id


def test_notes_keep_the_old_signature_and_order(kb: KnowledgeBase) -> None:
    for proc in kb.procedures:
        every = kb.notes_for(proc)
        assert [n.id for n in every] == list(proc.notes)
        assert kb.notes_for(proc, None) == every
        assert kb.notes_for(proc, ALL_FLAGS) == every
        before, after = (
            kb.notes_for(proc, placement="before"),
            kb.notes_for(proc, placement="after"),
        )
        assert sorted(n.id for n in (*before, *after)) == sorted(proc.notes)
        assert all(n.placement == "before" for n in before)


def test_prerequisite_notes_go_before_the_steps(kb: KnowledgeBase) -> None:
    assert {n.id for n in kb.notes if n.placement == "before"} == BEFORE_NOTES
    assert "bot" not in kb.note("article_steps_user_mailboxes_only").text
    assert "here are the PowerShell commands" in kb.note("article_steps_user_mailboxes_only").text


def test_outside_sender_notes_are_left_out_for_an_inside_sender(kb: KnowledgeBase) -> None:
    assert {n.id for n in kb.notes if "outside_sender" in n.when} == OUTSIDE_SENDER_NOTES
    (proc,) = kb.procedures_for("allowed_senders", "distribution_group", "powershell")
    inside = {n.id for n in kb.notes_for(proc, frozenset({"auth_required"}))}
    assert inside == set(proc.notes) - OUTSIDE_SENDER_NOTES
    related = kb.notes_for(proc, frozenset({"outside_sender"}), "before")
    assert [n.id for n in related] == [
        "article_steps_user_mailboxes_only",
        "external_sender_needs_contact",
    ]


@pytest.mark.parametrize(
    ("status", "sender_inside", "expected"),
    [
        ("550 5.7.12", None, {"outside_sender", "auth_required"}),
        ("5.7.133", False, {"outside_sender", "auth_required"}),
        ("5.7.193", True, {"auth_required"}),
        (None, None, {"outside_sender", "auth_required"}),
        ("5.7.124", None, {"outside_sender"}),
        ("5.7.129", True, set()),
    ],
)
def test_step_flags_follow_the_code_and_the_sender(
    kb: KnowledgeBase, status: str | None, sender_inside: bool | None, expected: set[str]
) -> None:
    assert kb.step_flags(status, sender_inside=sender_inside) == expected


def test_method_labels_are_the_articles_and_buttons_answer(kb: KnowledgeBase) -> None:
    assert kb.method("allow_all").label == (
        "Method 1: Allow all internal and external senders to send messages to this recipient"
    )
    assert (
        kb.method("allowed_senders").label == "Method 2: Use the recipient's allowed senders list"
    )
    synonyms = {k: {s.casefold() for s in v} for k, v in kb.synonyms("method").items()}
    for method in kb.methods:
        assert method.short_label.casefold() in synonyms[method.id]
    for word in ("chosen senders", "chosen", "chosen only", "only some"):
        assert word in synonyms["allowed_senders"]
    for word in ("everyone", "open to all"):
        assert word in synonyms["allow_all"]
    assert not synonyms["allow_all"] & synonyms["allowed_senders"]


# ---- codes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "family"),
    [
        ("5.7.12", None),
        ("550 5.7.12", None),
        ("5.7.133", "group"),
        ("5.7.134", "mailbox"),
        ("5.7.135", "public_folder"),
        ("5.7.13", "public_folder"),
        ("5.7.136", "mail_user"),
        ("5.7.193", "m365_group"),
        ("5.7.124", "group"),
        ("5.7.129", "mailbox"),
    ],
)
def test_family_codes(kb: KnowledgeBase, status: str, family: str | None) -> None:
    entry = kb.code(status)
    assert isinstance(entry, FamilyCode)
    assert entry.recipient_family == family
    assert kb.is_family(status)


def test_related_codes_are_marked_related_and_uncertain(kb: KnowledgeBase) -> None:
    for status in ("5.7.124", "5.7.129"):
        entry = kb.code(status)
        assert isinstance(entry, FamilyCode)
        assert entry.fix == "related"
        assert entry.confidence == "uncertain"
    entry = kb.code("5.7.12")
    assert isinstance(entry, FamilyCode)
    assert entry.fix == "same"
    assert entry.resolver is None


def test_5_7_124_is_not_5_7_12(kb: KnowledgeBase) -> None:
    entry = kb.code("5.7.124")
    assert isinstance(entry, FamilyCode)
    assert entry.status == "5.7.124"
    assert parse_status("5.7.124") != parse_status("5.7.12")


def test_5_7_1_is_told_apart_by_resolver_and_text(kb: KnowledgeBase) -> None:
    auth = kb.code("5.7.1", "RESOLVER.RST.AuthRequired")
    assert isinstance(auth, FamilyCode)
    assert auth.fix == "same"
    assert isinstance(kb.code("5.7.1", text="550 5.7.1 ... authentication required"), FamilyCode)
    for text in (
        "Delivery not authorized, message refused",
        "Unable to relay",
        "530 5.7.1 Client was not authenticated",
    ):
        entry = kb.code("5.7.1", text=text)
        assert isinstance(entry, Lookalike), text
        assert not kb.is_family("5.7.1", text=text)
    assert kb.code("5.7.1") is None


@pytest.mark.parametrize(
    ("status", "title_word"),
    [
        ("5.7.620", "Banned"),
        ("5.7.606", "Banned"),
        ("5.7.649", "Banned"),
        ("5.7.705", "Tenant"),
        ("5.7.950", "mail flow rule"),
        ("5.7.515", "authentication"),
        ("5.7.57", "anonymous"),
        ("5.4.1", "Relay"),
        ("5.1.1", "mailbox address"),
        ("5.1.10", "not found"),
    ],
)
def test_lookalikes(kb: KnowledgeBase, status: str, title_word: str) -> None:
    entry = kb.code(status)
    assert isinstance(entry, Lookalike)
    assert title_word in entry.title
    assert "different problem" in entry.explanation
    assert not kb.is_family(status)


@pytest.mark.parametrize(
    "status",
    ["5.7.650", "5.7.605", "5.7.751", "5.7.899", "4.7.12", "MySQL 5.7.12", "10.5.7.12", ""],
)
def test_unknown_or_not_a_status(kb: KnowledgeBase, status: str) -> None:
    assert kb.code(status) is None


def test_lookups_and_synonyms(kb: KnowledgeBase) -> None:
    groups = {r.id for r in kb.recipient_types_in_family("group")}
    assert groups == {"distribution_group", "security_group", "dynamic_distribution_group"}
    assert len(kb.recipient_types_in_family(None)) == 8
    assert "DL" in kb.synonyms("recipient_type")["distribution_group"]
    assert "contact" not in {s.casefold() for s in kb.synonyms("recipient_type")["mail_user"]}
    assert "whitelist" in kb.synonyms("method")["allowed_senders"]
    assert "ECP" in kb.synonyms("centre")["classic_eac"]
    assert kb.centre("new_eac").url == "https://admin.exchange.microsoft.com"
    assert kb.centre("classic_eac").url == "https://outlook.office365.com/ecp/"
    assert kb.centre("powershell").connect_command == "Connect-ExchangeOnline"
    assert kb.method("allow_all").tradeoff
    assert kb.help_text.greeting


# ---- broken copies of the data ------------------------------------------------------------------


def test_missing_field_names_file_and_field(data_copy: Path) -> None:
    edit_yaml(data_copy / "procedures.yaml", lambda d: d["procedures"][3].pop("title"))
    with pytest.raises(
        KnowledgeError, match=r"procedures\.yaml: procedures\[3\]\.title: Field required"
    ):
        load_knowledge(data_copy)


def test_missing_step_text_names_the_step(data_copy: Path) -> None:
    edit_yaml(data_copy / "procedures.yaml", lambda d: d["procedures"][7]["steps"][4].pop("text"))
    with pytest.raises(
        KnowledgeError, match=r"procedures\.yaml: procedures\[7\]\.steps\[4\]\.text: Field required"
    ):
        load_knowledge(data_copy)


def test_wrong_type_names_file_and_field(data_copy: Path) -> None:
    edit_yaml(
        data_copy / "recipient_types.yaml", lambda d: d["recipient_types"][2].update(synonyms="DL")
    )
    with pytest.raises(
        KnowledgeError, match=r"recipient_types\.yaml: recipient_types\[2\]\.synonyms: "
    ):
        load_knowledge(data_copy)


def test_unknown_method_id_is_refused(data_copy: Path) -> None:
    edit_yaml(data_copy / "procedures.yaml", lambda d: d["procedures"][0].update(method="method_3"))
    with pytest.raises(KnowledgeError, match=r"procedures\.yaml: procedures\[0\]\.method: "):
        load_knowledge(data_copy)


def test_unknown_note_id_names_file_and_field(data_copy: Path) -> None:
    edit_yaml(
        data_copy / "procedures.yaml", lambda d: d["procedures"][4]["notes"].append("no_such_note")
    )
    with pytest.raises(
        KnowledgeError,
        match=r"procedures\.yaml: procedures\[4\]\.notes\[1\]: unknown note id 'no_such_note'",
    ):
        load_knowledge(data_copy)


def test_http_source_is_refused(data_copy: Path) -> None:
    edit_yaml(
        data_copy / "notes.yaml", lambda d: d["notes"][0].update(source="http://example.com/x")
    )
    with pytest.raises(KnowledgeError, match=r"notes\.yaml: notes\[0\]\.source: .*https URL"):
        load_knowledge(data_copy)


def test_duplicate_procedure_id_is_refused(data_copy: Path) -> None:
    edit_yaml(
        data_copy / "procedures.yaml",
        lambda d: d["procedures"][1].update(id=d["procedures"][0]["id"]),
    )
    with pytest.raises(
        KnowledgeError, match=r"procedures\.yaml: procedures\[1\]\.id: duplicate id"
    ):
        load_knowledge(data_copy)


def test_mail_user_in_new_eac_is_refused(data_copy: Path) -> None:
    def change(d: dict[str, list[dict[str, object]]]) -> None:
        d["procedures"][4]["centre"] = "new_eac"

    edit_yaml(data_copy / "procedures.yaml", change)
    with pytest.raises(KnowledgeError, match=r"procedures\.yaml: procedures\[4\]"):
        load_knowledge(data_copy)


def test_missing_method_1_procedure_is_refused(data_copy: Path) -> None:
    edit_yaml(
        data_copy / "procedures.yaml",
        lambda d: d.update(
            procedures=[p for p in d["procedures"] if "mail_user" not in p["recipient_types"]]
        ),
    )
    with pytest.raises(KnowledgeError, match=r"procedures\.yaml: .*mail_user"):
        load_knowledge(data_copy)


def test_unknown_placeholder_is_refused(data_copy: Path) -> None:
    edit_yaml(
        data_copy / "sender.yaml", lambda d: d["admin_note"].update(subject="Bounce from {sendr}")
    )
    with pytest.raises(
        KnowledgeError, match=r"sender\.yaml: admin_note\.subject: unknown placeholder"
    ):
        load_knowledge(data_copy)


def _index(data: dict[str, Any], procedure_id: str) -> int:
    return next(i for i, p in enumerate(data["procedures"]) if p["id"] == procedure_id)


def test_unknown_step_flag_names_the_step(data_copy: Path) -> None:
    where: dict[str, int] = {}

    def change(d: dict[str, Any]) -> None:
        where["i"] = _index(d, "allowed_senders.user_mailbox.powershell")
        d["procedures"][where["i"]]["steps"][1]["when"] = ["inside_sender"]

    edit_yaml(data_copy / "procedures.yaml", change)
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(data_copy)
    assert f"procedures.yaml: procedures[{where['i']}].steps[1].when[0]: " in str(info.value)
    assert "outside_sender" in str(info.value)


def test_unknown_note_flag_and_placement_are_refused(data_copy: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        d["notes"][0]["when"] = ["sometimes"]
        d["notes"][1]["placement"] = "middle"

    edit_yaml(data_copy / "notes.yaml", change)
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(data_copy)
    assert "notes.yaml: notes[0].when[0]: " in str(info.value)
    assert "notes.yaml: notes[1].placement: " in str(info.value)


def test_procedure_whose_every_step_has_conditions_is_refused(data_copy: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        for step in d["procedures"][_index(d, "allow_all.mail_user.powershell")]["steps"]:
            step["when"] = ["outside_sender"]

    edit_yaml(data_copy / "procedures.yaml", change)
    with pytest.raises(
        KnowledgeError, match=r"procedures\.yaml: procedures\[\d+\]\.steps: every step"
    ):
        load_knowledge(data_copy)


def test_lookalike_needs_status_or_range(data_copy: Path) -> None:
    edit_yaml(data_copy / "codes.yaml", lambda d: d["lookalikes"][3].pop("status"))
    with pytest.raises(KnowledgeError, match=r"codes\.yaml: lookalikes\[3\]: .*status or range"):
        load_knowledge(data_copy)


def test_broken_yaml_names_file_and_line(data_copy: Path) -> None:
    path = data_copy / "methods.yaml"
    path.write_text("methods:\n  - id: allow_all\n    label: [unclosed\n", encoding="utf-8")
    with pytest.raises(
        KnowledgeError, match=r"methods\.yaml: line \d+, column \d+: YAML syntax error"
    ):
        load_knowledge(data_copy)


def test_missing_file_is_named(data_copy: Path) -> None:
    (data_copy / "codes.yaml").unlink()
    with pytest.raises(KnowledgeError, match=r"codes\.yaml: file not found"):
        load_knowledge(data_copy)


def test_errors_for_another_directory_show_its_path(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(tmp_path)
    assert str(tmp_path) in str(info.value)


# ---- the texts each part of the code declares it needs ------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
# A platform text named whole ("teams_register_in_channel"), or the start of one an f-string
# completes (f"teams_ticket_{key}").
PLATFORM_KEY = re.compile(r"""(?<![\w"'])["']((?:teams|slack)_\w+)["']""")
PLATFORM_PREFIX = re.compile(r"""\bf["']((?:teams|slack)_\w*)\{""")


def _sources() -> dict[Path, str]:
    rooms = ("bot", "dialogs", "knowledge")
    return {
        path: path.read_text(encoding="utf-8")
        for room in rooms
        for path in sorted((ROOT / room).rglob("*.py"))
    }


def test_every_platform_text_the_code_uses_is_declared(kb: KnowledgeBase) -> None:
    texts = kb.conversation.texts.keys()
    declared = set().union(*PLATFORM_DECLARATIONS.values())
    named: set[str] = set()
    prefixes: set[str] = set()
    for source in _sources().values():
        named |= {key for key in PLATFORM_KEY.findall(source) if key in texts}
        prefixes |= set(PLATFORM_PREFIX.findall(source))
    assert len(named) >= 2
    assert prefixes >= {"teams_ticket_", "slack_ticket_status_", "slack_modal_"}
    assert named <= declared
    for prefix in prefixes:
        completed = {key for key in texts if key.startswith(prefix)}
        assert completed, prefix
        assert completed <= declared, prefix
    # Every Teams and Slack text of conversation.yaml is some module's, and none is the dialogs'.
    assert {key for key in texts if key.startswith(("teams_", "slack_"))} <= declared
    assert not {key for key in CONVERSATION_TEXTS if key.startswith(("teams_", "slack_"))}


def _module_source(name: str) -> str:
    """A module's source; a package's (one ``TEXTS`` for all its modules) is all its modules'."""
    path = Path(str(sys.modules[name].__file__))
    files = sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
    return "\n".join(file.read_text(encoding="utf-8") for file in files)


def test_each_module_declares_only_the_texts_it_uses() -> None:
    for name, keys in PLATFORM_DECLARATIONS.items():
        source = _module_source(name)
        prefixes = tuple(PLATFORM_PREFIX.findall(source))
        unused = {key for key in keys if f'"{key}"' not in source and not key.startswith(prefixes)}
        assert not unused, f"{name} declares texts it does not look up: {sorted(unused)}"


def test_the_shipped_knowledge_base_defines_every_declared_text(kb: KnowledgeBase) -> None:
    assert kb.conversation.texts.keys() >= DECLARED_TEXTS
    for name, keys in PLATFORM_DECLARATIONS.items():
        kb.conversation.require(keys, name)


def test_a_missing_platform_text_is_named_with_who_needs_it(data_copy: Path) -> None:
    edit_yaml(
        data_copy / "conversation.yaml",
        lambda data: data["texts"].pop("teams_ticket_title"),
    )
    knowledge = load_knowledge(data_copy)  # the dialogs do not need it
    with pytest.raises(
        KnowledgeError,
        match=r"conversation\.yaml: texts: missing \['teams_ticket_title'\], needed by "
        r"bot\.channels\.teams",
    ):
        knowledge.conversation.require(
            PLATFORM_DECLARATIONS["bot.channels.teams"], "bot.channels.teams"
        )
    knowledge.conversation.require(
        PLATFORM_DECLARATIONS["bot.channels.slack"], "bot.channels.slack"
    )


def test_a_missing_dialog_text_still_fails_the_load(data_copy: Path) -> None:
    edit_yaml(data_copy / "conversation.yaml", lambda data: data["texts"].pop("ask_role"))
    with pytest.raises(
        KnowledgeError, match=r"conversation\.yaml: .*texts: missing \['ask_role'\]"
    ):
        load_knowledge(data_copy)


async def test_the_bot_does_not_start_without_a_platform_text(
    data_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.runtime
    from bot.channels import slack
    from bot.config import load_settings

    edit_yaml(
        data_copy / "conversation.yaml",
        lambda data: data["texts"].pop("slack_modal_required"),
    )
    knowledge = load_knowledge(data_copy)
    monkeypatch.setattr(bot.runtime, "default_knowledge", lambda: knowledge)
    database = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    settings = load_settings({"DATABASE_URL": database}, env_file=None)
    declared = {slack.__name__: slack.TEXTS}  # as the app hands over a mounted platform's
    with pytest.raises(KnowledgeError, match=r"slack_modal_required.*bot\.channels\.slack"):
        async with bot.runtime.open_runtime(settings, conversing=False, platform_texts=declared):
            pass
    assert not (tmp_path / "bot.db").exists()  # stopped before the store was opened
