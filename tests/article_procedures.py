"""The procedures of Microsoft's 5.7.12 article, as the UI labels each step must show."""

from __future__ import annotations

# The article's procedures: per step, the UI labels it must show, exactly and in order.
ARTICLE_PROCEDURES: dict[str, tuple[str, str, tuple[str, ...], list[list[str]]]] = {
    "allow_all.user_mailbox.new_eac": (
        "allow_all",
        "new_eac",
        ("user_mailbox",),
        [
            ["Recipients > Mailboxes"],
            [],
            ["Mail flow settings", "Manage mail flow settings"],
            ["Message delivery restriction", "Edit", "Message delivery restrictions"],
            ["Require senders to be authenticated", "Accept messages from"],
            ["Save"],
        ],
    ),
    "allow_all.user_mailbox.classic_eac": (
        "allow_all",
        "classic_eac",
        ("user_mailbox",),
        [
            ["Recipients > Mailboxes"],
            ["Edit"],
            [
                "Mailbox features > Message Delivery Restrictions",
                "View details",
                "message delivery restrictions",
            ],
            ["Require that all senders are authenticated", "Accept messages from"],
            ["OK", "Save"],
        ],
    ),
    "allow_all.groups.new_eac": (
        "allow_all",
        "new_eac",
        ("distribution_group", "security_group", "dynamic_distribution_group"),
        [
            ["Recipients > Groups"],
            [],
            ["Settings"],
            ["Delivery management", "Edit delivery management", "Delivery management"],
            ["Allow messages from people inside and outside my organization"],
            ["Save changes"],
        ],
    ),
    "allow_all.groups.classic_eac": (
        "allow_all",
        "classic_eac",
        ("distribution_group", "security_group", "dynamic_distribution_group"),
        [
            ["Recipients > Groups", "Edit"],
            ["Delivery management"],
            ["Senders inside and outside of my organization"],
            ["Save"],
        ],
    ),
    "allow_all.mail_user.classic_eac": (
        "allow_all",
        "classic_eac",
        ("mail_user",),
        [
            ["Recipients > Contacts"],
            ["Edit"],
            [
                "Mailbox flow settings > Message Delivery Restrictions",
                "View details",
                "Message delivery restrictions",
            ],
            ["Require that all senders are authenticated", "Accept messages from"],
            ["OK", "Save"],
        ],
    ),
    "allow_all.shared_mailbox.new_eac": (
        "allow_all",
        "new_eac",
        ("shared_mailbox",),
        [
            ["Recipients > Mailboxes"],
            [],
            ["Mail flow settings", "Manage mail flow settings"],
            ["Message delivery restriction", "Edit", "message delivery restrictions"],
            ["Require senders to be authenticated", "Accept messages from"],
            ["Save"],
        ],
    ),
    "allow_all.shared_mailbox.classic_eac": (
        "allow_all",
        "classic_eac",
        ("shared_mailbox",),
        [
            ["Recipients > Mailboxes"],
            ["Edit"],
            [
                "Mailbox features > Message Delivery Restrictions",
                "View details",
                "Message delivery restrictions",
            ],
            ["Require that all senders are authenticated", "Accept messages from"],
            ["OK", "Save"],
        ],
    ),
    "allowed_senders.user_mailbox.new_eac": (
        "allowed_senders",
        "new_eac",
        ("user_mailbox",),
        [
            ["Recipients > Mailboxes"],
            [],
            ["Mail flow settings", "Manage mail flow settings"],
            ["Message delivery restriction", "Edit", "Message delivery restrictions"],
            [
                "Accept messages from",
                "Require senders to be authenticated",
                "Selected senders",
                "+ Add sender",
                "Accept messages from",
                "all internal users",
                "all internal users",
            ],
            ["Confirm"],
            ["Save"],
        ],
    ),
    "allowed_senders.user_mailbox.classic_eac": (
        "allowed_senders",
        "classic_eac",
        ("user_mailbox",),
        [
            ["Recipients > Mailboxes"],
            ["Edit"],
            [
                "Mailbox features > Message Delivery Restrictions",
                "View details",
                "message delivery restrictions",
            ],
            [
                "Accept messages from",
                "Require that all senders are authenticated",
                "Only senders in the following list",
                "Add",
                "Select Members",
                "all internal users",
                "all internal users",
                "OK",
            ],
            ["OK", "Save"],
        ],
    ),
}
