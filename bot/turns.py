"""The thin bot: one turn is load state, run the dialogs, save state. Every channel calls this.

A turn reads its conversation's row, which brings along the profile of the person whose turn
was saved last (a second read, in the same transaction, only when that was someone else), and
saves the state, who spoke, and the profile when the turn changed it, in one transaction.

State is saved with its version: when two turns of one conversation race (two processes behind a
load balancer, a double click), the later save fails, and that turn is run again on the newer
state. A failure inside the dialogs is logged with the turn id, the user is told, and the state
is left as it was, so the conversation can go on. A database that stalls or is gone (the store's
timeouts end the wait in seconds) is not a bug: the turn is logged once at WARNING, without the
SQL or its parameters, the user is asked to try again in a moment, and the outcome says
``unavailable`` so that the channel counts it as an error, not as a turn handled. The keys a
conversation's state and a person's profile are kept by (``conversation_key``, ``user_key``)
are written here too.

A message that names its platform delivery (``Message.delivery``: a Slack event the inbox kept)
may be worked on again when the process working on it died after its turn was saved and before
the delivery was marked done. The saved state then already holds that turn, so running the
dialogs on it would answer a different question (a repeated "escalate" instead of the ticket's
number). The ids of the last few deliveries applied, and the replies of the last, are saved in
the same write as the state (``applied``): a delivery found there is answered with its saved
replies and the dialogs are not run again.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from bot.logs import turn_context
from bot.store import Saved, StaleState, Store, failure_reason, unavailable
from dialogs.conversation import TurnResult, error_reply, handle_turn, unavailable_reply
from dialogs.messages import Message
from dialogs.replies import Reply, replies_data, replies_of
from dialogs.turn import DialogContext

log = logging.getLogger(__name__)

_SAVE_ATTEMPTS = 3
APPLIED_KEPT = 5
"""How many deliveries' ids a conversation remembers as applied (the replies: the last one's)."""


def conversation_key(message: Message) -> str:
    """Where a conversation's state is kept: the channel and the platform's conversation id."""
    return f"{message.platform}:{message.conversation_id}"


def user_key(message: Message) -> str:
    """Who is talking, across conversations: the channel and the platform's user id."""
    return f"{message.platform}:{message.user_id}"


@dataclass(frozen=True)
class TurnOutcome:
    """What a channel needs after a turn: the replies, and figures for metrics and logs."""

    turn_id: str
    replies: tuple[Reply, ...]
    intent: str
    finished: bool = False
    escalated: bool = False
    failed: bool = False
    unavailable: bool = False  # the database did not answer: nothing was done
    seconds: float = 0.0
    repeated: bool = False  # its delivery was applied before: these are that turn's replies


def log_unavailable(error: BaseException) -> None:
    """The one line a turn that met a stalled or missing database logs (in the turn's context):
    the driver's reason, no SQL, no parameters, no traceback."""
    log.warning(
        "turn not handled: the database is unavailable", extra={"reason": failure_reason(error)}
    )


class Turns:
    """Runs turns against the store. One instance serves every channel of a process."""

    def __init__(self, store: Store, context: DialogContext) -> None:
        self.store = store
        self.context = context

    async def handle(self, message: Message) -> TurnOutcome:
        """Run one user turn and return the replies to send."""
        turn_id = uuid.uuid4().hex[:12]
        token = turn_context.set({"turn_id": turn_id, "channel": message.platform})
        started = time.perf_counter()
        try:
            result = await self._run(message)
        except Exception as error:
            if unavailable(error):
                log_unavailable(error)
                return TurnOutcome(
                    turn_id,
                    (unavailable_reply(self.context),),
                    intent="error",
                    failed=True,
                    unavailable=True,
                    seconds=time.perf_counter() - started,
                )
            log.exception("turn failed")
            return TurnOutcome(
                turn_id,
                (error_reply(self.context),),
                intent="error",
                failed=True,
                seconds=time.perf_counter() - started,
            )
        finally:
            turn_context.reset(token)
        seconds = time.perf_counter() - started
        if isinstance(result, tuple):  # its delivery's turn was saved before: its replies
            return TurnOutcome(turn_id, result, intent="repeat", repeated=True, seconds=seconds)
        context = {"turn_id": turn_id, "channel": message.platform, "intent": result.intent.value}
        log.info(
            "turn handled",
            extra={**context, "replies": len(result.replies), "ms": round(seconds * 1000, 1)},
        )
        log.debug("turn text", extra={**context, "text": message.text[:2000]})
        return TurnOutcome(
            turn_id,
            result.replies,
            intent=result.intent.value,
            finished=result.finished,
            escalated=result.escalated,
            seconds=seconds,
        )

    def unavailable_reply(self) -> Reply:
        """The try-again text, for a channel whose own database call failed before a turn."""
        return unavailable_reply(self.context)

    async def _run(self, message: Message) -> TurnResult | tuple[Reply, ...]:
        """The turn's result; or, when its delivery was applied before, that turn's replies."""
        key, who = conversation_key(message), user_key(message)
        for attempt in range(1, _SAVE_ATTEMPTS + 1):
            saved, profile = await self.store.conversations.load_turn(key, who)
            repeat = _repeated(saved, message)
            if repeat is not None:
                return repeat
            result = await handle_turn(saved.state or None, profile, message, self.context)
            try:
                await self.store.conversations.save_turn(
                    key,
                    result.state,
                    saved.version,
                    applied=_applied(saved, message, result),
                    user_key=who,
                    profile=result.profile if result.profile != profile else None,
                )
            except StaleState:
                if result.escalated:
                    # The ticket is open; the other turn's state stands. Tell the user anyway.
                    log.warning("conversation changed meanwhile; kept the other turn's state")
                    return result
                if attempt == _SAVE_ATTEMPTS:
                    raise
                log.info("conversation changed meanwhile; running the turn again")
                continue
            return result
        raise AssertionError("unreachable")  # pragma: no cover


def _repeated(saved: Saved, message: Message) -> tuple[Reply, ...] | None:
    """The replies of the turn saved before for ``message.delivery``; None when there was none
    (or the message names no delivery). A delivery older than the conversation's last has its
    replies forgotten: nothing is said again (its turn was followed by others)."""
    if not message.delivery:
        return None
    applied = saved.applied or {}
    if message.delivery not in applied.get("deliveries", ()):
        return None
    replies: tuple[Reply, ...] = ()
    if applied.get("last") == message.delivery:
        try:
            replies = replies_of(applied.get("replies", ()))
        except ValueError:
            log.warning("the replies saved for a delivery could not be read")
    log.warning(
        "a delivery worked on again whose turn was saved: its replies again, the dialogs not "
        "run again",
        extra={"replies": len(replies)},
    )
    return replies


def _applied(saved: Saved, message: Message, result: TurnResult) -> dict[str, Any] | None:
    """What the row remembers once this turn is saved: its delivery among the last few, and
    its replies; None (left as it is) for a message that names no delivery."""
    if not message.delivery:
        return None
    earlier = [d for d in (saved.applied or {}).get("deliveries", ()) if d != message.delivery]
    return {
        "deliveries": [*earlier[-(APPLIED_KEPT - 1) :], message.delivery],
        "last": message.delivery,
        "replies": replies_data(result.replies),
    }
