"""Addresses and domains in people's words, and whose they are: after "from", "the sender is"
or "whitelist", the outside sender's; else the recipient's ("bounced back from x@" too).

Read by rules on the few words just before an address, listed here in every language; the
classifier and the gazetteer never see an address but as one "@address" token.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dialogs.reading import SlotValue
from dialogs.understanding.tokens import Token

_FROM_WORDS = frozenset({"from", "de", "von", "da", "van", "desde", "fra"})
# "the sender is x@", "partner x@": the outside sender; "bounced back from x@": the recipient.
_SENDER_WORDS = frozenset(
    {
        "sender",
        "expediteur",
        "absender",
        "remitente",
        "mittente",
        "afzender",
        "remetente",
        "partner",
        "vendor",
        "supplier",
        "fournisseur",
        "fornitore",
        "leverancier",
        "fornecedor",
        "proveedor",
        "lieferant",
    }
)
_LET_IN_WORDS = frozenset(
    [
        "whitelist",
        "allowlist",
        "allow",
        "add",
        "let",
        "permit",
        "authorise",
        "authorize",
        "approve",
        "autoriser",
        "ajouter",
        "erlauben",
        "zulassen",
        "freigeben",
        "hinzufugen",
        "permitir",
        "anadir",
        "agregar",
        "liberar",
        "adicionar",
        "consentire",
        "aggiungere",
        "autorizzare",
        "toestaan",
        "toevoegen",
        "whitelisten",
    ]
)
_TOWARDS_WORDS = frozenset(
    [
        "to",
        "for",
        "on",
        "into",
        "onto",
        "a",
        "au",
        "aux",
        "an",
        "auf",
        "zu",
        "para",
        "per",
        "voor",
        "naar",
    ]
)
_BOUNCE_WORDS = frozenset(
    {
        "back",
        "bounced",
        "bounce",
        "undeliverable",
        "ndr",
        "returned",
        "rejected",
        "came",
        "retour",
        "zuruck",
        "devuelto",
        "rebotado",
        "tornato",
        "terug",
        "voltou",
        "devolvido",
    }
)
_NOT_A_DOMAIN = re.compile(
    r"(?:^|\.)(?:microsoft\.com|office365\.com|office\.com|outlook\.com|onmicrosoft\.com)$"
    r"|^\d+(?:\.\d+)+$|^[a-z]?\d+\.\d"
)


def address_slots(tokens: Sequence[Token]) -> list[SlotValue]:
    """Addresses (or parts of one) and domains: after "from" the sender's, else the recipient's."""
    found: list[SlotValue] = []
    for index, token in enumerate(tokens):
        if token.kind == "address":
            before = {t.key for t in tokens[max(0, index - 3) : index]}
            just_before = tokens[index - 1].key if index else ""
            from_word = just_before in _FROM_WORDS and not before & _BOUNCE_WORDS
            # "whitelist vendor@x", "add bob@y": the one let in; "allow mail to sales@": not.
            let_in = bool(before & _LET_IN_WORDS) and just_before not in _TOWARDS_WORDS
            slot = "sender" if before & _SENDER_WORDS or from_word or let_in else "recipient"
            found.append(SlotValue(slot, token.text.lower(), token.text))
        elif token.kind == "domain" and not _NOT_A_DOMAIN.search(token.key):
            found.append(SlotValue("domain", token.text.lower(), token.text))
    return found
