"""The benchmarks: each module runs on its own (``python benchmarks/<name>.py``); ``run.py`` is
the one that runs them side by side (see the README's Benchmarks section)."""
