"""Questions asked in the middle of a conversation ("why does this happen?", "is it safe?"),
answered from the knowledge base's topics; and what to tell someone who doesn't know an answer."""

from __future__ import annotations

from dialogs.replies import Text
from dialogs.turn import Turn
from knowledge.kb import fill_placeholders


def answer(turn: Turn, topic_id: str) -> None:
    """Answer a question from the topic ``topic_id``, with its command and its source."""
    topic = turn.knowledge.topic(topic_id)
    values = {"recipient": turn.recipient or "<recipient address>"}
    lines = [f"**{topic.title}**", fill_placeholders(topic.text, values)]
    if topic.code:
        lines.append(fill_placeholders(topic.code, values))
    lines.append(f"{turn.text('facts_source')}: {topic.source}")
    turn.replies.append(Text("\n".join(lines)))


def hint(turn: Turn, slot: str) -> None:
    """How to find out the answer to the question on ``slot`` (and the topic that says more)."""
    hints = turn.knowledge.hints
    if slot not in hints:
        turn.say("dont_know_generic")
        return
    found = hints[slot]
    if found.topic is not None:
        answer(turn, found.topic)
    else:
        values = {"recipient": turn.recipient or "<recipient address>"}
        turn.replies.append(Text(fill_placeholders(found.text, values)))
