"""The knowledge base: loads and checks the YAML files in ``knowledge/data`` and answers lookups.

Nothing is read at import time; call :func:`load_knowledge` or :func:`default_knowledge`.

The rooms, each read in one sitting: :mod:`~knowledge.kb.vocabulary` (the ids, conditions and
placeholders every file speaks), :mod:`~knowledge.kb.models` (one model per data file),
:mod:`~knowledge.kb.conversation` (the bot's own words, and how a part checks the texts it
needs), :mod:`~knowledge.kb.knowledge_base` (the lookups), :mod:`~knowledge.kb.loader` (reading
the files) and :mod:`~knowledge.kb.checks` (what only several files together can tell), with
:mod:`~knowledge.kb.files` naming the files for both. This module names the public API: every
public name of the single module this package was, so code and pickles that name them still find
them here.
"""

from __future__ import annotations

from knowledge.kb.conversation import (
    CONVERSATION_CHOICES,
    CONVERSATION_TEXTS,
    ChoiceText,
    ConversationText,
    FamilyText,
)
from knowledge.kb.files import DATA_DIR, FILES, KnowledgeError
from knowledge.kb.knowledge_base import KnowledgeBase
from knowledge.kb.loader import default_knowledge, load_knowledge
from knowledge.kb.models import (
    AdminNote,
    Centre,
    CodeEntry,
    FamilyCode,
    HelpText,
    Hint,
    Lookalike,
    Method,
    Note,
    OwnOrganization,
    PowerShellCmdlets,
    Procedure,
    RecipientType,
    SenderGuidance,
    Source,
    SourcedText,
    Status,
    Step,
    Text,
    Topic,
)
from knowledge.kb.vocabulary import (
    CENTRE_IDS,
    FAMILIES,
    HINT_SLOTS,
    METHOD_IDS,
    PROCEDURE_PLACEHOLDERS,
    RECIPIENT_TYPE_IDS,
    SENDER_PLACEHOLDERS,
    STEP_FLAGS,
    TOPIC_IDS,
    TOPIC_PLACEHOLDERS,
    CentreId,
    Confidence,
    Family,
    HintSlot,
    MethodId,
    Placement,
    RecipientTypeId,
    StepFlag,
    TopicId,
    fill_placeholders,
    parse_status,
    placeholders_in,
)

__all__ = [
    "CENTRE_IDS",
    "CONVERSATION_CHOICES",
    "CONVERSATION_TEXTS",
    "DATA_DIR",
    "FAMILIES",
    "FILES",
    "HINT_SLOTS",
    "METHOD_IDS",
    "PROCEDURE_PLACEHOLDERS",
    "RECIPIENT_TYPE_IDS",
    "SENDER_PLACEHOLDERS",
    "STEP_FLAGS",
    "TOPIC_IDS",
    "TOPIC_PLACEHOLDERS",
    "AdminNote",
    "Centre",
    "CentreId",
    "ChoiceText",
    "CodeEntry",
    "Confidence",
    "ConversationText",
    "Family",
    "FamilyCode",
    "FamilyText",
    "HelpText",
    "Hint",
    "HintSlot",
    "KnowledgeBase",
    "KnowledgeError",
    "Lookalike",
    "Method",
    "MethodId",
    "Note",
    "OwnOrganization",
    "Placement",
    "PowerShellCmdlets",
    "Procedure",
    "RecipientType",
    "RecipientTypeId",
    "SenderGuidance",
    "Source",
    "SourcedText",
    "Status",
    "Step",
    "StepFlag",
    "Text",
    "Topic",
    "TopicId",
    "default_knowledge",
    "fill_placeholders",
    "load_knowledge",
    "parse_status",
    "placeholders_in",
]
