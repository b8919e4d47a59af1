"""Hold-out answers are labelled with the phonemiser the prepared folder was made with."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from brain2text.data.manifest import PhonemizerInfo
from brain2text.errors import DataError
from brain2text.evaluation.labels import answer_sentences, dataset_labeller, label_sentence
from brain2text.g2p import ReferencePhonemizer
from brain2text.phonemes import CmuPhonemizer, to_ids


def _dataset(tmp_path, phonemizer):
    info = None if phonemizer is None else PhonemizerInfo(phonemizer)
    return SimpleNamespace(path=tmp_path, manifest=SimpleNamespace(phonemizer=info))


def test_the_dataset_phonemizer_and_lexicon_label_the_answers(tmp_path):
    lexicon = tmp_path / "lex.txt"
    lexicon.write_text("BRAINTEXT  B R EY1 N T EH2 K S T\n")
    labeller = dataset_labeller(
        _dataset(tmp_path, {"name": "reference", "lexicon": {"path": str(lexicon)}})
    )
    assert isinstance(labeller, ReferencePhonemizer)
    assert labeller("braintext") == ["B", "R", "EY", "N", "T", "EH", "K", "S", "T", "SIL"]
    old = dataset_labeller(_dataset(tmp_path, None))  # imported labels: CMU, as they were made
    assert isinstance(old, CmuPhonemizer) and old.lexicon is None
    lexicon.unlink()
    with pytest.raises(DataError, match="lex.txt, which is gone"):
        dataset_labeller(_dataset(tmp_path, {"name": "cmu", "lexicon": {"path": str(lexicon)}}))


def test_answers_are_read_per_session_and_trial(tmp_path):
    split = type(
        "Split",
        (),
        {
            "__len__": lambda self: 2,
            "session_of": lambda self, i: "t12.2022.05.24",
            "trial": np.array([1, 0]),
            "describe": lambda self, i: f"competition trial {i}",
        },
    )()
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"t12.2022.05.24": ["hello world", "good morning"]}))
    assert answer_sentences(split, answers, np.arange(2)) == ["good morning", "hello world"]
    assert answer_sentences(split, answers, np.array([1])) == ["hello world"]
    assert label_sentence(CmuPhonemizer(), "hello world", "x") == to_ids(
        CmuPhonemizer()("hello world")
    )
    with pytest.raises(
        DataError,
        match="competition trial 1: words the dataset's phonemizer cannot pronounce: zzyzxq",
    ):
        label_sentence(CmuPhonemizer(), "hello zzyzxq", "competition trial 1")
    answers.write_text(json.dumps({"t12.2022.05.24": ["only one"]}))
    with pytest.raises(DataError, match="no answer for competition trial 0"):
        answer_sentences(split, answers, np.arange(2))
