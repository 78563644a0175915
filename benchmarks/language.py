"""Benchmark of the language layer: its start-up (training, and loading from its cache) and its
cost per message, alone and as part of a whole in-process turn.

Prints the median, 90th percentile and worst time to read one message, over messages of the
kinds people send (a word, an answer with a typo, a sentence with a negation, a long problem told
in words, other languages): read anew, and said again (a short message's reading remembered).
Run: ``python benchmarks/language.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time

from dialogs.answers import Option
from dialogs.conversation import handle_turn
from dialogs.messages import Message
from dialogs.reading import Expectation
from dialogs.turn import DialogContext
from dialogs.understanding.data import load_training_data
from dialogs.understanding.layer import TrainedUnderstanding, build_understanding
from dialogs.understanding.training import train_understanding
from knowledge.kb import default_knowledge

MESSAGES = (
    "yes",
    "shraed mailboxs",
    "powershel pls",
    "i dont want to allow everyone, just our one supplier",
    "its not a shared mailbox its a user mailbox",
    "is it safe to let everybody mail it?",
    "our events@contoso.com distribution list keeps bouncing mail from customers since monday, "
    "the partners all get an error back and I need this fixed before the board meeting tomorrow",
    "c'est moi qui ai envoyé le message",
    "das klassische eac will ich nicht",
    "go back",
)
METHODS = (
    Option("allow_all", "Allow everyone"),
    Option("allowed_senders", "Allow chosen senders only"),
)


def _percentile(times: list[float], share: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def _startup() -> tuple[float, float]:
    """Seconds to train from scratch, and seconds for a new process to load it from the cache."""
    started = time.perf_counter()
    train_understanding(default_knowledge(), load_training_data())
    trained = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NDRBOT_CACHE_DIR": cache}
        code = (
            "import time; t=time.perf_counter();"
            "from dialogs.understanding.layer import build_understanding; build_understanding();"
            "print(time.perf_counter()-t)"
        )
        command = [sys.executable, "-c", code]  # this interpreter, our own code
        subprocess.run(command, env=env, check=True, capture_output=True)  # noqa: S603
        second = subprocess.run(  # noqa: S603
            command, env=env, check=True, capture_output=True, text=True
        )
    return trained, float(second.stdout.strip())


def message_times(
    runs: int, layer: TrainedUnderstanding | None = None, *, again: bool = False
) -> list[float]:
    """Seconds each read took: every message of ``MESSAGES``, ``runs`` times, read by the layer
    (the one this process builds, if none is given) while a question is pending; each read
    anew, or (``again``) as a message said before is, from the layer's memory of readings."""
    layer = layer or build_understanding()
    read = layer.read if again else layer.read_anew
    expecting = Expectation("method", METHODS)
    times: list[float] = []
    for _ in range(runs):
        for text in MESSAGES:
            started = time.perf_counter()
            read(text, expecting)
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=300, help="reads of each message")
    args = parser.parse_args()
    trained, cached = _startup()
    print(f"start-up: training {trained:.2f} s; a new process loading the cache {cached:.2f} s")
    layer = build_understanding()
    for name, again in (("read anew", False), ("said again", True)):
        times = message_times(args.runs, layer, again=again)
        print(
            f"language layer, one message {name}: median {statistics.median(times) * 1000:.3f} "
            f"ms, p90 {_percentile(times, 0.9) * 1000:.3f} ms, worst {max(times) * 1000:.3f} ms "
            f"({len(times)} reads)"
        )
    context = DialogContext(default_knowledge(), understanding=layer)

    async def turns() -> list[float]:
        found: list[float] = []
        for _ in range(args.runs // 10 or 1):
            state, profile = None, None
            for text in ("how do i fix 5.7.12", "admin", "shraed mailbox", "everyone", "new eac"):
                started = time.perf_counter()
                result = await handle_turn(state, profile, Message(text=text), context)
                found.append(time.perf_counter() - started)
                state, profile = result.state, result.profile
        return found

    dialog = asyncio.run(turns())
    print(
        f"dialogs with the language layer, one turn (no store): median "
        f"{statistics.median(dialog) * 1000:.3f} ms, p90 {_percentile(dialog, 0.9) * 1000:.3f} ms"
    )


if __name__ == "__main__":
    main()
