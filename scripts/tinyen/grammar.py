"""The training grammar: ordinary English sentences over tiny-en's word list.

Statements, questions, commands, numbers, days and times, prepositional phrases, greetings,
3-20 words. The held-out sentences come from a different set of templates
(:mod:`tinyen.heldout`) and from sentences written by hand, so the held-out score measures
whether the model learned the words in context, not these templates.
"""
from __future__ import annotations

import random

from tinyen.lexicon import Rules, generate

TRAIN_RULES: Rules = {
    "S": [
        (30, "<STATEMENT>"),
        (14, "<QUESTION>"),
        (12, "<COMMAND>"),
        (8, "<NUMBERS>"),
        (10, "<WHEN>"),
        (5, "<SOCIAL>"),
        (6, "<COMPOUND>"),
        (4, "i think that <STATEMENT>"),
    ],
    # ---- noun phrases
    "DET": [(6, "the"), (3, "a"), (2, "<POSS>"), (1, "this"), (1, "that"), (1, "every"),
            (1, "another"), (1, "one")],
    "DETS": [(6, "the"), (2, "<POSS>"), (1, "these"), (1, "those"), (1, "some"), (1, "many"),
             (1, "all the"), (1, "<NUM_SMALL>"), (1, "no"), (1, "both")],
    "POSS": [(1, "my"), (1, "your"), (1, "his"), (1, "her"), (1, "our"), (1, "their"), (0.3, "its")],
    "NP_SG": [(5, "<DET> <NOUN>"), (2, "<DET> <ADJ> <NOUN>"), (1, "<DET> very <ADJ> <NOUN>"),
              (1, "<DET> <NOUN> <PP>"), (1, "the <COLOR> <THING>")],
    "NP_PL": [(5, "<DETS> <NOUNS>"), (2, "<DETS> <ADJ> <NOUNS>"), (1, "the <NOUNS> <PP>")],
    "NP": [(3, "<NP_SG>"), (1, "<NP_PL>"), (1, "<OBJ_PRON>"), (0.5, "something"), (0.3, "everything"),
           (0.3, "nothing"), (0.3, "anything")],
    "OBJ_PRON": [(1, "me"), (1, "you"), (1, "him"), (1, "her"), (1, "us"), (1, "them"), (1, "it")],
    "SUBJ_SG": [(4, "<NP_SG>"), (1, "he"), (1, "she"), (1, "it"), (0.4, "someone"),
                (0.3, "everyone"), (0.3, "nobody")],
    "SUBJ_PL": [(2, "<NP_PL>"), (2, "i"), (1, "you"), (2, "we"), (1, "they")],
    "SUBJ": [(1, "<SUBJ_SG>"), (1, "<SUBJ_PL>")],
    # ---- verb phrases
    "OBJ": [(4, "<NP>"), (1, "<NP> <ADV_MANNER>"), (1, "<NP> <PP>")],
    "VP_BASE": [(5, "<VT> <OBJ>"), (2, "<VI> [<ADV_MANNER>]"), (1, "<VI> <PP>"),
                (1, "go to the <PLACE>"), (1, "be <ADJ_STATE>"), (1, "<VT> <OBJ> <ADV_TIME>"),
                (1, "look at <NP>"), (1, "talk to <NP> about <NP>"), (1, "wait for <NP>")],
    "VP_PAST": [(5, "<VT_PAST> <OBJ>"), (2, "<VI_PAST> [<ADV_MANNER>]"), (1, "<VI_PAST> <PP>"),
                (1, "went to the <PLACE> [<ADV_TIME>]"), (1, "was <ADJ_STATE>"),
                (1, "talked to <NP> about <NP>"), (1, "waited for <NP>"),
                (1, "had <NP>")],
    "VP_SG": [(4, "<V3> <OBJ>"), (2, "<VI3> [<ADV_MANNER>]"), (1, "is <ADJ>"), (1, "has <NP>"),
              (1, "<ADV_FREQ> <V3> <OBJ>"), (1, "does not <VT> <OBJ>")],
    "VP_PL": [(4, "<VT> <OBJ>"), (2, "<VI> [<ADV_MANNER>]"), (1, "are <ADJ>"), (1, "have <NP>"),
              (1, "<ADV_FREQ> <VT> <OBJ>"), (1, "do not <VT> <OBJ>")],
    "PP": [(3, "<PREP_PLACE> the <PLACE>"), (2, "<PREP_PLACE> <DET> <NOUN>"), (1, "with <NP>"),
           (1, "for <NP>"), (1, "from the <PLACE>"), (1, "after <MEAL>"), (1, "before the <NOUN>"),
           (1, "in the <DIRECTION>")],
    # ---- sentence types
    "STATEMENT": [(3, "<SUBJ_SG> <VP_SG> [<PP>]"), (3, "<SUBJ_PL> <VP_PL> [<PP>]"),
                  (4, "<SUBJ> <VP_PAST> [<ADV_TIME>]"), (3, "<SUBJ> <MODAL> <VP_BASE>"),
                  (2, "<NP_SG> is <ADJ> [<PP>]"), (1, "<NP_PL> are <ADJ>"),
                  (1, "there is <NP_SG> <PP>"), (1, "there are <NUMBER> <NOUNS> <PP>"),
                  (1, "<SUBJ> <MODAL> not <VP_BASE>"), (1, "it is <ADJ> <ADV_TIME>"),
                  (1, "the <WEATHER> <VI_PAST> all <PART_OF_DAY>"), (1, "<SUBJ> also <VP_PAST>"),
                  (1, "<SUBJ> just <VP_PAST>"), (1, "<SUBJ> still <VP_PAST>")],
    "QUESTION": [(3, "do you <VT> <OBJ>"), (2, "did <SUBJ> <VT> <OBJ>"), (2, "can you <VP_BASE>"),
                 (1, "could you <VP_BASE> please"), (1, "where is <NP_SG>"), (1, "what is <NP_SG>"),
                 (1, "who <VT_PAST> <NP>"), (1, "how many <NOUNS> do you need"),
                 (1, "what time is the <NOUN>"), (1, "are you <ADJ_STATE>"), (1, "is <NP_SG> <ADJ>"),
                 (1, "why did <SUBJ> <VT> <OBJ>"), (1, "when will <SUBJ> <VP_BASE>"),
                 (1, "should we <VP_BASE>"), (1, "have you <VT_PAST> <NP>"),
                 (1, "how was the <NOUN>"), (1, "which <NOUN> do you want")],
    "COMMAND": [(4, "please <VT> <OBJ>"), (3, "<VT> <NP> [<ADV_MANNER>]"), (1, "do not <VT> <NP>"),
                (2, "<EDIT_VERB> the <DOC>"), (1, "<EDIT_VERB> the <DOC> <PP>"),
                (1, "please <VI> [<ADV_MANNER>]"), (1, "send <NP> to <NP>"),
                (1, "call <NP> <ADV_TIME>"), (1, "never <VT> <NP>"), (1, "always <VT> <NP>")],
    "EDIT_VERB": [(1, "open"), (1, "close"), (1, "save"), (1, "delete"), (1, "copy"), (1, "paste"),
                  (1, "print"), (1, "type"), (1, "check"), (1, "update"), (1, "send"), (1, "change")],
    "DOC": [(1, "file"), (1, "folder"), (1, "document"), (1, "email"), (1, "message"), (1, "report"),
            (1, "list"), (1, "note"), (1, "page"), (1, "picture"), (1, "code"), (1, "password")],
    "NUMBERS": [(2, "the <NOUN> is at <CLOCK>"), (2, "i need <NUMBER> <NOUNS>"),
                (2, "we have <NUMBER> <NOUNS> [<PP>]"), (1, "the price is <NUMBER>"),
                (1, "turn to page <NUMBER>"), (1, "it takes <NUMBER> minutes"),
                (1, "version <NUMBER> is <ADJ>"), (1, "<NUMBER> <NOUNS> <VI_PAST> <PP>"),
                (1, "there were <NUMBER> <NOUNS> in the <PLACE>"), (1, "call me at <CLOCK>"),
                (1, "we leave in half an hour")],
    "WHEN": [(2, "on <DAY> <SUBJ> <MODAL> <VP_BASE>"), (2, "<SUBJ> <VP_PAST> last <DAY>"),
             (1, "<SUBJ> <MODAL> <VP_BASE> next <DAY>"), (1, "see you on <DAY>"),
             (1, "the <NOUN> is on <DAY> <PART_OF_DAY>"), (1, "in <MONTH> <SUBJ> <VP_PAST>"),
             (1, "every <DAY> <SUBJ_PL> <VP_PL>"), (1, "<SUBJ> <VP_PAST> in the <PART_OF_DAY>"),
             (1, "this <SEASON> <SUBJ> <MODAL> <VP_BASE>"), (1, "<DAY> is <ADJ>"),
             (1, "the deadline is <DAY> at <CLOCK>"), (1, "we meet at <CLOCK> on <DAY>")],
    "SOCIAL": [(1, "thank you very much"), (1, "thanks for <NP>"), (1, "hello <NP_SG>"),
               (1, "hi how are you <ADV_TIME>"), (1, "sorry i am late"), (1, "okay see you <ADV_TIME>"),
               (1, "yes please <VT> <NP>"), (1, "goodbye and thank you"), (1, "welcome to the <PLACE>"),
               (1, "good <PART_OF_DAY> <NP_SG>")],
    "COMPOUND": [(2, "<SUBJ> <VP_PAST> and <SUBJ> <VP_PAST>"), (1, "<SUBJ> <VP_PAST> but <SUBJ> <VP_PAST>"),
                 (1, "<SUBJ> <VP_PAST> because <SUBJ> <VP_PAST>"), (1, "<SUBJ> <VP_PAST> so <SUBJ> <VP_PAST>"),
                 (1, "<SUBJ> <MODAL> <VP_BASE> or <VP_BASE>")],
    # ---- numbers and times
    "NUM_SMALL": [(1, "two"), (1, "three"), (1, "four"), (1, "five"), (1, "six"), (1, "ten"), (1, "twelve")],
    "NUMBER": [(4, "<DIGIT>"), (1, "<TEEN>"), (2, "<TENS> [<DIGIT>]"), (1, "<DIGIT> hundred"),
               (1, "<DIGIT> hundred and <TENS>"), (1, "<DIGIT> thousand"), (0.5, "a hundred"),
               (0.5, "a million")],
    "CLOCK": [(3, "<DIGIT>"), (1, "<TEEN>"), (2, "<DIGIT> <TENS>"), (1, "<TEEN> <TENS> <DIGIT>"),
              (1, "<DIGIT> in the <PART_OF_DAY>")],
}


def train_sentence(rng: random.Random) -> str:
    return generate(TRAIN_RULES, rng)
