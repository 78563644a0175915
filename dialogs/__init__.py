"""The conversation: vocabulary, intent detector and flows. Plain Python, no I/O."""
