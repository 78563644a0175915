"""Fake Exchange Online for the Exchange tests: Entra ID's token endpoint and the admin API's
InvokeCommand on 127.0.0.1, over HTTPS with a test CA."""

from tests.fakes_exchange.server import (
    ANCHOR,
    CLIENT_ID,
    CLIENT_SECRET,
    TENANT,
    Call,
    FakeExchange,
    recipient,
)

__all__ = ["ANCHOR", "CLIENT_ID", "CLIENT_SECRET", "TENANT", "Call", "FakeExchange", "recipient"]
