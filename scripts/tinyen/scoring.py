"""Word and character error rates, dropped words by position, and espeak-ng homophones."""
from __future__ import annotations

import subprocess

import numpy as np

from tinyen.lexicon import load_words


def normalize_text(text: str) -> str:
    """Lowercase letters, apostrophes and single spaces only."""
    out = []
    for ch in text.lower():
        out.append(ch if ("a" <= ch <= "z" or ch == "'") else " ")
    return " ".join("".join(out).split())


def edit_ops(ref: list, hyp: list):
    """Levenshtein alignment; returns (distance, ops) with ops in ('=', 'S', 'D', 'I')."""
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=np.int32)
    d[:, 0] = np.arange(n + 1)
    d[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1,
                          d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    ops, i, j = [], n, m
    while i or j:
        if i and j and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            ops.append(("=" if ref[i - 1] == hyp[j - 1] else "S", i - 1))
            i, j = i - 1, j - 1
        elif i and d[i, j] == d[i - 1, j] + 1:
            ops.append(("D", i - 1))
            i -= 1
        else:
            ops.append(("I", i))
            j -= 1
    return int(d[n, m]), ops[::-1]


def error_rates(refs: list[str], hyps: list[str]) -> dict:
    """WER and CER over :func:`normalize_text`'s words: the text pipeline's capitals and
    periods (ctrlspeak's defaults for tiny-en) are not errors."""
    we = wn = ce = cn = 0
    for r, h in zip(map(normalize_text, refs), map(normalize_text, hyps)):
        we += edit_ops(r.split(), h.split())[0]
        wn += len(r.split())
        ce += edit_ops(list(r), list(h))[0]
        cn += len(r)
    return {"wer": we / max(1, wn), "cer": ce / max(1, cn), "words": wn}


def dropped_words(ref: str, hyp: str) -> dict:
    """Deleted reference words, by position: first/last 10 % of the words vs the middle."""
    words = ref.split()
    _, ops = edit_ops(words, hyp.split())
    dels = [i for op, i in ops if op == "D"]
    n = len(words)
    edge = max(1, n // 10)
    return {"start": [words[i] for i in dels if i < edge],
            "middle": [words[i] for i in dels if edge <= i < n - edge],
            "end": [words[i] for i in dels if i >= n - edge]}


def homophones(words: list[str] | None = None, voice: str = "en-us") -> dict[str, str]:
    """Words espeak-ng pronounces identically (same phonemes), mapped to one spelling.

    With random word sequences there is no context to tell "to" from "two": these set a floor
    under any model's WER on that data, reported beside the strict WER, never instead of it.
    """
    words = sorted(set(words or load_words()))
    out = subprocess.run(["espeak-ng", "-q", "-x", "-v", voice, "--stdin"],
                         input="\n".join(w + "." for w in words), capture_output=True, text=True,
                         check=True).stdout
    phonemes = [line.strip() for line in out.strip().split("\n") if line.strip()]
    if len(phonemes) != len(words):
        return {}
    first: dict[str, str] = {}
    canon = {}
    for w, ph in zip(words, phonemes):
        canon[w] = first.setdefault(ph, w)
    return {w: c for w, c in canon.items() if w != c or list(canon.values()).count(c) > 1}


def canonical(text: str, canon: dict[str, str]) -> str:
    return " ".join(canon.get(w, w) for w in text.split())
