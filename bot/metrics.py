"""Prometheus metrics of one app: turns, intents, finished flows, escalations, errors, latency.

Each app has its own registry (no module-level collectors), so tests build as many as they like.
Label values come from a known set: a channel or intent the bot does not know (a made-up
``channelId`` in local mode) is counted as ``other``, so no request can add series without end.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.turns import TurnOutcome
from dialogs.intent import IntentName
from dialogs.messages import Platform

CONTENT_TYPE = CONTENT_TYPE_LATEST

OTHER: Final = "other"
"""The label of any channel or intent not in the known sets below."""
_CHANNELS: Final = frozenset(Platform)
_INTENTS: Final = frozenset(IntentName) | {"error", "welcome", "file", "repeat"}
"""The dialogs' intents, and what the channels report for a turn that is none of them."""


def channel_label(channel: str) -> str:
    """``channel`` if it is a platform the bot knows, else ``other``."""
    return channel if channel in _CHANNELS else OTHER


def intent_label(intent: str) -> str:
    """``intent`` if it is one the bot knows, else ``other``."""
    return intent if intent in _INTENTS else OTHER


class Metrics:
    """The counters and histograms the bot exports at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.turns = Counter(
            "ndrbot_turns_total",
            "User turns handled, by channel and intent.",
            ["channel", "intent"],
            registry=self.registry,
        )
        self.flows_finished = Counter(
            "ndrbot_flows_finished_total",
            "Conversations that reached their answer (steps or the sender's note).",
            ["channel"],
            registry=self.registry,
        )
        self.escalations = Counter(
            "ndrbot_escalations_total",
            "Tickets opened or joined from a conversation.",
            ["channel"],
            registry=self.registry,
        )
        self.errors = Counter(
            "ndrbot_errors_total",
            "Failures: turns that crashed, requests refused, replies that could not be sent.",
            ["channel", "kind"],
            registry=self.registry,
        )
        self.turn_seconds = Histogram(
            "ndrbot_turn_seconds",
            "Time to handle one user turn, reading the bounce and saving the state included.",
            ["channel"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.outbound_retries = Counter(
            "ndrbot_outbound_retries_total",
            "Calls to a platform API retried after 429 or 5xx.",
            ["channel"],
            registry=self.registry,
        )

    def observe_turn(self, channel: str, outcome: TurnOutcome) -> None:
        """Count one turn and its result; one the database did not let through is an error
        (kind ``database``), not a turn handled."""
        if outcome.unavailable:
            self.unavailable(channel)
            return
        channel = channel_label(channel)
        self.turns.labels(channel, intent_label(outcome.intent)).inc()
        self.turn_seconds.labels(channel).observe(outcome.seconds)
        if outcome.finished:
            self.flows_finished.labels(channel).inc()
        if outcome.escalated:
            self.escalations.labels(channel).inc()
        if outcome.failed:
            self.errors.labels(channel, "turn").inc()

    def unavailable(self, channel: str) -> None:
        """Count a turn that could not be handled because the database did not answer."""
        self.errors.labels(channel_label(channel), "database").inc()

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
