"""The bot's own words (conversation.yaml): the texts the dialogs need, checked at load, and
the way every other part checks the texts it needs.

The dialogs' texts and choice sets are listed here (:data:`CONVERSATION_TEXTS`,
:data:`CONVERSATION_CHOICES`) because the dialogs live next door and say nothing of their own.
The Teams and Slack texts are not: each renderer or channel declares the texts it looks up
(a ``TEXTS`` constant) and the running bot asks :meth:`ConversationText.require` for them at
start, so a missing one still stops the bot before the first message.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import model_validator

from knowledge.kb.files import FILES, KnowledgeError
from knowledge.kb.models import Model, Text
from knowledge.kb.vocabulary import FAMILIES, Family, fill_placeholders

#: The texts the dialogs (and the tickets, and the home tab) say; conversation.yaml must define
#: each of them. The Teams and Slack texts are declared by the modules that use them.
CONVERSATION_TEXTS: frozenset[str] = frozenset(
    {
        "ask_role",
        "role_remembered_sender",
        "role_remembered_admin",
        "ask_recipient_address",
        "ask_recipient_type",
        "ask_recipient_type_narrow",
        "code_tells_type",
        "ask_method",
        "ask_centre",
        "mail_user_classic_only",
        "centre_not_available",
        "only_centre",
        "only_centre_ruled_out",
        "steps_intro",
        "ask_fixed",
        "directory_found",
        "directory_found_other",
        "directory_requires_authentication",
        "directory_accepts_outside",
        "directory_accept_list",
        "directory_list_code",
        "directory_not_the_setting",
        "directory_unknown",
        "directory_denied",
        "directory_unavailable",
        "directory_detail",
        "apply_plan_title",
        "apply_plan_intro",
        "apply_plan_step",
        "apply_plan_warnings",
        "ask_apply_confirm",
        "apply_cancelled",
        "apply_not_allowed",
        "apply_cannot_plan",
        "apply_unknown",
        "apply_denied",
        "apply_unavailable",
        "apply_done",
        "apply_not_shown",
        "apply_row",
        "setting_require_authentication",
        "setting_accept_only_from",
        "setting_accept_only_from_senders_or_members",
        "setting_on",
        "setting_off",
        "setting_nobody",
        "setting_unread",
        "fixed_yes",
        "fixed_no",
        "sender_own_domain",
        "sender_unknown_recipient",
        "sender_done",
        "reask",
        "reask_again",
        "cancelled",
        "nothing_to_cancel",
        "started_over",
        "new_bounce",
        "feedback_thanks",
        "feedback_sorry",
        "fallback",
        "other_code",
        "other_code_unknown",
        "family_intro",
        "related_code",
        "noted",
        "noted_not",
        "changed",
        "type_conflicts_code",
        "related_code_list_only",
        "bounce_names_type",
        "did_you_mean",
        "confirm_cancel",
        "confirm_start_over",
        "confirm_escalate",
        "confirm_go_back",
        "already_noted",
        "going_back",
        "nothing_to_go_back",
        "dont_know_generic",
        "ask_target_type",
        "steps_each_recipient",
        "several_recipients",
        "before_you_start",
        "facts_recipient",
        "facts_about",
        "facts_sender",
        "facts_status",
        "facts_subject",
        "facts_date",
        "facts_type",
        "facts_notes",
        "facts_check",
        "facts_source",
        "sender_note_heading",
        "turn_error",
        "turn_unavailable",
        "file_refused",
        "escalate_ask_note",
        "escalate_ask_about",
        "my_ticket_line_about",
        "escalate_opened",
        "escalate_joined",
        "escalate_cancelled",
        "escalate_failed",
        "escalate_unavailable",
        "ticket_assigned",
        "ticket_reply",
        "ticket_resolved",
        "ticket_reopened",
        "ticket_ask_fixed",
        "ticket_fixed_yes",
        "ticket_reopen_failed",
        "ticket_note_took",
        "ticket_note_assigned",
        "ticket_note_replied",
        "ticket_note_resolved",
        "ticket_note_reopened",
        "ticket_note_requester_reopened",
        "ticket_note_joined",
        "ticket_reminder",
        "ticket_done_took",
        "ticket_done_assigned",
        "ticket_done_replied",
        "ticket_done_resolved",
        "ticket_done_reopened",
        "ticket_done_on_current",
        "ticket_refused_not_admin",
        "ticket_refused_unknown",
        "ticket_refused_yours",
        "ticket_refused_assigned",
        "ticket_refused_resolved",
        "ticket_refused_not_resolved",
        "ticket_refused_no_assignee",
        "ticket_refused_no_text",
        "ticket_refused_no_note",
        "ticket_refused_busy",
        "ticket_refused_duplicate",
        "escalate_ask_note_fix",
        "escalate_fix_opened",
        "escalate_fix_joined",
        "ticket_fix_change_allow_all",
        "ticket_fix_change_allowed_senders",
        "ticket_fix_the_sender",
        "ticket_card_fix_asked",
        "ticket_card_fix_approving",
        "ticket_card_fix_failed",
        "ticket_card_fix_applied",
        "ticket_note_fix_asked",
        "ticket_note_fix_approved",
        "ticket_note_fix_applied",
        "ticket_note_fix_failed",
        "ticket_done_fix_applied",
        "ticket_done_fix_failed",
        "ticket_fix_resolution",
        "ticket_fix_setting_inside",
        "ticket_fix_setting_open",
        "ticket_fix_setting_listed",
        "ticket_fix_setting_unknown",
        "ticket_fix_problem_unknown",
        "ticket_fix_problem_denied",
        "ticket_fix_problem_unavailable",
        "ticket_fix_problem_not_applied",
        "ticket_fix_problem_said",
        "ticket_refused_no_fix",
        "ticket_refused_fix_done",
        "ticket_refused_fix_stale",
        "ticket_refused_fix_busy",
        "ticket_refused_no_directory",
        "admins_registered",
        "admins_moved",
        "admins_already",
        "admins_refused",
        "admins_refused_not_listed",
        "admins_refused_code",
        "tenant_refused",
        "my_tickets_heading",
        "my_ticket_line",
        "my_tickets_none",
        "file_too_large",
        "file_download_failed",
        "button_choose",
        "button_help",
        "note_subject_label",
        "clicked_choice",
        "answer_in_dm",
        "home_title",
        "home_how_to",
        "home_tickets_title",
        "home_no_tickets",
        "home_more_tickets",
        "ticket_role_sender",
        "ticket_role_admin",
    }
)
#: The choice sets the dialogs offer, with the values each must have.
CONVERSATION_CHOICES: dict[str, frozenset[str]] = {
    "role": frozenset({"sender", "admin"}),
    "fixed": frozenset({"yes", "no", "escalate"}),
    "fixed_apply": frozenset({"apply"}),
    "setting_fine": frozenset({"escalate", "steps"}),
    "apply_confirm": frozenset({"yes", "no"}),
    "after_failure": frozenset({"other_method", "escalate", "start_over"}),
    "sender_own_domain": frozenset({"escalate", "no"}),
    "escalate_note": frozenset({"no_note", "cancel"}),
    "ask_fix": frozenset({"ask_fix"}),
    "ticket_fixed": frozenset({"yes", "no"}),
    "confirm": frozenset({"yes", "no"}),
    "stuck": frozenset({"escalate"}),
}


class ChoiceText(Model):
    """One answer the bot offers, with the words that choose it."""

    value: Text
    label: Text
    synonyms: tuple[Text, ...] = ()
    mentions: tuple[Text, ...] = ()


class FamilyText(Model):
    """How the bot names a coarse recipient type: as a label, and in a sentence."""

    label: Text
    description: Text


class ConversationText(Model):
    """The bot's own questions, replies and choices."""

    texts: dict[str, Text]
    families: dict[Family, FamilyText]
    choices: dict[str, tuple[ChoiceText, ...]]

    @model_validator(mode="after")
    def _complete(self) -> ConversationText:
        missing = sorted(CONVERSATION_TEXTS - self.texts.keys())
        if missing:
            raise ValueError(f"texts: missing {missing}")
        missing = sorted(set(FAMILIES) - self.families.keys())
        if missing:
            raise ValueError(f"families: missing {missing}")
        for name, values in CONVERSATION_CHOICES.items():
            have = {choice.value for choice in self.choices.get(name, ())}
            if have != values:
                raise ValueError(
                    f"choices.{name}: values must be {sorted(values)}, not {sorted(have)}"
                )
        return self

    def require(self, keys: Iterable[str], who: str) -> None:
        """Check that every text in ``keys`` is defined, for ``who`` (a module that declares the
        texts it looks up); raise :class:`KnowledgeError` naming the missing ones and who needs
        them. The running bot calls this at start for each platform's declaration."""
        missing = sorted(set(keys) - self.texts.keys())
        if missing:
            raise KnowledgeError(
                f"{FILES['conversation']}: texts: missing {missing}, needed by {who}"
            )

    def family(self, family: str) -> FamilyText:
        """How to name a coarse recipient type, as a label and in a sentence."""
        found = next((text for key, text in self.families.items() if key == family), None)
        return found or FamilyText(label=family, description=family)

    def text(self, key: str, **values: str) -> str:
        """The text ``key`` with its placeholders filled in."""
        return fill_placeholders(self.texts[key], values)
