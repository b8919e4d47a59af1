"""decode_words with an LLM rescorer: the n-best lists of a group of trials are scored in one
call, and every trial gets the list it would get alone."""

import numpy as np

from brain2text.decoding.beam import WordHypothesis
from brain2text.evaluation.rescoring import LlmRescorer, RescoreOptions
from brain2text.evaluation.search import LLM_GROUP, WordSearch, decode_words


def hyp(text: str, am: float, ngram: float) -> WordHypothesis:
    return WordHypothesis(tuple(text.split()), (), am + ngram, am=am, ngram=ngram)


class ListDecoder:
    """Trial k (its log-probabilities' first value) decodes to ``lists[k]``."""

    def __init__(self, lists):
        self.lists = lists

    def decode(self, log_probs):
        return list(self.lists[int(log_probs[0, 0])])


class CachingScorer:
    """A scorer that keeps its scores, as SentenceScorer does; ``computed``: what each call
    had to compute."""

    name = "caching"

    def __init__(self):
        self.cache, self.computed = {}, []

    def score(self, sentences):
        new = [s for s in dict.fromkeys(sentences) if s not in self.cache]
        self.computed.append(new)
        for s in new:
            self.cache[s] = -float(sum(map(ord, s)) % 97)  # any fixed score a sentence
        return np.array([self.cache[s] for s in sentences])


def test_groups_of_trials_are_scored_at_once_with_the_same_choices():
    n = LLM_GROUP + 4
    lists = [
        [hyp(f"a{k} b", -1.0, -2.0), hyp(f"a{k} c", -1.5, -1.0), hyp("shared words", -3.0, -3.0)]
        + ([hyp("", -9.0, -9.0)] if k % 5 == 0 else [])
        for k in range(n)
    ]
    lists[3] = []  # an empty list stays empty
    emissions = [np.full((4, 41), float(k)) for k in range(n)]
    options = RescoreOptions(alpha=0.7, acoustic_scale=0.5)
    scorer = CachingScorer()
    search = WordSearch(ListDecoder(lists), rescorer=LlmRescorer(scorer, options))
    words = decode_words(search, emissions)

    alone = LlmRescorer(CachingScorer(), options)
    assert words.nbests == [alone(list(h), e) for h, e in zip(lists, emissions, strict=True)]
    batched = [c for c in scorer.computed if c]
    assert len(batched) == 2  # one call a group: 16 trials, then 4
    assert "shared words" in batched[0] and "shared words" not in batched[1]
    assert len(words.seconds) == n and min(words.seconds) > 0


def test_without_an_llm_each_trial_is_its_first_pass():
    lists = [[hyp("x y", -1.0, -1.0)], []]
    search = WordSearch(ListDecoder(lists))
    words = decode_words(search, [np.zeros((2, 41)), np.ones((2, 41))])
    assert words.nbests == lists and len(words.seconds) == 2
