"""The terminal channel: ``python -m bot chat``.

On a terminal it prompts; with piped input each line is one user turn and every reply is
printed, so a script can hold a whole conversation. Lines that start with a slash are commands
of the terminal itself: ``/file PATH`` sends a file, ``/click VALUE`` presses a button of the last
question (by value, number or label), ``/paste`` ... ``/end`` sends several lines as one message.
"""

from __future__ import annotations

import asyncio
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot.conversation import Conversations
from bot.render.text import render_all
from dialogs.messages import Attachment, Message
from dialogs.replies import Question, Reply
from knowledge.ndr import InputRejected, read_limited

CHANNEL = "console"
_ANSI_BOLD = ("\033[1m", "\033[0m")
CONSOLE_HELP = """\
Type a message and press Enter. Terminal commands:
  /paste          send several lines (a whole bounce) as one message; finish with /end
  /file PATH      send a file (a bounce as .eml, .txt or .html)
  /click VALUE    press a button of the last question (its value, number or label)
  /quit           leave (Ctrl-D works too)
Say "help" to hear what the bot itself can do."""


@dataclass
class ConsoleChannel:
    """Reads user turns from ``stdin`` and writes the bot's replies to ``stdout``."""

    conversations: Conversations
    stdin: TextIO
    stdout: TextIO
    user_id: str = "local-user"
    user_name: str = ""
    conversation_id: str = "console"
    interactive: bool = False
    last_question: Question | None = None

    async def run(self) -> int:
        """Hold the conversation until the input ends or the user quits."""
        if self.interactive:
            self._write(CONSOLE_HELP + "\n")
        while True:
            line = await self._read_line("you> ")
            if line is None:
                return 0
            line = line.rstrip("\r\n")
            command, _, argument = line.strip().partition(" ")
            if not line.strip():
                continue
            if command in ("/quit", "/exit"):
                return 0
            if command == "/help":
                self._write(CONSOLE_HELP + "\n")
                continue
            message = await self._message(command, argument.strip(), line)
            if message is not None:
                outcome = await self.conversations.handle(message)
                self._show(outcome.replies)

    async def _message(self, command: str, argument: str, line: str) -> Message | None:
        if command == "/file":
            return self._file_message(argument)
        if command == "/click":
            return self._click_message(argument)
        if command == "/paste":
            lines = []
            while (more := await self._read_line("... ")) is not None:
                if more.strip() == "/end":
                    break
                lines.append(more.rstrip("\r\n"))
            return self._new_message(text="\n".join(lines))
        return self._new_message(text=line)

    def _file_message(self, argument: str) -> Message | None:
        if not argument:
            self._write("Usage: /file PATH\n\n")
            return None
        path = Path(argument).expanduser()
        try:
            with path.open("rb") as handle:
                content = read_limited(handle)
        except InputRejected as refused:
            self._write(f"{refused}\n\n")
            return None
        except OSError as error:
            self._write(f"Can't read {argument}: {error.strerror or error}\n\n")
            return None
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return self._new_message(files=(Attachment(path.name, content, content_type),))

    def _click_message(self, argument: str) -> Message | None:
        question = self.last_question
        if question is None or not question.choices:
            # No button is known here (say, after a restart): send the value as an answer.
            return self._new_message(text=argument) if argument else None
        wanted = argument.strip().casefold()
        for number, choice in enumerate(question.choices, 1):
            if wanted in (choice.value.casefold(), choice.label.casefold(), str(number)):
                return self._new_message(
                    text=choice.label, value={"slot": question.slot, "answer": choice.value}
                )
        buttons = ", ".join(f"{n}. {c.label}" for n, c in enumerate(question.choices, 1))
        self._write(f"No button {argument!r} on the last question. The buttons are: {buttons}\n\n")
        return None

    def _new_message(
        self,
        *,
        text: str = "",
        files: tuple[Attachment, ...] = (),
        value: dict[str, str] | None = None,
    ) -> Message:
        return Message(
            text=text,
            files=files,
            user_id=self.user_id,
            user_name=self.user_name or self.user_id,
            conversation_id=self.conversation_id,
            channel=CHANNEL,
            value=dict(value) if value else None,
        )

    def _show(self, replies: tuple[Reply, ...]) -> None:
        questions = [reply for reply in replies if isinstance(reply, Question)]
        if questions:
            self.last_question = questions[-1]
        bold = _ANSI_BOLD if self.interactive else ("", "")
        self._write(render_all(replies, bold=bold) + "\n\n")

    async def _read_line(self, prompt: str) -> str | None:
        if self.interactive:
            self._write(prompt)
        line = await asyncio.to_thread(self.stdin.readline)
        return line or None

    def _write(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()
