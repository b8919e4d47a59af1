import numpy as np

from brain2text.phonemes import clean_text, phonemize, pronounce, words_of
from brain2text.synth import vocabulary
from brain2text.synth.sentences import (
    RULES,
    expand,
    is_eval_sentence,
    render,
    sample_sentences,
)


def _terminals() -> set[str]:
    words = set()
    for name in dir(vocabulary):
        value = getattr(vocabulary, name)
        if isinstance(value, tuple | frozenset):
            for item in value:
                words.update((" ".join(item) if isinstance(item, tuple) else item).split())
    for options in RULES.values():
        for _, expansion in options:
            words.update(t for t in expansion.split() if not t.startswith("<"))
    return words - {",", ".", "?", "!"}


def test_every_word_is_in_the_cmu_dictionary():
    words = _terminals()
    assert len(words) > 300
    assert [w for w in sorted(words) if pronounce(w) is None] == []


def test_sentences_phonemize_with_real_lengths():
    texts = sample_sentences(np.random.default_rng(0), 600, evaluation=False)
    lengths = np.array([len(words_of(t)) for t in texts])
    assert lengths.min() >= 2 and lengths.max() <= 13
    assert 6.0 <= lengths.mean() <= 7.0
    assert len({clean_text(t) for t in texts}) == len(texts)
    for t in texts:
        assert phonemize(t)[-1] == "SIL"
        assert not is_eval_sentence(t)


def test_train_and_evaluation_sides_are_disjoint():
    train = sample_sentences(np.random.default_rng(1), 300, evaluation=False)
    held = sample_sentences(np.random.default_rng(1), 300, evaluation=True)
    assert all(is_eval_sentence(t) for t in held)
    assert not {clean_text(t) for t in train} & {clean_text(t) for t in held}


def test_grammar_has_room_for_a_full_size_release():
    texts = sample_sentences(np.random.default_rng(2), 11_000, evaluation=False)
    assert len({clean_text(t) for t in texts}) == 11_000


def test_render_capitals_articles_and_punctuation():
    assert render(["i", "ate", "a", "apple", "."]) == "I ate an apple."
    assert render(["a", "used", "car", "?"]) == "A used car?"
    assert render(["well", ",", "john", "left", "."]) == "Well, John left."
    assert expand(np.random.default_rng(0))[-1] in {".", "?", "!"}
