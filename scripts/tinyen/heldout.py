"""Held-out natural sentences: a second grammar with other templates, and sentences by hand.

Nothing here is used for training. The templates are built differently from the training
grammar's (relative clauses, conditionals, comparisons, clauses of time, reported speech,
longer questions), and the hand-written sentences are what a person might dictate. Together
they measure whether tiny-en learned the words in context rather than the training templates;
:func:`tinyen.datasets.build_datasets` also rejects every training sentence that contains a
held-out sentence.
"""
from __future__ import annotations

import random

from tinyen.lexicon import Rules, generate

HELDOUT_RULES: Rules = {
    "S": [(3, "<RELATIVE>"), (3, "<CONDITIONAL>"), (2, "<COMPARE>"), (3, "<TEMPORAL>"),
          (2, "<REPORTED>"), (3, "<LONG_QUESTION>"), (2, "<INSTRUCTION>"), (2, "<AMOUNT>"),
          (2, "<SCENE>")],
    "THE_N": [(4, "the <NOUN>"), (1, "the <ADJ> <NOUN>"), (1, "our <NOUN>"), (1, "that <NOUN>")],
    "WHO": [(3, "the <PERSON>"), (1, "my <PERSON>"), (1, "the <ADJ> <PERSON>"), (1, "she"), (1, "he"),
            (1, "we"), (1, "they"), (1, "i")],
    "RELATIVE": [(2, "the <THING> that <WHO> <VT_PAST> was <ADJ>"),
                 (1, "the <PERSON> who <VT_PAST> <THE_N> <VI_PAST> <ADV_TIME>"),
                 (1, "i <VT_PAST> the <THING> that you <VT_PAST>"),
                 (1, "this is the <PLACE> where <WHO> <VI_PAST>"),
                 (1, "we <VT_PAST> a <PERSON> who <V3> <THE_N>"),
                 (1, "the <ANIMAL> which <VI_PAST> <PREP_PLACE> the <PLACE> was <ADJ>")],
    "CONDITIONAL": [(2, "if <WHO> <VT_PAST> <THE_N> then we <MODAL> <VT> <THE_N>"),
                    (1, "if it is <ADJ> <ADV_TIME> we will <VI>"),
                    (1, "we <MODAL> <VT> <THE_N> unless <WHO> <VT_PAST> it"),
                    (1, "if you <VT> <THE_N> please <VT> <THE_N> also"),
                    (1, "unless the <VEHICLE> is late we <MODAL> <VI> <ADV_TIME>")],
    "COMPARE": [(2, "<THE_N> is better than <THE_N>"), (1, "this <NOUN> is worse than the last one"),
                (1, "the <ANIMAL> is more <ADJ> than the <ANIMAL>"),
                (1, "my <VEHICLE> is <ADJ> but your <VEHICLE> is <ADJ>"),
                (1, "<THE_N> was the best <NOUN> of the <NOUN>")],
    "TEMPORAL": [(2, "before <WHO> <VI_PAST> <WHO> <VT_PAST> <THE_N>"),
                 (2, "after the <NOUN> we <VT_PAST> <THE_N>"),
                 (1, "when the <NOUN> <VI_PAST> <WHO> <VI_PAST> <ADV_MANNER>"),
                 (1, "while <WHO> <VI_PAST> i <VT_PAST> <THE_N>"),
                 (1, "until <DAY> <WHO> will <VT> <THE_N> every <PART_OF_DAY>"),
                 (1, "since <MONTH> the <PERSON> has <VT_PAST> <NUMBER_H> <NOUNS>")],
    "REPORTED": [(2, "<WHO> said that <THE_N> was <ADJ>"), (1, "<WHO> told me that the <NOUN> is <ADJ>"),
                 (1, "<WHO> asked whether the <NOUN> was <ADJ>"),
                 (1, "i knew that <WHO> <VT_PAST> <THE_N>"),
                 (1, "nobody believed that <THE_N> could <VI>")],
    "LONG_QUESTION": [(2, "why did the <PERSON> <VT> <THE_N> <PREP_PLACE> the <PLACE>"),
                      (1, "which <NOUN> do you like best"), (1, "whose <THING> is this"),
                      (1, "how long does it take to <VT> <THE_N>"),
                      (1, "where did you <VT> <THE_N> <ADV_TIME>"),
                      (1, "what would you do if <THE_N> <VI_PAST>"),
                      (1, "is there <NP_A> <PREP_PLACE> the <PLACE>"),
                      (1, "how often do the <NOUNS> <VI>")],
    "NP_A": [(1, "a <NOUN>"), (1, "an <ADJ> <NOUN>"), (1, "any <NOUNS>")],
    "INSTRUCTION": [(2, "remember to <VT> <THE_N> before <DAY>"), (1, "never <VT> <THE_N> without <THE_N>"),
                    (1, "first <VT> <THE_N> and then <VT> <THE_N>"),
                    (1, "try to <VI> <ADV_MANNER> <PREP_PLACE> the <PLACE>"),
                    (1, "make sure the <NOUN> is <ADJ>"), (1, "<VT> it again and <VT> it <ADV_MANNER>")],
    "NUMBER_H": [(2, "<DIGIT>"), (1, "<TENS> <DIGIT>"), (1, "<DIGIT> hundred"), (1, "<TEEN>")],
    "AMOUNT": [(2, "the <THING> was <NUMBER_H> and the <NOUN> is <ADJ>"),
               (1, "we bought <NUMBER_H> <NOUNS> in <MONTH>"),
               (1, "the <VEHICLE> goes at <DIGIT> <TENS> from the <PLACE>"),
               (1, "about <NUMBER_H> <PEOPLE> <VI_PAST> <PREP_PLACE> the <PLACE>"),
               (1, "<NUMBER_H> of the <NOUNS> were <ADJ>")],
    "SCENE": [(2, "a <ADJ> <ANIMAL> <VI_PAST> <PREP_PLACE> the <PLACE>"),
              (1, "the <COLOR> <VEHICLE> <VI_PAST> <ADV_MANNER> <PREP_PLACE> the <PLACE>"),
              (1, "in the <SEASON> the <NOUNS> are <ADJ>"),
              (1, "the <PEOPLE> <VI_PAST> together in the <PLACE>")],
}

#: written by hand, every word from scripts/data/words.txt (checked by a test)
HANDWRITTEN = """\
the team found a bug in the code
when the meeting is over we will go home
please send the report to the client before friday
i think we should fix the problem today
can you call me back in ten minutes
the train was late again this morning
my sister bought a new car last week
we need one more ticket for the movie
the doctor said that the baby is fine
turn left at the bank and then go north
i forgot my password so i could not open the file
the kids played in the garden all afternoon
is the coffee still hot
tell me when the update is ready
she wrote a long letter to her mother
the price of bread went up again
our office is near the station
could you help me move the table
the weather will be cold and dark tomorrow
he has two dogs and a cat
we arrived at the hotel late at night
i will finish the project by the end of the month
the students asked the teacher a difficult question
do not forget to save the document
the server stopped on sunday night
there is a small lake behind the old church
they usually eat dinner at seven
the new version has a new feature
my phone fell into the water
what time does the bus leave
the children sang a song for their father
i read three books during the summer
the customer wants to change the order
please check the email and answer the message
a big storm came from the north
the meeting with the team is on tuesday afternoon
i would like some tea with milk
the cat sat under my desk
we visited our aunt and uncle in june
the restaurant was closed so we went home
he drove slowly because the road was dangerous
can you print this page for me
the budget for the next year is very small
she always has coffee in the morning
the birds flew over the river
i hope you have a nice weekend
the file is in the folder on my computer
our neighbor has a beautiful garden
the plane arrived at the airport on time
please close the door and the window
the answer to the first question was wrong
we will meet again next monday
my brother is a doctor at the hospital
the shop has good fish and cheese
it was a long and difficult day
the dog ran across the street
i need to buy some eggs and butter
the company sent a new schedule to every worker
there were five people in the room
you should talk to the driver
the little girl found a silver key
we waited for the bus for twenty minutes
the movie was funny but very long
he lost his key in the park
i will call you tomorrow evening
the farmer has many sheep and a horse
do you want some more soup
the writer wrote her story in december
this test is not as hard as the last one
the water in the sea was very cold
my favorite color is green
they built a new school in our town
the baby is tired and hungry
she learned to swim when she was six
please delete the old files from the server
the monkey sat in the tall tree
i saw a wolf in the forest last winter
our plan is simple and safe
the network was slow all day
we ate pizza and salad for lunch
he often forgot his key
the report has fifty pages
the judge thought carefully about the answer
the wizard made a strange box
my friends and i went to the lake in august
the door was open so the cat walked in
you can find the map on the table
i am sorry but the delivery is late
her husband works at a big bank
the snow fell quietly during the night
we should share the cake with everyone
the nurse checked the list again
"""


def handwritten_sentences() -> list[str]:
    return [line.strip() for line in HANDWRITTEN.splitlines() if line.strip()]


def heldout_sentence(rng: random.Random) -> str:
    return generate(HELDOUT_RULES, rng)
