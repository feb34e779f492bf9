"""The text pipeline between the model and the cursor: what the person asked for, applied.

    pipeline.py     apply(text, ctx) -> str: every step in order; every delivery path calls it
    context.py      TextSettings (from Config), Context (settings + the target app + what is before)
    profile.py      Profile: the ``[profile."APP"]`` overrides for one application
    fillers.py      "um", "uh"... removed (remove_fillers)
    replace.py      the user's dictionary, ``[words]``: spoken = written
    punctuation.py  spoken punctuation and commands: "comma", "new line"... (spoken_punctuation)
    capitals.py     capitals and a trailing period for models that write neither
    tokens.py       the word/punctuation split the steps share

Every step is a pure function of (text, context); nothing here does I/O or keeps state.
"""
from __future__ import annotations
