"""The language layer for people's words: a trained intent classifier, a gazetteer of slot values
with typo-tolerant matching, and negation scope. The flows see it only through
:mod:`dialogs.reading`; ``bot/`` builds it with :func:`build_understanding`."""
