"""synth --sentences FILE: a file's sentences spoken instead of the grammar's, split by the
stable hash, days disjoint, clear errors."""

import json

import pytest
import scipy.io as sio

from brain2text.cli import main
from brain2text.errors import ConfigError, DataError
from brain2text.synth import generate
from brain2text.synth.sentences import is_eval_sentence
from brain2text.synth.text_source import day_sentences, read_sentence_file

SENTENCES = [
    "the cat sat on the mat",
    "we went to the market yesterday",
    "could you pass me the salt please",
    "it is raining again this morning",
    "she reads a book every night",
    "my brother plays the guitar",
    "they built a house near the river",
    "the train was late today",
    "please close the window",
    "he forgot his keys at home",
    "i would like a glass of water",
    "the children are playing outside",
    "what time does the store open",
    "our neighbors have a big dog",
    "the soup is too hot to eat",
    "do you want to go for a walk",
    "the meeting starts at noon",
    "a bird sang in the tree",
    "turn left at the next corner",
    "the old man smiled at us",
]


@pytest.fixture
def sentence_file(tmp_path):
    path = tmp_path / "sentences.txt"
    extra = ["", "zzyzx qwrtp", "the cat sat on the mat", " ".join(["word"] * 25)]
    path.write_text("\n".join(SENTENCES * 1 + extra) + "\n")
    return path


def test_reads_splits_and_skips(sentence_file):
    source = read_sentence_file(sentence_file)
    kept = set(source.train) | set(source.evaluation)
    assert kept == set(SENTENCES)  # blank, unpronounceable, repeated and too long lines dropped
    assert source.n_skipped == 4 and source.n_lines == len(SENTENCES) + 4
    assert all(is_eval_sentence(s) for s in source.evaluation)
    assert not any(is_eval_sentence(s) for s in source.train)


def test_days_take_disjoint_slices(sentence_file):
    source = read_sentence_file(sentence_file)
    first = day_sentences(source, 0, 0, 3, evaluation=False)
    second = day_sentences(source, 0, 1, 3, evaluation=False)
    assert len(first) == len(second) == 3 and not set(first) & set(second)
    assert first == day_sentences(source, 0, 0, 3, evaluation=False)  # regenerable alone


def test_release_speaks_the_file(tmp_path, sentence_file):
    source = read_sentence_file(sentence_file)
    n_eval = len(source.evaluation)
    out = tmp_path / "raw"
    generate(
        out, days=2, train_per_day=6, test_per_day=n_eval // 2, holdout_per_day=0, seed=3,
        progress=False, sentences=sentence_file,
    )  # fmt: skip
    spoken = {"train": [], "test": []}
    for split in spoken:
        for mat in sorted((out / split).glob("*.mat")):
            texts = sio.loadmat(mat)["sentenceText"]
            spoken[split] += [str(t).strip() for t in texts]
    assert set(spoken["train"]) <= set(source.train) and len(set(spoken["train"])) == 12
    assert set(spoken["test"]) <= set(source.evaluation)
    manifest = json.loads((out / "synth_manifest.json").read_text())
    assert manifest["sentences"]["sha256"] == source.sha256


def test_too_few_sentences_and_bad_files(tmp_path, sentence_file, capsys):
    with pytest.raises(ConfigError, match=r"sentences.txt: \d+ training-side sentences, 24 days"):
        generate(tmp_path / "a", train_per_day=40, progress=False, sentences=sentence_file)
    assert not (tmp_path / "a").exists()
    with pytest.raises(DataError, match="no such sentence file"):
        read_sentence_file(tmp_path / "missing.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="not UTF-8"):
        read_sentence_file(tmp_path / "bin.txt")
    (tmp_path / "none.txt").write_text("qwrtp zzyzx\n\n")
    with pytest.raises(DataError, match="no usable sentence"):
        read_sentence_file(tmp_path / "none.txt")
    code = main(["synth", str(tmp_path / "b"), "--layout", "b2t25", "--sentences", "x.txt"])
    assert code == 2 and "--sentences go with the competitionData layout" in capsys.readouterr().err
