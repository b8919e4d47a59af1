"""The evaluation files of a fixed tiny decoding, pinned: ``summary.json``, ``hypotheses.jsonl``
and ``errors.txt`` of a phoneme evaluation and of a word evaluation (``tests/fixtures/golden``).
A change to what these files hold or how they are laid out shows up here first."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from brain2text.decoding.beam import WordHypothesis
from brain2text.evaluation.labels import References
from brain2text.evaluation.pipeline import Trials, phoneme_evaluation, word_evaluation
from brain2text.evaluation.scoring import Decoded
from brain2text.evaluation.search import WordSearch, greedy_ids
from brain2text.evaluation.summary import EvalSummary, read_summary
from brain2text.phonemes import to_ids

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
DAYS = ["t12.2022.05.05", "t12.2022.05.10"]
SENTENCES = ["hi there", "see you", "no way"]
REFERENCES = [
    ["HH", "AY", "SIL", "DH", "EH", "R", "SIL"],
    ["S", "IY", "SIL", "Y", "UW", "SIL"],
    ["N", "OW", "SIL", "W", "EY", "SIL"],
]
# per trial the frames' best classes ("-": the CTC blank); each frame's log-probabilities put
# log(0.9) on that class and the rest evenly on the others
PATHS = [
    "- HH HH - AY SIL - DH AE AE R SIL",  # EH -> AE
    "S - IY SIL - Y Y - SIL",  # UW deleted
    "N OW SIL - W EY SIL SIL - NG SIL",  # NG SIL inserted
]
WORDS = [("hi", "their"), ("see", "you"), ("no", "way", "now")]


def _log_probs(path: str) -> np.ndarray:
    best = [0 if s == "-" else to_ids([s])[0] for s in path.split()]
    frames = np.full((len(best), 41), np.log(0.1 / 40), dtype=np.float32)
    frames[np.arange(len(best)), best] = np.log(0.9)
    return frames


class _Split:
    """Three labelled trials of two days."""

    labelled = True
    trial = np.array([4, 7, 2])
    day_index = np.array([0, 0, 1])

    def session_of(self, i: int) -> str:
        return DAYS[int(self.day_index[i])]

    def text(self, i: int) -> str:
        return SENTENCES[i]


def _trials() -> Trials:
    data = SimpleNamespace(days=DAYS, manifest=SimpleNamespace(kind="competitionData"))
    refs = References(list(SENTENCES), [to_ids(r) for r in REFERENCES])
    return Trials(data, _Split(), np.arange(3), refs)


HEADER = EvalSummary(
    checkpoint="runs/golden/checkpoints/best.pt",
    checkpoint_step=99,
    weights="raw",
    split="test",
    data="data/prepared",
    n_sentences=0,
    labelled=False,
)


class _FixedWords:
    """A word search that returns the fixed sentences, best first, scored by frame count."""

    def __init__(self) -> None:
        self.calls = 0

    def decode(self, log_probs: np.ndarray) -> list[WordHypothesis]:
        words = WORDS[self.calls]
        self.calls += 1
        phonemes = greedy_ids(log_probs)
        best = WordHypothesis(words, phonemes, float(-len(log_probs)))
        return [best, WordHypothesis(words[:1], phonemes[:2], float(-len(log_probs) - 1.5))]


def _check(files: dict[str, str], folder: str) -> None:
    for name in ("summary.json", "hypotheses.jsonl", "errors.txt"):
        assert files[name] == (GOLDEN / folder / name).read_text(), f"{folder}/{name}"


def test_a_phoneme_evaluation_writes_the_pinned_files(tmp_path):
    emissions = [_log_probs(p) for p in PATHS]
    decoded = Decoded(
        trial_ids=np.arange(3),
        hypotheses=[np.asarray(greedy_ids(e)) for e in emissions],
        losses=np.array([1.25, 2.5, 0.75]),
    )
    evaluation = phoneme_evaluation(_trials(), decoded, HEADER, "test")
    _check(evaluation.files, "phonemes")
    summary = evaluation.write(tmp_path / "eval" / "test")
    assert read_summary(tmp_path / "eval" / "test") == summary
    assert sorted(p.name for p in (tmp_path / "eval" / "test").iterdir()) == [
        "errors.txt",
        "hypotheses.jsonl",
        "summary.json",
    ]
    assert summary.per == pytest.approx(4 / 19) and summary.edit_distance == 4


def test_a_word_evaluation_writes_the_pinned_files(tmp_path, monkeypatch):
    monkeypatch.setattr("time.perf_counter", iter(np.arange(0.0, 1.0, 0.001)).__next__)
    search = WordSearch(_FixedWords(), lm="lm/", options={"beam_size": 4}, options_from="test")
    emissions = [_log_probs(p) for p in PATHS]
    evaluation = word_evaluation(_trials(), emissions, search, HEADER, "test")
    _check(evaluation.files, "words")
    assert evaluation.summary.wer == pytest.approx(2 / 6) and evaluation.summary.words


def test_the_rescoring_stage_reorders_each_n_best_list():
    seen = []

    def prefer_the_shortest(nbest, log_probs):
        seen.append(log_probs.shape)
        return sorted(nbest, key=lambda h: len(h.words))

    search = WordSearch(_FixedWords(), lm="lm/", rescorer=prefer_the_shortest)
    emissions = [_log_probs(p) for p in PATHS]
    evaluation = word_evaluation(_trials(), emissions, search, HEADER, "test")
    assert evaluation.files["decoded.txt"] == "hi\nsee\nno\n"
    assert seen == [e.shape for e in emissions]
