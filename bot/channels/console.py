"""The terminal channel: ``python -m bot chat``.

On a terminal it prompts with prompt_toolkit (:class:`TerminalPrompt`): line editing, and a paste
of many lines (the terminal's bracketed paste) arrives as one message, shown on the prompt line as
``[pasted 82 lines]``. With piped input each line is one user turn and every reply is printed, so
a script can hold a whole conversation. Lines that start with a slash are commands of the terminal
itself: ``/file PATH`` sends a file, ``/click VALUE`` presses a button of the last question (by
value, number or label), ``/paste`` ... ``/end`` sends several lines as one message.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from bot.render.text import render_all
from bot.turns import Turns
from dialogs.messages import Attachment, Message, Platform
from dialogs.replies import Question, Reply
from knowledge.ndr import InputRejected, read_limited

if TYPE_CHECKING:
    from prompt_toolkit.input import Input
    from prompt_toolkit.key_binding import KeyPressEvent
    from prompt_toolkit.output import Output

_ANSI_BOLD = ("\033[1m", "\033[0m")
CONSOLE_HELP = """\
Type a message and press Enter. A whole bounce pasted goes as one message: the line shows
[pasted 82 lines] (Backspace removes it) and Enter sends it. Terminal commands:
  /paste          send the lines that follow as one message; finish with /end
  /file PATH      send a file (a bounce as .eml, .txt or .html)
  /click VALUE    press a button of the last question (its value, number or label)
  /quit           leave (Ctrl-D works too; Ctrl-C clears the line, or leaves on an empty one)
Say "help" to hear what the bot itself can do."""


class LineReader(Protocol):
    """Where an interactive channel reads its lines from; ``None`` when the input ends."""

    async def read(self, prompt: str) -> str | None: ...


class TerminalPrompt:
    """Reads lines on a terminal with prompt_toolkit, the asyncio loop running meanwhile.

    prompt_toolkit asks the terminal for bracketed paste, so a paste arrives as one event
    (``Keys.BracketedPaste``) instead of keystrokes with an Enter after every line. A paste of one
    line goes into the line as it is. A paste of several lines goes in as a placeholder,
    ``[pasted 82 lines]`` (``#2``, ``#3`` for a second paste of the same length), so the line
    stays one line (the prompt is not multiline: Enter sends) and the screen stays readable; when
    the line is sent the placeholder is replaced by the pasted text, newlines and all. Backspace
    right after a placeholder removes all of it. Ctrl-C clears a line with text and leaves on an
    empty one; Ctrl-D on an empty line leaves.
    """

    def __init__(
        self, *, terminal_input: Input | None = None, terminal_output: Output | None = None
    ) -> None:
        """Without ``terminal_input`` and ``terminal_output``: prompt_toolkit's stdin and stdout."""
        # Imported here: piped input, which scripts use, starts without prompt_toolkit.
        from prompt_toolkit import PromptSession  # noqa: PLC0415
        from prompt_toolkit.filters import Condition  # noqa: PLC0415
        from prompt_toolkit.key_binding import KeyBindings  # noqa: PLC0415
        from prompt_toolkit.keys import Keys  # noqa: PLC0415
        from prompt_toolkit.output import create_output  # noqa: PLC0415

        if terminal_output is None:
            terminal_output = create_output()
            # No cursor position requests: this prompt has no menus that need the room below the
            # cursor, and a terminal that doesn't answer them gets a warning printed after 2 s.
            if hasattr(terminal_output, "enable_cpr"):
                terminal_output.enable_cpr = False

        self._pastes: dict[str, str] = {}  # placeholder -> pasted text, for the whole session
        bindings = KeyBindings()

        @bindings.add(Keys.BracketedPaste)
        def _paste(event: KeyPressEvent) -> None:
            event.current_buffer.insert_text(self._hold(event.data))

        @Condition
        def _after_placeholder() -> bool:
            return self._placeholder_before_cursor() is not None

        @bindings.add("backspace", filter=_after_placeholder)
        def _remove_paste(event: KeyPressEvent) -> None:
            placeholder = self._placeholder_before_cursor()
            if placeholder is not None:
                event.current_buffer.delete_before_cursor(len(placeholder))

        @bindings.add("c-c")
        def _interrupt(event: KeyPressEvent) -> None:
            if event.current_buffer.text:
                event.current_buffer.reset()
            else:
                event.app.exit(exception=EOFError, style="class:exiting")

        self._session: PromptSession[str] = PromptSession(
            multiline=False,
            key_bindings=bindings,
            input=terminal_input,
            output=terminal_output,
        )

    async def read(self, prompt: str) -> str | None:
        try:
            line = await self._session.prompt_async(prompt)
        except (EOFError, KeyboardInterrupt):
            return None
        return self.expand(line)

    def expand(self, line: str) -> str:
        """The line with every placeholder replaced by what was pasted."""
        if not self._pastes:
            return line
        labels = sorted(self._pastes, key=len, reverse=True)
        pattern = "|".join(re.escape(label) for label in labels)
        return re.sub(pattern, lambda match: self._pastes[match.group()], line)

    def _hold(self, data: str) -> str:
        """What a paste puts into the line: itself if one line, else a new placeholder."""
        # Some terminals paste \r\n or \r line endings.
        text = data.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
        if "\n" not in text:
            return text
        count = text.count("\n") + 1
        placeholder, number = f"[pasted {count} lines]", 1
        while placeholder in self._pastes:
            number += 1
            placeholder = f"[pasted {count} lines #{number}]"
        self._pastes[placeholder] = text
        return placeholder

    def _placeholder_before_cursor(self) -> str | None:
        before = self._session.default_buffer.document.text_before_cursor
        return next((label for label in self._pastes if before.endswith(label)), None)


def terminal_prompt() -> TerminalPrompt | None:
    """The prompt for a terminal; ``None`` on a dumb one (``TERM=dumb``, Emacs' shell), which
    gets plain lines: it can't draw an editable line, nor paste in brackets."""
    if os.environ.get("TERM", "").lower() in ("dumb", "unknown"):
        return None
    return TerminalPrompt()


@dataclass
class ConsoleChannel:
    """Reads user turns from ``stdin`` and writes the bot's replies to ``stdout``."""

    turns: Turns
    stdin: TextIO
    stdout: TextIO
    user_id: str = "local-user"
    user_name: str = ""
    conversation_id: str = "console"
    interactive: bool = False
    reader: LineReader | None = None  # reads the lines when interactive (see terminal_prompt)
    echo: bool = False  # piped input: print each line read before the answer, as a transcript
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
                outcome = await self.turns.handle(message)
                self._show(outcome.replies)

    async def _message(self, command: str, argument: str, line: str) -> Message | None:
        if command == "/file":
            return self._file_message(argument)
        if command == "/click":
            return self._click_message(argument)
        if command == "/paste":
            lines: list[str] = []
            while (more := await self._read_line("... ")) is not None:
                # A line typed, or (on a terminal) a paste of several lines: after /end, dropped.
                pieces = more.rstrip("\r\n").split("\n")
                ends = [number for number, piece in enumerate(pieces) if piece.strip() == "/end"]
                lines.extend(pieces[: ends[0]] if ends else pieces)
                if ends:
                    break
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
            platform=Platform.CONSOLE,
            value=dict(value) if value else None,
        )

    def _show(self, replies: tuple[Reply, ...]) -> None:
        questions = [reply for reply in replies if isinstance(reply, Question)]
        if questions:
            self.last_question = questions[-1]
        bold = _ANSI_BOLD if self.interactive else ("", "")
        self._write(render_all(replies, bold=bold) + "\n\n")

    async def _read_line(self, prompt: str) -> str | None:
        if self.interactive and self.reader is not None:
            return await self.reader.read(prompt)
        if self.interactive:
            self._write(prompt)
        line = await asyncio.to_thread(self.stdin.readline)
        if line and self.echo and not self.interactive:
            self._write(prompt + line if line.endswith("\n") else f"{prompt}{line}\n")
        return line or None

    def _write(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()
