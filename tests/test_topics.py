"""Tests for topics.yaml: the answers to questions asked mid-conversation, and the hints for
"I don't know", with the loader's error messages for broken copies."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from knowledge.kb import (
    HINT_SLOTS,
    TOPIC_IDS,
    TOPIC_PLACEHOLDERS,
    KnowledgeBase,
    KnowledgeError,
    default_knowledge,
    load_knowledge,
    placeholders_in,
)
from tests.kb_copies import edit_yaml

DATA = Path(__file__).resolve().parent.parent / "knowledge" / "data"
BOLD = re.compile(r"\*\*(.+?)\*\*")
# A sentence ends at . ! or ? followed by a space and a capital letter (or the end of the text).
SENTENCE_END = re.compile(r"[.!?](?=\s+[A-Z(]|\s*$)")
SOURCE_HOSTS = (
    "https://learn.microsoft.com/",
    "https://www.rfc-editor.org/",
    "https://www.iana.org/",
)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_knowledge()


def test_every_topic_is_there_and_found_by_id(kb: KnowledgeBase) -> None:
    assert tuple(t.id for t in kb.topics) == TOPIC_IDS
    for topic_id in TOPIC_IDS:
        assert kb.topic(topic_id).id == topic_id
    with pytest.raises(KeyError):
        kb.topic("weather")


@pytest.mark.parametrize("topic_id", TOPIC_IDS)
def test_topic_is_short_plain_and_sourced(kb: KnowledgeBase, topic_id: str) -> None:
    topic = kb.topic(topic_id)
    assert topic.title
    assert len(topic.title) <= 60
    assert 2 <= len(SENTENCE_END.findall(topic.text)) <= 6, topic.text
    assert "\n" not in topic.text
    for source in (topic.source, *topic.sources):
        assert source.startswith(SOURCE_HOSTS), source
    for text in (topic.text, topic.code or ""):
        assert placeholders_in(text) <= TOPIC_PLACEHOLDERS


def test_topic_ui_labels_are_the_ones_microsoft_shows(kb: KnowledgeBase) -> None:
    labels = {label for t in kb.topics for label in BOLD.findall(t.text)}
    labels |= {label for h in kb.hints.values() for label in BOLD.findall(h.text)}
    assert labels == {
        "Require senders to be authenticated",  # new EAC, the 5.7.12 article
        "Require that all senders are authenticated",  # classic EAC, the 5.7.12 article
        "Recipients > Mailboxes",
        "Recipients > Groups",
        "Recipients > Contacts",
        "Distribution list",  # the groups tab, the 5.7.124 article
    }


def test_why_names_the_setting_and_the_group_default(kb: KnowledgeBase) -> None:
    text = kb.topic("why").text
    assert "RequireSenderAuthenticationEnabled" in text
    assert "New distribution groups" in text
    assert "spam" in text


def test_risk_names_the_risks_and_what_reduces_them(kb: KnowledgeBase) -> None:
    text = kb.topic("risk").text
    for word in ("spam", "forged senders", "phishing", "Method 2", "anti-spam", "anti-phishing"):
        assert word in text
    for word in ("SPF", "DKIM", "DMARC", "moderation"):
        assert word in text


def test_find_type_gives_the_command_and_every_type_value(kb: KnowledgeBase) -> None:
    topic = kb.topic("find_type")
    assert topic.code == "Get-Recipient -Identity {recipient} | Format-List RecipientTypeDetails"
    for value in (
        "UserMailbox",
        "SharedMailbox",
        "MailUniversalDistributionGroup",
        "MailUniversalSecurityGroup",
        "DynamicDistributionGroup",
        "GroupMailbox",
        "MailUser",
        "PublicFolder",
        "MailContact",
    ):
        assert value in topic.text


def test_delay_agrees_with_the_conversation_and_asks_for_a_new_message(kb: KnowledgeBase) -> None:
    text = kb.topic("delay").text
    # The conversation's own sentences (ask_fixed and fixed_no) say the same thing.
    asked = kb.conversation.text("ask_fixed")
    for words in ("within minutes", "up to an hour", "new message"):
        assert words in text
        assert words in asked
    assert "an hour" in kb.conversation.text("fixed_no")
    assert "Microsoft 365 groups" in text
    assert "new message" in text
    assert kb.topic("delay").confidence == "uncertain"  # the hour is stated for M365 groups only


def test_mail_user_and_methods_topics(kb: KnowledgeBase) -> None:
    mail_user = kb.topic("mail_user").text
    assert "sign in" in mail_user
    assert "can't sign in" in mail_user
    assert "allowed senders list" in mail_user
    assert "always counts as an outside sender" in mail_user
    methods = kb.topic("methods").text
    assert "Method 1" in methods
    assert "Method 2" in methods
    assert "mail contact" in methods
    assert "everyone inside your organization" in methods


def test_every_question_has_a_hint(kb: KnowledgeBase) -> None:
    assert set(kb.hints) == set(HINT_SLOTS)
    assert kb.hint("recipient_type").topic == "find_type"
    assert kb.hint("method").topic == "methods"
    assert "admin.exchange.microsoft.com" in kb.hint("centre").text
    assert "Recipient Address" in kb.hint("recipient").text
    assert "couldn't be delivered" in kb.hint("recipient").text
    assert "sender" in kb.hint("role").text
    assert "admin" in kb.hint("role").text
    for hint in kb.hints.values():
        assert hint.source.startswith(SOURCE_HOSTS)
        assert hint.topic is None or kb.topic(hint.topic)
    with pytest.raises(KeyError):
        kb.hint("colour")


def test_the_bot_never_speaks_of_itself_in_the_third_person(kb: KnowledgeBase) -> None:
    third_person = re.compile(r"\b(the|this) (bot|helpdesk bot|assistant)\b", re.IGNORECASE)
    texts = [
        *(t.text for t in kb.topics),
        *(t.title for t in kb.topics),
        *(h.text for h in kb.hints.values()),
        *(n.text for n in kb.notes),
        *(m.tradeoff for m in kb.methods),
        *(text for p in kb.procedures for text in p.texts()),
        *(p.title for p in kb.procedures),
    ]
    assert [t for t in texts if third_person.search(t)] == []


# ---- broken copies of topics.yaml ---------------------------------------------------------------


def _topics(data_copy: Path, change: Callable[[Any], object]) -> None:
    edit_yaml(data_copy / "topics.yaml", change)


def test_missing_topic_names_file_and_field(data_copy: Path) -> None:
    _topics(data_copy, lambda d: d.update(topics=[t for t in d["topics"] if t["id"] != "risk"]))
    with pytest.raises(
        KnowledgeError, match=r"topics\.yaml: topics: ids must be .*missing \['risk'\]"
    ):
        load_knowledge(data_copy)


def test_unknown_topic_id_is_refused(data_copy: Path) -> None:
    _topics(data_copy, lambda d: d["topics"][0].update(id="weather"))
    with pytest.raises(KnowledgeError, match=r"topics\.yaml: topics\[0\]\.id: "):
        load_knowledge(data_copy)


def test_duplicate_topic_id_is_refused(data_copy: Path) -> None:
    _topics(data_copy, lambda d: d["topics"][1].update(id=d["topics"][0]["id"]))
    with pytest.raises(KnowledgeError, match=r"topics\.yaml: topics\[1\]\.id: duplicate id"):
        load_knowledge(data_copy)


def test_missing_topic_text_names_the_field(data_copy: Path) -> None:
    _topics(data_copy, lambda d: d["topics"][2].pop("text"))
    with pytest.raises(KnowledgeError, match=r"topics\.yaml: topics\[2\]\.text: Field required"):
        load_knowledge(data_copy)


def test_unknown_hint_slot_names_file_and_field(data_copy: Path) -> None:
    _topics(data_copy, lambda d: d["hints"].update(colour=d["hints"]["role"]))
    with pytest.raises(KnowledgeError, match=r"topics\.yaml: hints\.colour: unknown slot 'colour'"):
        load_knowledge(data_copy)


def test_missing_hint_names_the_slot(data_copy: Path) -> None:
    _topics(data_copy, lambda d: d["hints"].pop("centre"))
    with pytest.raises(
        KnowledgeError, match=r"topics\.yaml: hints: missing hints for \['centre'\]"
    ):
        load_knowledge(data_copy)


def test_hint_pointing_to_an_unknown_topic_is_refused(data_copy: Path) -> None:
    _topics(data_copy, lambda d: d["hints"]["method"].update(topic="weather"))
    with pytest.raises(KnowledgeError, match=r"topics\.yaml: hints\.method\.topic: "):
        load_knowledge(data_copy)


def test_unknown_placeholder_in_a_topic_command_is_refused(data_copy: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        (topic,) = (t for t in d["topics"] if t["id"] == "find_type")
        topic["code"] = "Get-Recipient -Identity {recipent}"

    _topics(data_copy, change)
    with pytest.raises(
        KnowledgeError, match=r"topics\.yaml: topics\[2\]\.code: unknown placeholder.*recipent"
    ):
        load_knowledge(data_copy)


def test_unknown_placeholder_in_a_hint_is_refused(data_copy: Path) -> None:
    _topics(data_copy, lambda d: d["hints"]["role"].update(text="You sent it to {address}."))
    with pytest.raises(
        KnowledgeError, match=r"topics\.yaml: hints\.role\.text: unknown placeholder"
    ):
        load_knowledge(data_copy)


def test_http_topic_source_is_refused(data_copy: Path) -> None:
    _topics(data_copy, lambda d: d["topics"][3]["sources"].append("http://example.com/x"))
    with pytest.raises(
        KnowledgeError, match=r"topics\.yaml: topics\[3\]\.sources\[1\]: .*https URL"
    ):
        load_knowledge(data_copy)


def test_missing_topics_file_is_named(data_copy: Path) -> None:
    (data_copy / "topics.yaml").unlink()
    with pytest.raises(KnowledgeError, match=r"topics\.yaml: file not found"):
        load_knowledge(data_copy)
