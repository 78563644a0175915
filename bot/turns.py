"""The thin bot: one turn is load state, run the dialogs, save state. Every channel calls this.

State is saved with its version: when two turns of one conversation race (two processes behind a
load balancer, a double click), the later save fails, and that turn is run again on the newer
state. A failure inside the dialogs is logged with the turn id, the user is told, and the state
is left as it was, so the conversation can go on. A database that stalls or is gone (the store's
timeouts end the wait in seconds) is not a bug: the turn is logged once at WARNING, without the
SQL or its parameters, the user is asked to try again in a moment, and the outcome says
``unavailable`` so that the channel counts it as an error, not as a turn handled. The keys a
conversation's state and a person's profile are kept by (``conversation_key``, ``user_key``)
are written here too.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from bot.logs import turn_context
from bot.store import StaleState, Store, failure_reason, unavailable
from dialogs.conversation import TurnResult, error_reply, handle_turn, unavailable_reply
from dialogs.messages import Message
from dialogs.replies import Reply
from dialogs.turn import DialogContext

log = logging.getLogger(__name__)

_SAVE_ATTEMPTS = 3


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

    async def _run(self, message: Message) -> TurnResult:
        key, who = conversation_key(message), user_key(message)
        for attempt in range(1, _SAVE_ATTEMPTS + 1):
            saved = await self.store.conversations.load_state(key)
            profile = await self.store.conversations.load_profile(who)
            result = await handle_turn(saved.state or None, profile, message, self.context)
            try:
                await self.store.conversations.save_state(key, result.state, saved.version)
            except StaleState:
                if result.escalated:
                    # The ticket is open; the other turn's state stands. Tell the user anyway.
                    log.warning("conversation changed meanwhile; kept the other turn's state")
                    return result
                if attempt == _SAVE_ATTEMPTS:
                    raise
                log.info("conversation changed meanwhile; running the turn again")
                continue
            if result.profile != profile:
                await self.store.conversations.save_profile(who, result.profile)
            return result
        raise AssertionError("unreachable")  # pragma: no cover
