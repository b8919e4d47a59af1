import json

import numpy as np
import pytest
import scipy.io

from brain2text.errors import ConfigError, DataError
from brain2text.phonemes import clean_text, phonemize
from brain2text.synth import DEFAULT_DAYS, generate
from brain2text.synth.sentences import is_eval_sentence
from tests.synth.conftest import TINY

FIELDS = ("tx1", "tx2", "tx3", "tx4", "spikePow")


def _load(path):
    m = scipy.io.loadmat(path)
    return m, [s.strip() for s in m["sentenceText"]]


def test_layout(tiny_release):
    days = DEFAULT_DAYS[: TINY["days"]]
    assert sorted(p.stem for p in (tiny_release / "train").glob("*.mat")) == list(days)
    assert sorted(p.stem for p in (tiny_release / "test").glob("*.mat")) == list(days)
    assert [p.stem for p in (tiny_release / "competitionHoldOut").glob("*.mat")] == [
        "t12.2022.05.24"
    ]
    assert not list(tiny_release.rglob(".*partial"))


def test_fields_read_back_with_the_real_shapes(tiny_release):
    m, texts = _load(tiny_release / "train" / "t12.2022.04.28.mat")
    n = TINY["train_per_day"]
    assert m["sentenceText"].shape == (n,) and len(texts) == n
    assert m["blockIdx"].shape == (n, 1)
    for name in FIELDS:
        assert m[name].shape == (1, n)
        for i in range(n):
            x = m[name][0, i]
            assert x.dtype == np.float64 and x.ndim == 2 and x.shape[1] == 256
            assert x.shape[0] == m["tx1"][0, i].shape[0] >= 80


def test_blocks_numbered_in_recording_order(tiny_release):
    day = "t12.2022.05.24"
    blocks = {
        split: np.unique(scipy.io.loadmat(tiny_release / split / f"{day}.mat")["blockIdx"])
        for split in ("competitionHoldOut", "train", "test")
    }
    assert list(blocks["competitionHoldOut"]) == [1, 2]
    assert list(blocks["train"]) == [3, 4]
    assert list(blocks["test"]) == [5]
    plain = scipy.io.loadmat(tiny_release / "train" / "t12.2022.04.28.mat")["blockIdx"]
    assert list(np.unique(plain)) == [1, 2]


def test_counts_nested_and_near_targets(tiny_release):
    m, _ = _load(tiny_release / "train" / "t12.2022.05.19.mat")
    tx = [np.concatenate(list(m[f"tx{k}"][0])) for k in range(1, 5)]
    for a, b in zip(tx, tx[1:], strict=False):
        assert (a >= b).all()
    for x, target in zip(tx, (0.57, 0.31, 0.22, 0.10), strict=False):
        assert abs(x.mean() - target) < 0.35 * target
    assert all(np.array_equal(x, np.round(x)) for x in tx)


def test_sentences_disjoint_and_hold_out_redacted(tiny_release):
    train = set()
    held = set()
    for day in DEFAULT_DAYS[: TINY["days"]]:
        train |= {clean_text(t) for t in _load(tiny_release / "train" / f"{day}.mat")[1]}
        held |= {clean_text(t) for t in _load(tiny_release / "test" / f"{day}.mat")[1]}
    m, redacted = _load(tiny_release / "competitionHoldOut" / "t12.2022.05.24.mat")
    assert redacted == [""] * TINY["holdout_per_day"]
    answers = json.loads((tiny_release / "holdout_answers.json").read_text())
    assert list(answers) == ["t12.2022.05.24"]
    assert len(answers["t12.2022.05.24"]) == TINY["holdout_per_day"] == m["tx1"].shape[1]
    held |= {clean_text(t) for t in answers["t12.2022.05.24"]}
    assert not train & held
    assert all(is_eval_sentence(t) for t in held)
    for text in train | held:
        phonemize(text)


def test_same_arguments_same_arrays(tmp_path, tiny_release):
    args = dict(TINY, days=1, holdout_per_day=0)  # 04.28 has no hold-out in TINY either
    generate(tmp_path / "a", progress=False, **args)
    generate(tmp_path / "b", progress=False, **args)
    for split in ("train", "test"):
        a = scipy.io.loadmat(tmp_path / "a" / split / "t12.2022.04.28.mat")
        b = scipy.io.loadmat(tmp_path / "b" / split / "t12.2022.04.28.mat")
        full = scipy.io.loadmat(tiny_release / split / "t12.2022.04.28.mat")
        for name in FIELDS:  # a day does not depend on how many days were generated
            for x, y, z in zip(a[name][0], b[name][0], full[name][0], strict=False):
                np.testing.assert_array_equal(x, y)
                np.testing.assert_array_equal(x, z)
        np.testing.assert_array_equal(a["sentenceText"], full["sentenceText"])


def test_refuses_a_folder_with_recordings(tmp_path):
    args = dict(days=1, train_per_day=2, test_per_day=1, holdout_per_day=0, progress=False)
    generate(tmp_path, **args)
    with pytest.raises(DataError, match=str(tmp_path)):
        generate(tmp_path, **args)
    generate(tmp_path, overwrite=True, **dict(args, train_per_day=3))
    assert scipy.io.loadmat(tmp_path / "train" / "t12.2022.04.28.mat")["tx1"].shape == (1, 3)


@pytest.mark.parametrize("bad", [{"days": 0}, {"days": 25}, {"train_per_day": -1}, {"seed": -2}])
def test_impossible_arguments(tmp_path, bad):
    with pytest.raises(ConfigError):
        generate(tmp_path, progress=False, **bad)
    assert not list(tmp_path.rglob("*.mat"))


def test_compact_files_hold_the_same_recordings_in_smaller_classes(tmp_path, tiny_release):
    one_day = {**TINY, "days": 1}
    generate(tmp_path / "double", progress=False, **one_day)
    generate(tmp_path / "compact", progress=False, compact=True, **one_day)
    full = scipy.io.loadmat(tmp_path / "double" / "train" / "t12.2022.04.28.mat")
    small = scipy.io.loadmat(tmp_path / "compact" / "train" / "t12.2022.04.28.mat")
    for i in range(TINY["train_per_day"]):
        assert small["tx1"][0, i].dtype == np.uint8 and small["spikePow"][0, i].dtype == np.float32
        assert np.array_equal(small["tx1"][0, i], full["tx1"][0, i])
        np.testing.assert_allclose(small["spikePow"][0, i], full["spikePow"][0, i], rtol=1e-6)
    size = lambda d: sum(p.stat().st_size for p in (tmp_path / d).rglob("*.mat"))  # noqa: E731
    assert size("compact") < size("double") / 3
