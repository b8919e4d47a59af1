"""A weighted template grammar over the vocabulary, and sentence sampling per split.

Sentences read like conversational English (Switchboard-like): statements, opinions,
questions, short replies, compounds. Lengths follow ``LENGTH_PMF`` (2-13 words, mean ~6.5):
candidates from the grammar are bucketed by length and a length is drawn first, which samples
the grammar conditioned on that length without waste.

Train and evaluation (test / hold-out) sentences are disjoint by construction: a sentence is an
evaluation sentence when a stable hash of its cleaned text falls in ``EVAL_SHARE`` percent of
the hash space, so any day can be regenerated alone without knowing the other days.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterable

import numpy as np

from brain2text.phonemes import clean_text, pronounce, words_of

from . import vocabulary as V

# P(n words) for n = 2..13: mean ~6.5 like the real sentences.
LENGTH_PMF: dict[int, float] = {
    2: 0.04, 3: 0.08, 4: 0.11, 5: 0.14, 6: 0.16, 7: 0.14, 8: 0.11, 9: 0.08, 10: 0.06,
    11: 0.04, 12: 0.03, 13: 0.01,
}  # fmt: skip
EVAL_SHARE = 20  # percent of the sentence space reserved for test and hold-out sentences
MAX_CANDIDATES = 200_000  # safety net against a grammar that cannot reach a length

Rules = dict[str, tuple[tuple[float, str], ...]]


def _lex(words: Iterable[str]) -> tuple[tuple[float, str], ...]:
    return tuple((1.0, w) for w in words)


def _verb_forms(name: str, verbs: tuple[V.Verb, ...]) -> Rules:
    return {f"<{name}_{form}>": _lex(v[i] for v in verbs) for i, form in enumerate(FORMS)}


FORMS = ("BASE", "3SG", "PAST")


def _verb_phrases(form: str) -> tuple[tuple[float, str], ...]:
    """Verb phrases in one form (BASE, 3SG or PAST); objects match the verb's kind."""
    go, want, like, tryv = (
        {"BASE": w[0], "3SG": w[1], "PAST": w[2]}[form]
        for w in (("go", "goes", "went"), ("want", "wants", "wanted"),
                  ("like", "likes", "liked"), ("try", "tries", "tried"))
    )  # fmt: skip
    return (
        (3, f"<VF_{form}> <FOOD_NP>"),
        (3, f"<VM_{form}> <MEDIA_NP>"),
        (2, f"<VB_{form}> <BOOK_NP>"),
        (3, f"<VPER_{form}> <PERSON>"),
        (4, f"<VT_{form}> <THING_NP>"),
        (0.8, f"<VT_{form}> <THING_NP> <PLACE_ADV>"),
        (1, f"<VV_{form}> <VEHICLE_NP>"),
        (2, f"<VL_{form}> <PLACE_NP>"),
        (3, f"<VI_{form}>"),
        (2, f"<VI_{form}> <PLACE_ADV>"),
        (2, f"{go} to <DEST>"),
        (1, f"{want} to <VP_BASE>"),
        (1, f"{like} to <VI_BASE>"),
        (0.6, f"{tryv} to <VP_BASE>"),
    )


RULES: Rules = {
    "<S>": (
        (30, "<STMT> ."), (8, "<OPENER> , <STMT> ."), (14, "<QUESTION> ?"),
        (8, "<STMT> , <CONJ> <STMT> ."), (8, "<OPINION> ."), (5, "<SHORT> ."),
        (4, "<IMPERATIVE> ."), (3, "<EXCLAIM> !"), (2, "<OPENER> , <OPINION> ."),
    ),
    "<STMT>": (
        (5, "<SUBJ_PL> <FREQ> <VP_BASE>"), (5, "<SUBJ_SG> <FREQ> <VP_3SG>"),
        (8, "<SUBJ> <VP_PAST>"), (6, "<SUBJ> <VP_PAST> <TIME_PAST>"),
        (2, "<SUBJ_PL> <VP_BASE> <TIME_HABIT>"), (2, "<SUBJ_SG> <VP_3SG> <TIME_HABIT>"),
        (3, "<SUBJ> <MODAL> <VP_BASE>"), (1.5, "<SUBJ> <MODAL> <VP_BASE> <TIME_FUTURE>"),
        (2, "<SUBJ_PL> don't <VP_BASE>"), (2, "<SUBJ_SG> doesn't <VP_BASE>"),
        (2, "<SUBJ> didn't <VP_BASE>"), (1, "<SUBJ> didn't <VP_BASE> <TIME_PAST>"),
        (3, "<GOING> to <VP_BASE>"), (1.5, "<GOING> to <VP_BASE> <TIME_FUTURE>"),
        (2, "<HAVE_TO> <VP_BASE>"), (6, "<COPULA>"),
    ),
    "<COPULA>": (
        (2, "i'm <DEG> <ADJ_PERSON>"), (2, "<SUBJ_SG> is <DEG> <ADJ_PERSON>"),
        (1, "<SUBJ_PL_WORD> are <DEG> <ADJ_PERSON>"), (2, "<SUBJ_SG> was <DEG> <ADJ_PERSON>"),
        (1, "i was <DEG> <ADJ_PERSON> <TIME_PAST>"), (1, "<SUBJ_PL_WORD> were <DEG> <ADJ_PERSON>"),
        (2, "the <THING_N> is <DEG> <ADJ_THING>"), (1, "our <PLACE_N> was <DEG> <ADJ_EVAL>"),
        (2, "the <MEDIA_N> was <DEG> <ADJ_EVAL>"), (2, "it was <DEG> <ADJ_EVAL>"),
        (1, "it's <DEG> <ADJ_WEATHER> <TIME_NOW>"), (2, "that's <DEG> <ADJ_EVAL>"),
        (1, "that sounds <DEG> <ADJ_EVAL>"), (1, "the weather was <DEG> <ADJ_WEATHER>"),
        (1, "there's a <ADJ_THING> <PLACE_N> <NEAR>"), (1, "the <PLACE_N> was <DEG> <ADJ_EVAL>"),
        (1, "<SUBJ_SG> has a <ADJ_THING> <THING_N>"), (1, "we have a <ADJ_THING> <THING_N>"),
    ),
    "<QUESTION>": (
        (4, "do you <VP_BASE>"), (2, "do you want to <VP_BASE>"), (2, "did you <VP_BASE>"),
        (1, "did you <VP_BASE> <TIME_PAST>"), (2, "does <SUBJ_SG> <VP_BASE>"),
        (1, "have you ever been to the <PLACE_N>"), (1, "what do you think about the <MEDIA_N>"),
        (1, "where did you <GET> that <THING_N>"), (2, "how was your <EVENT_N>"),
        (1, "how was the <MEDIA_N>"), (1, "what time does the <TIMED_N> <START>"),
        (1, "can you <VP_BASE>"), (1, "could you <VP_BASE> <TIME_FUTURE>"),
        (1, "would you like to <VP_BASE>"), (1, "are you going to <VP_BASE> <TIME_FUTURE>"),
        (1, "when are you going to <VP_BASE>"), (1, "why did <SUBJ> <VP_BASE>"),
        (1, "how long have you <PERFECT>"), (1, "how many <PLURAL_N> do you have"),
        (1, "what are you doing <TIME_FUTURE>"), (1, "who <VP_PAST>"),
        (1, "is <SUBJ_SG> <ADJ_PERSON>"), (1, "are you <DEG> <ADJ_PERSON>"),
        (1, "where do you <VI_BASE>"), (1, "what kind of <KIND_N> do you like"),
        (1, "do you know if <STMT>"), (1, "should we <VP_BASE> <TIME_FUTURE>"),
        (2, "<SHORT_QUESTION>"),
    ),
    "<OPINION>": (
        (8, "<OPINION_HEAD> <STMT>"), (1, "<SUBJ_SG> said that <STMT>"),
        (1, "<SUBJ_SG> told me that <STMT>"), (1, "i wish <SUBJ> could <VP_BASE>"),
    ),
    "<IMPERATIVE>": (
        (2, "let's <VP_BASE>"), (1, "let's <VP_BASE> <TIME_FUTURE>"), (1, "please <VP_BASE>"),
        (1, "don't forget to <VP_BASE>"), (1, "make sure you <VP_BASE>"),
        (1, "try to <VP_BASE>"), (1, "remember to <VP_BASE> <TIME_FUTURE>"),
    ),
    "<EXCLAIM>": (
        (1, "what a <ADJ_THING> <THING_N>"), (1, "what a <ADJ_EVAL> <EVENT_N>"),
        (1, "i love <MEDIA_NP>"), (1, "that's a <ADJ_EVAL> idea"),
        (1, "i can't believe <STMT>"),
    ),
    "<SHORT>": (
        (4, "<SHORT_PHRASE>"), (1, "<PRONOUN> <VI_PAST>"), (1, "<NAME> <VI_PAST>"),
        (0.5, "<PRONOUN> <VI_PAST> <TIME_PAST>"),
    ),
    "<SUBJ>": ((2, "<SUBJ_PL>"), (2, "<SUBJ_SG>")),
    "<SUBJ_PL>": ((3, "i"), (6, "<SUBJ_PL_WORD>")),
    "<SUBJ_SG>": ((6, "<SUBJ_SG_WORD>"), (2, "<NAME>")),
    "<PRONOUN>": _lex(("i", "we", "you", "they", "he", "she")),
    "<PERSON>": ((5, "<PERSON_WORD>"), (2, "<NAME>")),
    "<GOING>": _lex(("i'm going", "we're going", "they're going", "you're going", "he's going",
                     "she's going", "i was going", "we were going")),  # fmt: skip
    "<HAVE_TO>": _lex(("i have to", "we have to", "you have to", "she has to", "he has to",
                       "i had to", "we had to", "they had to")),  # fmt: skip
    "<FREQ>": ((6, ""), *_lex(V.FREQUENCY)),
    "<DEG>": ((6, ""), *_lex(V.DEGREES)),
    "<TIME_NOW>": ((2, ""), *_lex(("today", "tonight", "outside", "this morning"))),
    "<NEAR>": _lex(("near our house", "in our town", "down the street", "next to the school",
                    "by the river", "downtown")),  # fmt: skip
    "<GET>": _lex(("buy", "get", "find")),
    "<FOOD_NP>": ((3, "<FOOD_MASS>"), (2, "the <FOOD_MASS>"), (1, "some <FOOD_MASS>"),
                  (1, "<ADJ_FOOD> <FOOD_MASS>"), (2, "a <FOOD_COUNT>"),
                  (1, "a <ADJ_FOOD> <FOOD_COUNT>"), (1, "the <FOOD_COUNT>")),  # fmt: skip
    "<THING_NP>": ((3, "<DET> <THING_N>"), (2, "<DET> <ADJ_THING> <THING_N>")),
    "<VEHICLE_NP>": ((3, "<DET> <VEHICLE_N>"), (1, "<DET> <ADJ_THING> <VEHICLE_N>")),
    "<MEDIA_NP>": ((3, "the <MEDIA_N>"), (1, "that <MEDIA_N>"), (1, "the new <MEDIA_N>")),
    "<BOOK_NP>": ((3, "the <BOOK_N>"), (1, "<DET> <BOOK_N>"), (1, "a long <BOOK_N>")),
    "<PLACE_NP>": ((3, "the <PLACE_N>"), (1, "<DET> <PLACE_N>"), (1, "the old <PLACE_N>")),
    "<VP_BASE>": _verb_phrases("BASE"),
    "<VP_3SG>": _verb_phrases("3SG"),
    "<VP_PAST>": _verb_phrases("PAST"),
    **_verb_forms("VF", V.VERBS_FOOD), **_verb_forms("VM", V.VERBS_MEDIA),
    **_verb_forms("VB", V.VERBS_BOOK), **_verb_forms("VPER", V.VERBS_PERSON),
    **_verb_forms("VT", V.VERBS_THING), **_verb_forms("VV", V.VERBS_VEHICLE),
    **_verb_forms("VL", V.VERBS_PLACE), **_verb_forms("VI", V.VERBS_INTRANSITIVE),
    **{f"<{name}>": _lex(words) for name, words in {
        "SUBJ_PL_WORD": V.SUBJECTS_PL, "SUBJ_SG_WORD": V.SUBJECTS_SG, "NAME": V.NAMES,
        "PERSON_WORD": V.PERSON_OBJECTS, "DET": V.DETERMINERS, "ADJ_THING": V.ADJ_THING,
        "ADJ_FOOD": V.ADJ_FOOD, "THING_N": V.THING_NOUNS, "VEHICLE_N": V.VEHICLE_NOUNS,
        "FOOD_MASS": V.FOOD_MASS, "FOOD_COUNT": V.FOOD_COUNT, "MEDIA_N": V.MEDIA_NOUNS,
        "BOOK_N": V.BOOK_NOUNS,
        "PLACE_N": V.PLACE_NOUNS, "DEST": V.DESTINATIONS, "EVENT_N": V.EVENT_NOUNS,
        "PLURAL_N": V.PLURAL_NOUNS, "KIND_N": V.KIND_NOUNS, "ADJ_PERSON": V.ADJ_PERSON,
        "ADJ_EVAL": V.ADJ_EVAL, "ADJ_WEATHER": V.ADJ_WEATHER, "MODAL": V.MODALS,
        "TIME_PAST": V.TIME_PAST, "TIME_FUTURE": V.TIME_FUTURE, "TIME_HABIT": V.TIME_HABIT,
        "PLACE_ADV": V.PLACE_ADVERBS, "OPENER": V.OPENERS, "OPINION_HEAD": V.OPINION_HEADS,
        "CONJ": V.CONJUNCTIONS, "SHORT_PHRASE": V.SHORT_PHRASES,
        "SHORT_QUESTION": V.SHORT_QUESTIONS, "PERFECT": V.PERFECTS,
        "START": V.START_VERBS, "TIMED_N": V.TIMED_NOUNS,
    }.items()},
}  # fmt: skip


@functools.cache
def _compiled() -> dict[str, tuple[np.ndarray, tuple[tuple[str, ...], ...]]]:
    """Nonterminal -> (cumulative probabilities, expansions as symbol tuples)."""
    out = {}
    for name, options in RULES.items():
        weights = np.array([w for w, _ in options], dtype=np.float64)
        expansions = tuple(tuple(e.split()) for _, e in options)
        out[name] = (np.cumsum(weights / weights.sum()), expansions)
    return out


def expand(rng: np.random.Generator, symbol: str = "<S>") -> list[str]:
    """Tokens (words and punctuation) of one random expansion of ``symbol``."""
    grammar = _compiled()
    out: list[str] = []
    stack = [symbol]
    while stack:
        sym = stack.pop()
        if sym not in grammar:
            out.append(sym)
            continue
        cum, expansions = grammar[sym]
        choice = expansions[min(int(np.searchsorted(cum, rng.random(), side="right")),
                                len(expansions) - 1)]  # fmt: skip
        stack.extend(reversed(choice))
    return out


def render(tokens: list[str]) -> str:
    """Tokens -> display text: "a" before vowel sounds becomes "an", capitals, punctuation."""
    words: list[str] = []
    for i, tok in enumerate(tokens):
        if tok == "a" and i + 1 < len(tokens):
            pron = pronounce(tokens[i + 1])
            if pron and pron[0][0] in "AEIOU":  # ARPAbet vowels, and only they, start so
                tok = "an"
        if tok in V.CAPITALISED:
            tok = tok.capitalize()
        elif tok == "i" or tok.startswith("i'"):
            tok = "I" + tok[1:]
        if tok in {",", ".", "?", "!"} and words:
            words[-1] += tok
        else:
            words.append(tok)
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def is_eval_sentence(text: str) -> bool:
    """True when ``text`` belongs to the test / hold-out side of the stable hash split."""
    return zlib.crc32(clean_text(text).encode()) % 100 < EVAL_SHARE


class SentenceSampler:
    """Draws sentences of one side of the split with the target length distribution."""

    def __init__(self, rng: np.random.Generator, evaluation: bool) -> None:
        self._rng = rng
        self._evaluation = evaluation
        self._buckets: dict[int, list[str]] = {n: [] for n in LENGTH_PMF}
        self._lengths = np.array(list(LENGTH_PMF), dtype=np.int64)
        self._pmf = np.array(list(LENGTH_PMF.values()))
        self._pmf = self._pmf / self._pmf.sum()

    def _fill(self, length: int) -> None:
        for _ in range(MAX_CANDIDATES):
            text = render(expand(self._rng))
            n = len(words_of(text))
            if n in self._buckets and is_eval_sentence(text) == self._evaluation:
                self._buckets[n].append(text)
                if n == length:
                    return
        raise RuntimeError(f"the grammar produced no {length}-word sentence")

    def draw(self, exclude: set[str]) -> str:
        """One new sentence not in ``exclude`` (compared after cleaning); adds it there."""
        while True:
            length = int(self._rng.choice(self._lengths, p=self._pmf))
            bucket = self._buckets[length]
            if not bucket:
                self._fill(length)
            text = bucket.pop(0)
            key = clean_text(text)
            if key not in exclude:
                exclude.add(key)
                return text


def sample_sentences(
    rng: np.random.Generator, n: int, evaluation: bool, exclude: set[str] | None = None
) -> list[str]:
    """``n`` distinct sentences from one side of the split (``exclude`` grows with them)."""
    sampler = SentenceSampler(rng, evaluation)
    seen = exclude if exclude is not None else set()
    return [sampler.draw(seen) for _ in range(n)]
