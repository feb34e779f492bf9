"""The seeded plan of tiny-en's data: training items, held-out sets, long dictations, the sample.

Everything is a pure function of the seed. The held-out sets are drawn first, each from its
own random stream, and training sentences are then drawn from theirs; a training sentence is
redrawn when it equals a held-out sentence or contains a held-out natural sentence, so no
held-out word sequence is ever trained on (``build_datasets`` asserts it).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from tinyen import grammar, heldout
from tinyen.lexicon import load_words
from tinyen.scoring import homophones, normalize_text
from tinyen.speech import SR, make_item, synth

SEED = 1234
#: random word sequences, as tiny-en v1 was trained on
RANDOM_WORDS = (3, 12)
SAMPLE_SPEC = {"voice": "en-us", "rate": 160, "pitch": 50}
#: silences between the sentences of one training item, and of a held-out dictation
TRAIN_GAPS = (0.3, 1.5)
LONG_GAPS = (0.4, 1.5)
LONG_SECONDS = (30.0, 90.0)
#: training dictations (``long_train``): as long as the pieces ``ctrlspeak transcribe`` cuts a
#: long file into (15-30 s), so the model hears what it is asked to transcribe
LONG_TRAIN_SENTENCES = (4, 8)
LONG_TRAIN_SECONDS = (15.0, 30.0)
#: how often the grammar may repeat one sentence (short greetings come up often)
MAX_REPEATS = 3
#: spoken punctuation and commands (ctrlspeak/text/punctuation.py's English table) that some
#: training items say, so that ``spoken_punctuation = true`` works on the bundled model: most
#: are not in words.txt, and a model that never heard "new line" cannot write it
END_COMMANDS = ("period", "question mark", "exclamation mark", "full stop", "new line",
                "new paragraph")
MID_COMMANDS = ("comma", "colon", "new line")
QUOTE_COMMANDS = ("open quote", "close quote")


@dataclass
class Plan:
    train: list[dict]
    heldout_natural: list[dict]
    heldout_random: list[dict]
    long: list[dict]
    #: multi-sentence training dictations (``long_train``), kept apart from ``train`` so that
    #: the audio cached for ``train`` stays valid when they are added
    train_long: list[dict]


def random_sentence(rng: random.Random, words: list[str], lo: int = RANDOM_WORDS[0],
                    hi: int = RANDOM_WORDS[1]) -> str:
    return " ".join(rng.choice(words) for _ in range(rng.randint(lo, hi)))


def sample_sentence(words: list[str] | None = None, seed: int = SEED) -> str:
    """The bundled sample's sentence: 8-10 words, reproducible, never used for training, and
    free of homophones (no model can tell "to" from "two" without context, and the demo and
    the exact-text tests must come out right)."""
    words = words or load_words()
    avoid = homophones(words)
    rng = random.Random(f"sample-{seed}")
    while True:
        text = random_sentence(rng, words, 8, 10)
        if not any(w in avoid for w in text.split()):
            return text


def make_sample(out_dir: Path, seed: int = SEED) -> tuple[Path, Path]:
    """Write sample-en.wav (16 kHz mono PCM16) and sample-en.txt (the words) into ``out_dir``."""
    import soundfile as sf

    text = sample_sentence(seed=seed)
    audio = synth(text, **SAMPLE_SPEC)
    dur = len(audio) / SR
    if not 3.0 <= dur <= 6.0:
        raise RuntimeError(f"sample is {dur:.2f} s, expected 3-6 s")
    out_dir.mkdir(parents=True, exist_ok=True)
    wav, txt = out_dir / "sample-en.wav", out_dir / "sample-en.txt"
    sf.write(str(wav), audio, SR, subtype="PCM_16")
    txt.write_text(text + "\n", encoding="utf-8")
    return wav, txt


def _estimate_seconds(text: str) -> float:
    # espeak-ng at its mean rate of ~165 words a minute, plus its lead-in and tail
    return len(text.split()) / 165 * 60 + 0.3


def _natural_heldout(rng: random.Random, n: int, taken: set[str]) -> list[str]:
    """The hand-written sentences first, then the held-out grammar's, all distinct."""
    out = []
    for s in heldout.handwritten_sentences():
        if len(out) < n and s not in taken:
            taken.add(s)
            out.append(s)
    while len(out) < n:
        s = heldout.heldout_sentence(rng)
        if s not in taken:
            taken.add(s)
            out.append(s)
    return out


def _contains_any(sentence: str, needles: list[str]) -> bool:
    padded = f" {sentence} "
    return any(f" {n} " in padded for n in needles)


def say_commands(rng: random.Random, texts: list[str]) -> list[str]:
    """``texts`` (one item's sentences) with spoken commands in them: each sentence ends with an
    end command, and one in three also gets a mid-sentence command or a quoted stretch."""
    out = []
    for t in texts:
        w = t.split()
        if len(w) >= 3 and rng.random() < 1 / 3:
            i = rng.randint(1, len(w) - 1)
            if rng.random() < 0.5:
                w.insert(i, rng.choice(MID_COMMANDS))
            else:
                j = rng.randint(i + 1, len(w))
                w = w[:i] + [QUOTE_COMMANDS[0]] + w[i:j] + [QUOTE_COMMANDS[1]] + w[j:]
        out.append(" ".join(w + [rng.choice(END_COMMANDS)]))
    return out


def build_datasets(n_train: int, n_natural: int, n_random: int, n_long: int, seed: int = SEED,
                   natural_fraction: float = 0.55, multi_fraction: float = 0.1,
                   words: list[str] | None = None, command_fraction: float = 0.0,
                   long_train: int = 0) -> Plan:
    """Plan (no audio yet) the training items, the held-out sets and the long dictations.

    Held-out natural sentences come from :mod:`tinyen.heldout` (hand-written, then its own
    grammar), held-out random ones are random word sequences; the long dictations are 30-90 s
    of further held-out natural sentences with 0.4-1.5 s pauses. Training items are one
    sentence (natural from :mod:`tinyen.grammar` with ``natural_fraction``, else random), or
    with ``multi_fraction`` 2-3 of them with pauses between. With ``command_fraction``, that
    share of the training items also say spoken commands (:func:`say_commands`, from a stream
    of its own, so the rest of the plan is what it is without them); such an item keeps its
    sentences without them as ``plain_texts`` (the tokenizer is trained on those, so it stays
    the one a model trained without commands has). ``long_train`` more items are dictations of
    4-8 of those same training sentences (15-30 s with pauses), so they add no sentence, and
    no token, that training lacked.
    """
    words = words or load_words()
    reserved = {sample_sentence(words, seed)}
    rng = random.Random(f"{seed}-heldout-natural")
    natural = _natural_heldout(rng, n_natural, reserved)
    rng_random = random.Random(f"{seed}-heldout-random")
    randoms = []
    while len(randoms) < n_random:
        s = random_sentence(rng_random, words)
        if s not in reserved:
            reserved.add(s)
            randoms.append(s)
    rng_long = random.Random(f"{seed}-long")
    long_items, long_sentences = [], []
    for _ in range(n_long):
        target = rng_long.uniform(LONG_SECONDS[0] + 5, LONG_SECONDS[1] - 10)
        texts, gaps, est = [], [], 0.0
        while est < target:
            s = heldout.heldout_sentence(rng_long)
            if s in reserved:
                continue
            reserved.add(s)
            if texts:
                gaps.append(round(rng_long.uniform(*LONG_GAPS), 3))
                est += gaps[-1]
            texts.append(s)
            est += _estimate_seconds(s)
        long_sentences.extend(texts)
        long_items.append(make_item(rng_long, texts, gaps))
    voices = random.Random(f"{seed}-heldout-voices")
    heldout_natural = [make_item(voices, [s]) for s in natural]
    heldout_random = [make_item(voices, [s]) for s in randoms]

    banned = natural + long_sentences  # no training sentence may contain one of these
    rng_train = random.Random(f"{seed}-train")
    counts: dict[str, int] = {}

    def draw() -> str:
        while True:
            if rng_train.random() < natural_fraction:
                s = grammar.train_sentence(rng_train)
            else:
                s = random_sentence(rng_train, words)
            if s in reserved or counts.get(s, 0) >= MAX_REPEATS or _contains_any(s, banned):
                continue
            counts[s] = counts.get(s, 0) + 1
            return s

    train = []
    while len(train) < n_train:
        k = 1 if rng_train.random() >= multi_fraction else rng_train.randint(2, 3)
        texts = [draw() for _ in range(k)]
        gaps = [round(rng_train.uniform(*TRAIN_GAPS), 3) for _ in range(k - 1)]
        train.append(make_item(rng_train, texts, gaps))
    rng_cmd = random.Random(f"{seed}-commands")
    for i, it in enumerate(train):
        if command_fraction and rng_cmd.random() < command_fraction:
            said = say_commands(rng_cmd, it["texts"])
            train[i] = dict(it, texts=said, text=" ".join(said), plain_texts=it["texts"])
    seen = {s for it in train for s in it.get("plain_texts", it["texts"])}
    leak = seen & reserved
    assert not leak, f"held-out sentences leaked into training: {sorted(leak)[:3]}"
    train_long = _long_training(random.Random(f"{seed}-train-long"), sorted(seen), long_train)
    for it in train + train_long + heldout_natural + heldout_random + long_items:
        assert it["text"] == normalize_text(it["text"]), it["text"]
    return Plan(train, heldout_natural, heldout_random, long_items, train_long)


def _long_training(rng: random.Random, sentences: list[str], n: int) -> list[dict]:
    """``n`` dictations of 4-8 of ``sentences`` with pauses, each 15-30 s by estimate."""
    out = []
    while len(out) < n:
        texts = rng.sample(sentences, rng.randint(*LONG_TRAIN_SENTENCES))
        gaps = [round(rng.uniform(*TRAIN_GAPS), 3) for _ in range(len(texts) - 1)]
        est = sum(map(_estimate_seconds, texts)) + sum(gaps)
        if LONG_TRAIN_SECONDS[0] <= est <= LONG_TRAIN_SECONDS[1]:
            out.append(make_item(rng, texts, gaps))
    return out
