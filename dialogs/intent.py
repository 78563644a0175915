"""The intent detector: what a user turn is about.

Machine-written text is read by rules: a pasted bounce wins over everything, and a code of the
5.7.12 family named in a message makes it a question about that code. People's own words are read
by the language layer (:mod:`dialogs.reading`), which gives the intent, its confidence and the
facts said. ``classify`` has no language layer: it reads a message with the reader and the
pattern tables below, as it always has.

A platform command ("register admins") is declared here too, with the words it takes, but it is
not for the dialogs: the channels ask :func:`is_register_admins` before a turn is run, and
:func:`recognise` never gives that intent, so a turn the channel let through is read as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from dialogs.messages import Message
from dialogs.reading import Expectation, Reading, Understanding
from knowledge.kb import KnowledgeBase
from knowledge.ndr import Bounce, InputRejected, read_bounce


class IntentName(StrEnum):
    """Everything a user turn can be about."""

    BOUNCE_5712 = "bounce_5712"  # a bounce of the 5.7.12 family
    BOUNCE_OTHER = "bounce_other"  # a bounce, or a question, about a code that is not 5.7.12
    QUESTION_5712 = "question_5712"  # "how do I fix 5.7.12", "external people can't email us"
    ESCALATE = "escalate"
    MY_TICKETS = "my_tickets"
    HELP = "help"
    GREETING = "greeting"
    CANCEL = "cancel"
    START_OVER = "start_over"
    FEEDBACK = "feedback"
    INFORM = "inform"  # facts only: "shared mailbox", "I'm the admin"
    ASK_WHY = "ask_why"
    ASK_RISK = "ask_risk"
    ASK_FIND_TYPE = "ask_find_type"
    ASK_DELAY = "ask_delay"
    ASK_MAIL_USER = "ask_mail_user"
    ASK_METHODS = "ask_methods"
    DONT_KNOW = "dont_know"
    GO_BACK = "go_back"
    AFFIRM = "affirm"
    DENY = "deny"
    OTHER = "other"
    # A platform command: the channel acts on it, the dialogs never get it (see PLATFORM_COMMANDS).
    REGISTER_ADMINS = "register_admins"  # "@bot register admins" in a channel


#: The language layer's intents, as the conversation names them.
_FROM_LANGUAGE = {
    "question": IntentName.QUESTION_5712,
    "thanks": IntentName.FEEDBACK,
    "complain": IntentName.FEEDBACK,
    "out_of_scope": IntentName.OTHER,
}
#: Questions answered from the knowledge base's topics, by topic id.
TOPIC_OF = {
    IntentName.ASK_WHY: "why",
    IntentName.ASK_RISK: "risk",
    IntentName.ASK_FIND_TYPE: "find_type",
    IntentName.ASK_DELAY: "delay",
    IntentName.ASK_MAIL_USER: "mail_user",
    IntentName.ASK_METHODS: "methods",
}


@dataclass(frozen=True)
class Intent:
    """The detected intent, with the facts read from the message (and why it was refused, if)."""

    name: IntentName
    bounce: Bounce | None = None
    rejected: str | None = None  # the reason a file or paste could not be read
    feedback_positive: bool | None = None
    reading: Reading | None = None  # what the language layer read in the words
    confidence: float = 1.0  # how sure the intent is (1 for bounces, clicks and rules)


@dataclass(frozen=True)
class _Rule:
    intent: IntentName
    priority: int  # the lower wins when a message matches several rules
    patterns: tuple[re.Pattern[str], ...]


def _patterns(*sources: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(source, re.IGNORECASE) for source in sources)


# A command is a short message: a long one that happens to contain "help" is a question.
_COMMAND_MAX_WORDS = 14

_RULES: tuple[_Rule, ...] = (
    _Rule(
        IntentName.ESCALATE,
        10,
        _patterns(
            r"\bescalat",
            r"\b(?:talk|speak|chat)\s+(?:to|with)\s+(?:an?\s+|the\s+|a\s+real\s+)?"
            r"(?:admin|administrator|human|person|someone|agent|helpdesk|help\s*desk|it|support|expert)",
            r"\b(?:need|want|get)\s+(?:an?\s+|the\s+)?(?:human|real\s+person|person|admin|"
            r"administrator|technician|helpdesk|help\s*desk)\b",
            r"\b(?:open|raise|create|file|log|submit)\s+(?:an?\s+|the\s+)?(?:ticket|case|request)\b",
            r"\bcontact\s+(?:the\s+|an?\s+)?(?:helpdesk|help\s*desk|admins?|administrators?|support)\b",
            r"\bhand\s+(?:this|it)\s+(?:over|off)\b",
            r"\b(?:eskalieren|escalader|escalar|escalare|escaleren)\b",
        ),
    ),
    _Rule(
        IntentName.MY_TICKETS,
        15,
        _patterns(
            r"^\W*(?:(?:show|list|see|check)\s+)?(?:me\s+)?my\s+(?:open\s+)?(?:tickets?|cases?)\b",
            r"\b(?:status|state)\s+of\s+my\s+(?:tickets?|cases?|escalations?)\b",
            r"^\W*(?:ticket\s+status|my\s+escalations?)\W*$",
        ),
    ),
    _Rule(
        IntentName.CANCEL,
        20,
        _patterns(
            r"^\W*(?:cancel|stop|quit|exit|abort|never\s*mind|nevermind|forget\s+(?:it|about\s+it)"
            r"|no\s+thanks|leave\s+it|annuler|abbrechen|cancelar|annulla|annuleren)\b",
        ),
    ),
    _Rule(
        IntentName.START_OVER,
        30,
        _patterns(
            r"\b(?:start(?:ing)?\s*over|start\s+again|restart|reset|from\s+the\s+(?:top|beginning|start)"
            r"|new\s+conversation|begin\s+again|recommencer|neu\s+starten|von\s+vorne"
            r"|empezar\s+de\s+nuevo|ricominciare|opnieuw\s+beginnen|recomeçar)\b",
        ),
    ),
    _Rule(
        IntentName.HELP,
        40,
        _patterns(
            r"^\W*(?:help|menu|commands|options|usage|hilfe|aide|ayuda|aiuto|ajuda)\W*$",
            r"^\W*\?+\W*$",
            r"\bwhat\s+(?:can|do|else\s+can)\s+you\s+do\b",
            r"\bhow\s+(?:does\s+this|do\s+(?:i|you))\s+(?:work|use\s+(?:this|you|the\s+bot))\b",
            r"\bhow\s+does\s+this\s+(?:bot\s+)?work\b",
            r"\bwho\s+are\s+you\b",
            r"^\W*(?:i\s+need\s+help|help\s+me|can\s+you\s+help(?:\s+me)?)\W*$",
        ),
    ),
    _Rule(
        IntentName.FEEDBACK,
        50,
        _patterns(
            r"\b(?:thanks|thank\s+you|thx|ty|cheers|much\s+appreciated|appreciate\s+it)\b",
            r"\b(?:that|it)\s+(?:worked|works|helped|fixed\s+it|did\s+it)\b",
            r"\b(?:works\s+now|fixed\s+now|all\s+good\s+now|problem\s+solved|solved\s+it)\b",
            r"\b(?:didn'?t|did\s+not|doesn'?t|does\s+not)\s+(?:help|work)\b",
            r"\b(?:not\s+helpful|useless|unhelpful|great\s+bot|good\s+bot|bad\s+bot|well\s+done)\b",
            r"\b(?:merci|danke|gracias|grazie|obrigad[oa]|bedankt)\b",
        ),
    ),
    _Rule(
        IntentName.GREETING,
        60,
        _patterns(
            r"^\W*(?:hi|hello|hey|hiya|howdy|yo|greetings|good\s+(?:morning|afternoon|evening|day)"
            r"|bonjour|salut|hallo|guten\s+(?:morgen|tag|abend)|servus|hola|buenos\s+d[ií]as"
            r"|buenas|ciao|buongiorno|salve|ol[áa]|oi|bom\s+dia|goedemorgen|goedemiddag|hoi)\b",
        ),
    ),
)

#: Commands to a platform, not to the conversation: the channel that serves the platform acts on
#: them before any turn runs, so they are kept out of ``_RULES`` (the dialogs' commands) and
#: ``recognise`` never answers with them.
PLATFORM_COMMANDS = frozenset({IntentName.REGISTER_ADMINS})

# The whole message, nothing more: "register admins" is a command, "please register admins for
# me" a sentence (read by the dialogs). Trailing punctuation and spaces are allowed, and the
# one-time code the server printed at start ("register admins 123-456").
_REGISTER_ADMINS = _Rule(
    IntentName.REGISTER_ADMINS,
    0,
    _patterns(
        r"^\s*register\s+(?:the\s+)?(?:helpdesk\s+)?admins?(?:'|\u2019)?(?:\s+channel)?"
        r"(?:\s*[:,]?\s+(?P<code>\d{3}[-\s]?\d{3}))?\W*\Z",
    ),
)


def is_register_admins(text: str) -> bool:
    """Whether a message (its readable text, the bot's @mention taken out) is the "register
    admins" command: "register admins", "register the admins", "register helpdesk admins",
    "register admins channel", "Register admins." and the like, with or without the one-time
    code ("register admins 123-456"), and nothing longer."""
    return _matches(_REGISTER_ADMINS, text)


def register_admins_code(text: str) -> str | None:
    """The one-time code a "register admins" command carries ("123-456"), or None."""
    for pattern in _REGISTER_ADMINS.patterns:
        found = pattern.search(text)
        if found is not None:
            return found.group("code")
    return None


_NEGATIVE_FEEDBACK = re.compile(
    r"\b(?:didn'?t|did\s+not|doesn'?t|does\s+not)\s+(?:help|work)\b|not\s+helpful|useless|unhelpful"
    r"|bad\s+bot",
    re.IGNORECASE,
)

# A 5.7.12 question asked in words, without the code: people outside cannot mail us.
_TOPIC = _patterns(
    r"\b(?:external|outside|outsiders?|partners?|customers?|clients?|vendors?|suppliers?"
    r"|gmail|hotmail|yahoo|people\s+outside|other\s+compan(?:y|ies)|internet|anonymous)\b"
    r"[^.?!\n]{0,80}\b(?:can'?t|cannot|can\s+not|unable|not\s+able|fail|failing|bounce[sd]?"
    r"|rejected|blocked|get\s+(?:an?\s+)?(?:error|ndr|bounce)|don'?t\s+(?:get|receive))"
    r"[^.?!\n]{0,60}\b(?:e-?mail|mail|send|reach|message|write|contact)",
    r"\b(?:e-?mails?|messages?|mail)\s+from\s+(?:external|outside)[^.?!\n]{0,80}"
    r"\b(?:bounce|rejected|blocked|fail|not\s+(?:delivered|arriving|received))",
    r"\bonly\s+accepts?\s+(?:e-?mail|mail|messages)\s+from\s+(?:inside|internal|within)",
    r"\brequire\s+(?:that\s+all\s+)?senders\s+(?:to\s+)?(?:be|are)\s+authenticated\b",
    r"\bRequireSenderAuthenticationEnabled\b|\bSenderNotAuthenticated|\bRequireAllSendersAreAuthenticated\b",
    r"\b(?:allow|let|permit)\s+(?:external|outside)\s+(?:senders|people|users|e-?mail|mail)\b",
    r"\bsender\s+was\s+not\s+authenticated\s+by\s+organi[sz]ation\b",
    r"\bexterne?[rn]?\b[^.?!\n]{0,60}\b(?:können\s+nicht|kann\s+nicht|nicht\s+(?:senden|schreiben))",
    r"\bexternes?\b[^.?!\n]{0,60}\bne\s+peu(?:ven)?t\s+pas\b",
    r"\bextern[oa]s?\b[^.?!\n]{0,60}\bno\s+pued",
)


# Longer than this, a message that is not a bounce is a paste (a page, a log), not words to read.
_MAX_WORDS_READ = 120


def recognise(
    message: Message,
    knowledge: KnowledgeBase | None = None,
    understanding: Understanding | None = None,
    expecting: Expectation | None = None,
) -> Intent:
    """Say what one user turn is about. A file sent with the turn is read as the bounce; the
    words are read by ``understanding`` when given (the pattern tables otherwise)."""
    if message.value and isinstance(message.value.get("intent"), str):
        try:
            clicked = IntentName(message.value["intent"])
        except ValueError:
            pass
        else:
            if clicked not in PLATFORM_COMMANDS:
                return Intent(clicked)
    from_file: Intent | None = None
    for attachment in message.files:
        intent = recognise_content(attachment.content, knowledge)
        if intent.rejected or (intent.bounce and intent.bounce.is_bounce):
            return intent
        from_file = from_file or intent
    if from_file is not None and not message.text.strip():
        intent = from_file  # a question sent as a file: its words are the message
    else:
        intent = recognise_content(message.text, knowledge)
    bounce = intent.bounce
    if (
        understanding is None
        or intent.rejected
        or bounce is None
        or bounce.is_bounce
        or len(bounce.text.split(None, _MAX_WORDS_READ)) > _MAX_WORDS_READ
    ):
        return intent
    if not any(character.isalnum() for character in bounce.text or message.text):
        # No words to read: a lone "?" asks what the bot can do; a thumb says yes or no.
        if "?" in message.text:
            return Intent(IntentName.HELP, bounce)
        if any(mark in message.text for mark in _YES_MARKS):
            return Intent(IntentName.AFFIRM, bounce)
        if any(mark in message.text for mark in _NO_MARKS):
            return Intent(IntentName.DENY, bounce)
        return Intent(IntentName.OTHER, bounce)
    # Slack markup and pasted HTML read as the reader turned them into text ("<mailto:a@b|a@b>").
    words = (
        bounce.text
        if (bounce.format in ("slack", "html") or intent is from_file) and bounce.text
        else message.text
    )
    reading = understanding.read(words, expecting)
    name = _FROM_LANGUAGE.get(reading.intent) or IntentName(reading.intent)
    if bounce.mentioned_statuses:
        # A code named in words: the code decides what it is about, unless the words ask for
        # one of the commands ("escalate my 5.7.1 case").
        if name not in _COMMANDS or reading.confidence < 0.5:
            name = intent.name if intent.name is not IntentName.OTHER else name
    elif bounce.listed_statuses and name is IntentName.QUESTION_5712:
        name = IntentName.OTHER  # a list of codes (a page, a table) is not a question
    positive = None
    if name is IntentName.FEEDBACK:
        positive = reading.intent != "complain"
    return Intent(
        name, bounce, feedback_positive=positive, reading=reading, confidence=reading.confidence
    )


_YES_MARKS = ("👍", "✅", "👌", "✔", "☑", "🙂", "😀", "😊", "🎉", "+1")
_NO_MARKS = ("👎", "❌", "✖", "🙁", "😞", "☹", "-1")
_COMMANDS = frozenset(
    {
        IntentName.ESCALATE,
        IntentName.MY_TICKETS,
        IntentName.HELP,
        IntentName.CANCEL,
        IntentName.START_OVER,
    }
)


def recognise_content(data: str | bytes, knowledge: KnowledgeBase | None = None) -> Intent:
    """Say what one message's content is about (text, HTML, Slack markup or a MIME message)."""
    try:
        bounce = read_bounce(data, knowledge)
    except InputRejected as refused:
        return Intent(IntentName.OTHER, rejected=str(refused))
    return Intent(_intent_name(bounce, bounce.text), bounce, feedback_positive=_feedback(bounce))


def _feedback(bounce: Bounce) -> bool | None:
    if bounce.is_bounce:
        return None
    return not _NEGATIVE_FEEDBACK.search(bounce.text[:2000])


def _intent_name(bounce: Bounce, text: str) -> IntentName:
    if bounce.is_bounce:
        return IntentName.BOUNCE_5712 if bounce.in_family else IntentName.BOUNCE_OTHER
    sample = text[:4000]
    if bounce.mentioned_statuses:
        if bounce.in_family:
            return IntentName.QUESTION_5712
        return _command(sample) or IntentName.BOUNCE_OTHER
    if any(pattern.search(sample) for pattern in _TOPIC):
        return IntentName.QUESTION_5712
    return _command(sample) or IntentName.OTHER


def _short(text: str) -> bool:
    return len(text.split()) <= _COMMAND_MAX_WORDS


def _command(text: str) -> IntentName | None:
    if not _short(text):
        matches = [r for r in _RULES if r.intent is IntentName.ESCALATE and _matches(r, text)]
    else:
        matches = [rule for rule in _RULES if _matches(rule, text)]
    return min(matches, key=lambda rule: rule.priority).intent if matches else None


def _matches(rule: _Rule, text: str) -> bool:
    return any(pattern.search(text) for pattern in rule.patterns)
