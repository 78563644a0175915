"""Benchmark of the bounce reader and the intent detector.

Prints throughput (MB/s), median and worst time per message for a typical bounce (about 5 KB,
plain text and .eml) and for a 1 MB paste, then the reader's figures against the targets of
issue 11. Run: ``python benchmarks/reader.py [--runs N]``.

Times are wall-clock medians; the CPU column is the median of the process's CPU time per run,
which other processes on a busy machine inflate far less than wall-clock time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from dialogs.intent import recognise_content
from knowledge.kb import default_knowledge
from knowledge.ndr import read_bounce

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"


def typical_text() -> bytes:
    """A newer-format bounce pasted as text, padded with its own headers to about 5 KB."""
    text = (CORPUS / "en-new-57133-group.txt").read_bytes()
    headers = (CORPUS / "en-old-57133-group-display-name.txt").read_bytes()
    return (text + b"\n" + headers)[: 5 * 1024]


def typical_eml() -> bytes:
    return (CORPUS / "en-eml-57133-group-qp.eml").read_bytes()


def big_paste() -> bytes:
    """1 MB: a thread in which the same bounce was pasted over and over, with chat around it."""
    chunk = typical_text() + b"\n> can you look at this one too? it's the same as before\n"
    return (chunk * (1024 * 1024 // len(chunk) + 1))[: 1024 * 1024]


def timed(
    function: Callable[[bytes], object], data: bytes, runs: int
) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of each run."""
    function(data)  # warm the caches (knowledge base, lexicon, compiled patterns)
    times, cpu_times = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        function(data)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    return times, cpu_times


def measure(function: Callable[[bytes], object], data: bytes, runs: int) -> list[float]:
    """Wall-clock seconds of each run."""
    return timed(function, data, runs)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200, help="runs per small message")
    parser.add_argument("--big-runs", type=int, default=10, help="runs for the 1 MB paste")
    args = parser.parse_args()
    started = time.perf_counter()
    default_knowledge()
    read_bounce("550 5.7.12 warm-up")
    print(f"start-up (knowledge base, word lists): {time.perf_counter() - started:.2f} s")
    cases = [
        ("typical bounce, text", typical_text(), args.runs),
        ("typical bounce, .eml", typical_eml(), args.runs),
        ("1 MB paste", big_paste(), args.big_runs),
    ]
    print(
        f"{'input':<22} {'size':>9} {'step':<8} {'median ms':>10} {'worst ms':>9} {'MB/s':>7} "
        f"{'CPU ms':>8}"
    )
    reader_medians: dict[str, float] = {}
    for name, data, runs in cases:
        for step, function in (("reader", read_bounce), ("intent", recognise_content)):
            times, cpu_times = timed(function, data, runs)
            median = statistics.median(times)
            if step == "reader":
                reader_medians[name] = median
            throughput = len(data) / median / 1_000_000
            print(
                f"{name:<22} {len(data):>9,} {step:<8} {median * 1000:>10.2f} "
                f"{max(times) * 1000:>9.2f} {throughput:>7.1f} "
                f"{statistics.median(cpu_times) * 1000:>8.2f}"
            )
    text, eml, paste = (reader_medians[name] for name, _, _ in cases)
    print("reader against the targets (medians, wall clock):")
    print(f"  ~5 KB bounce text: {len(cases[0][1]) / text / 1_000_000:.1f} MB/s (target >= 50)")
    print(f"  1 MB paste:        {paste * 1000:.1f} ms (target < 20)")
    print(f"  ~7 KB .eml:        {eml * 1000:.2f} ms (target < 1)")


if __name__ == "__main__":
    main()
