"""Word classes over ``scripts/data/words.txt`` and a tiny weighted context-free grammar engine.

Both sentence grammars (the training one in :mod:`tinyen.grammar` and the separate held-out
one in :mod:`tinyen.heldout`) draw their words from these classes, so every sentence stays
inside tiny-en's vocabulary; ``check_vocabulary`` proves it in a test. The classes are plain
data; the engine is a pure function of a ``random.Random``.
"""
from __future__ import annotations

import random
from pathlib import Path

WORDS_FILE = Path(__file__).resolve().parent.parent / "data" / "words.txt"


def load_words(path: Path = WORDS_FILE) -> list[str]:
    words = [w.strip().lower() for w in path.read_text(encoding="utf-8").split()]
    return [w for w in words if w]


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split())


CLASSES: dict[str, tuple[str, ...]] = {
    "NOUN": _split("""time day night week month year hour minute morning afternoon evening weekend
        moment home house room door window table chair bed desk kitchen garden street city town village
        road car bus train boat plane bike ship station airport office school hospital shop store market
        bank church park hotel restaurant water food bread milk coffee tea juice apple orange banana lemon
        sugar salt pepper rice meat fish chicken egg cheese butter soup salad cake cookie pizza sandwich
        dinner lunch breakfast bird dog cat horse cow pig sheep goat fox zebra lion tiger bear wolf mouse
        rabbit duck frog snake whale monkey man woman child boy girl baby friend family mother father
        parent brother sister son daughter uncle aunt cousin husband wife teacher doctor nurse student
        worker driver farmer artist writer singer player neighbor person name word story book letter paper
        page phone computer screen keyboard email message music song picture photo movie video game ticket
        money price bill card key map list note plan idea question problem answer reason result color job
        company team meeting project report client customer service product order delivery account
        password address number calendar schedule deadline budget solution update version file folder
        document data system network server program code test bug feature release river lake sea ocean
        mountain hill forest tree flower grass stone sand fire ice air earth world country head face eye
        ear nose mouth tooth hand arm leg foot heart back hair skin body thing box jug wizard jackdaw
        sphinx nymph judge"""),
    "NOUNS": _split("""children people eyes teeth hands feet days weeks years hours minutes birds dogs
        cats flowers trees cars books friends customers students teachers answers questions problems words
        pages files messages ideas things kids houses rooms doors windows streets cities roads trains boats
        apples eggs boxes jugs wizards jackdaws"""),
    "PERSON": _split("""man woman child boy girl baby friend mother father parent brother sister son
        daughter uncle aunt cousin husband wife teacher doctor nurse student worker driver farmer artist
        writer singer player neighbor client customer team family company judge wizard"""),
    "PEOPLE": _split("children people friends customers students teachers kids wizards"),
    "THING": _split("""book letter paper page phone computer screen keyboard email message picture photo
        movie video game ticket card key map list note plan report file folder document order update
        version program code test bug feature release password address number calendar schedule budget
        box jug cake pizza sandwich coffee tea juice apple orange banana bread milk cheese soup salad"""),
    "THINGS": _split("books pages files messages ideas things boxes jugs apples eggs answers questions"),
    "PLACE": _split("""home house room kitchen garden street city town village road station airport
        office school hospital shop store market bank church park hotel restaurant river lake sea ocean
        mountain hill forest country world"""),
    "ANIMAL": _split("""bird dog cat horse cow pig sheep goat fox zebra lion tiger bear wolf mouse rabbit
        duck frog snake whale monkey jackdaw"""),
    "VEHICLE": _split("car bus train boat plane bike ship"),
    "MEAL": _split("breakfast lunch dinner"),
    "ADJ": _split("""red blue green yellow black white brown gray pink purple gold silver big small large
        tiny long short tall high low old new young good bad hot cold warm cool fast slow quick lazy
        happy sad angry tired hungry thirsty busy free easy hard simple difficult early late right wrong
        next last same different open closed full empty clean dirty dark light bright quiet loud soft
        strong weak heavy rich poor safe dangerous sure ready important possible real true false nice fine
        beautiful pretty ugly funny strange special favorite daft"""),
    "ADJ_STATE": _split("""happy sad angry tired hungry thirsty busy free ready sure late early fine
        right wrong alone"""),
    "COLOR": _split("red blue green yellow black white brown gray pink purple gold silver"),
    "VT": _split("""get make take give see watch hear tell ask call help find keep leave eat drink read
        write want need like love hate play start stop begin end finish turn move bring buy sell pay send
        show try use win lose learn teach study build cut carry catch throw pull push drive ride sing wash
        cook grow fix check set save load close change follow meet remember forget understand visit miss
        count spend share explain describe create draw paint print type delete copy paste record press
        open pick choose hold hit break lift drop clean"""),
    "VI": _split("""go come run walk jump sit stand sleep wake work play talk speak listen laugh cry smile
        dance swim fly travel wait arrive return rise fall agree live"""),
    "VT_PAST": _split("""made took gave saw told asked found knew wanted needed liked loved played
        started stopped turned moved brought bought paid sent showed tried used won lost learned taught
        built caught threw drove rode sang washed cleaned cooked grew fixed checked saved opened changed
        followed met remembered forgot understood believed held chose visited passed missed watched wrote
        called helped kept"""),
    "VI_PAST": _split("""went came ran walked jumped sat stood slept worked played talked spoke laughed
        cried smiled danced swam flew traveled waited arrived returned fell lived"""),
    "V3": _split("wants likes needs knows makes takes gives sees gets"),
    "VI3": _split("goes comes runs works plays jumps looks thinks"),
    "DAY": _split("monday tuesday wednesday thursday friday saturday sunday"),
    "MONTH": _split("january february march april may june july august september october november december"),
    "SEASON": _split("spring summer autumn winter"),
    "PART_OF_DAY": _split("morning afternoon evening"),
    "DIGIT": _split("one two three four five six seven eight nine"),
    "TEEN": _split("ten eleven twelve"),
    "TENS": _split("twenty thirty forty fifty"),
    "MODAL": _split("will would can could should may might must"),
    "ADV_MANNER": _split("quickly slowly carefully easily happily loudly quietly together alone exactly"),
    "ADV_TIME": _split("today tonight tomorrow yesterday now later soon again already"),
    "ADV_FREQ": _split("always never often sometimes usually"),
    "PREP_PLACE": _split("in on at near behind beside under over across along around toward into through"),
    "DIRECTION": _split("north south east west"),
    "WEATHER": _split("rain snow wind storm"),
}

#: subject and object pronouns with the verb forms they take
SUBJ_PRONOUNS = ("i", "you", "we", "they")
SUBJ_PRONOUNS_3 = ("he", "she", "it")
OBJ_PRONOUNS = ("me", "you", "him", "her", "us", "them", "it")
POSSESSIVES = ("my", "your", "his", "her", "our", "their")

#: words after which "an" is the article, though the letter is a consonant (and none the other way)
_VOWEL_SOUND = ("hour", "hours")


def fix_articles(words: list[str]) -> list[str]:
    """Pick "a" or "an" from the next word's first sound."""
    out = list(words)
    for i, w in enumerate(out[:-1]):
        if w in ("a", "an"):
            nxt = out[i + 1]
            vowel = nxt[0] in "aeiou" or nxt in _VOWEL_SOUND
            if nxt.startswith(("one", "use", "uni")):
                vowel = False
            out[i] = "an" if vowel else "a"
    return out


Rules = dict[str, list[tuple[float, str]]]


def expand(rules: Rules, symbol: str, rng: random.Random, depth: int = 0, max_depth: int = 6) -> list[str]:
    """Expand ``symbol``: a rule name in ``rules``, a word class in :data:`CLASSES`, or a word.

    A production is a space-separated string; ``<X>`` names a rule or class and ``[...]`` marks
    an optional part taken with probability 1/2 (no nesting). Past ``max_depth`` the first
    production of a rule is taken, so rules list their non-recursive production first.
    """
    if symbol in CLASSES:
        return [rng.choice(CLASSES[symbol])]
    if symbol not in rules:
        raise KeyError(f"unknown grammar symbol {symbol!r}")
    options = rules[symbol]
    if depth >= max_depth:
        production = options[0][1]
    else:
        production = rng.choices([p for _, p in options], weights=[w for w, _ in options])[0]
    out: list[str] = []
    for token in _tokens(production):
        if token.startswith("[") and token.endswith("]"):
            if rng.random() < 0.5:
                for inner in _tokens(token[1:-1]):
                    out.extend(_expand_token(rules, inner, rng, depth, max_depth))
            continue
        out.extend(_expand_token(rules, token, rng, depth, max_depth))
    return out


def _expand_token(rules: Rules, token: str, rng: random.Random, depth: int, max_depth: int) -> list[str]:
    if token.startswith("<") and token.endswith(">"):
        return expand(rules, token[1:-1], rng, depth + 1, max_depth)
    return [token]


def _tokens(production: str) -> list[str]:
    """Split a production at spaces, keeping ``[...]`` groups whole."""
    out, buf, inside = [], [], False
    for part in production.split():
        if inside:
            buf.append(part)
            if part.endswith("]"):
                out.append(" ".join(buf))
                buf, inside = [], False
        elif part.startswith("[") and not part.endswith("]"):
            buf, inside = [part], True
        else:
            out.append(part)
    if inside:
        raise ValueError(f"unclosed [ in {production!r}")
    return out


def generate(rules: Rules, rng: random.Random, start: str = "S", lo: int = 3, hi: int = 20) -> str:
    """One sentence of ``lo``-``hi`` words from ``rules``."""
    while True:
        words = fix_articles(expand(rules, start, rng))
        if lo <= len(words) <= hi:
            return " ".join(words)


def check_vocabulary(rules: Rules, vocabulary: set[str]) -> list[str]:
    """Every literal word in ``rules`` and every class member must be in the vocabulary:
    returns the ones that are not (empty when the grammar is sound)."""
    missing = set()
    for words in CLASSES.values():
        missing.update(w for w in words if w not in vocabulary)
    for w in SUBJ_PRONOUNS + SUBJ_PRONOUNS_3 + OBJ_PRONOUNS + POSSESSIVES + ("a", "an"):
        if w not in vocabulary:
            missing.add(w)
    for options in rules.values():
        for _, production in options:
            for token in production.replace("[", " ").replace("]", " ").split():
                if not (token.startswith("<") and token.endswith(">")) and token not in vocabulary:
                    missing.add(token)
    return sorted(missing)
