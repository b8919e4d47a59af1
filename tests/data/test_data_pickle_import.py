from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from brain2text.data.dataset import open_prepared
from brain2text.data.pickle_import import REAL_DAYS, import_pickle
from brain2text.errors import DataError
from brain2text.phonemes import phonemize, to_ids

SENTENCES = ("Hello world.", "I think so", "The cat sat")


def day_dict(seed: int, n: int = 3) -> dict:
    """A day of the reference notebook's ptDecoder_ctc pickle (already z-scored features)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 9, n)
    phonemes, phone_lens = [], []
    for i in range(n):
        ids = to_ids(phonemize(SENTENCES[i % 3]))
        padded = np.zeros(500, np.int32)
        padded[: len(ids)] = ids
        phonemes.append(padded)
        phone_lens.append(len(ids))
    return {
        "sentenceDat": [rng.standard_normal((t, 256)) for t in lengths],
        "transcriptions": [np.str_(SENTENCES[i % 3]) for i in range(n)],
        "phonemes": phonemes,
        "timeSeriesLens": np.array(lengths),
        "phoneLens": np.array(phone_lens),
        "phonePerTime": np.array(phone_lens, np.float32) / lengths.astype(np.float32),
    }


def write_pickle(path: Path, n_train: int = 2, n_comp: int = 1, protocol: int = 4) -> dict:
    data = {
        "train": [day_dict(k) for k in range(n_train)],
        "test": [day_dict(100 + k, n=2) for k in range(n_train)],
        "competition": [day_dict(200 + k, n=2) for k in range(n_comp)],
    }
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    return data


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_imports_days_as_they_are(tmp_path, protocol):
    data = write_pickle(tmp_path / "ptDecoder_ctc", protocol=protocol)
    manifest = import_pickle(tmp_path / "ptDecoder_ctc", tmp_path / "out", progress=False)

    assert manifest.days == ("day00", "day01")
    assert manifest.splits["train"].n_trials == 6
    ds = open_prepared(tmp_path / "out")
    train = ds.split("train")
    assert train.sessions == ["day00", "day01"] and train.day_index.tolist() == [0] * 3 + [1] * 3
    for i in range(len(train)):
        k, j = divmod(i, 3)
        np.testing.assert_allclose(
            train.features(i), data["train"][k]["sentenceDat"][j], rtol=1e-6
        )  # stored as-is (float32)
        np.testing.assert_array_equal(
            train.phonemes(i), data["train"][k]["phonemes"][j][: data["train"][k]["phoneLens"][j]]
        )
    assert train.text(0) == "hello world" and train.block.tolist() == [-1] * 6
    assert train.describe(4) == "ptDecoder_ctc:train[1] trial 1"
    assert ds.split("test").sessions == ["day00", "day01"]
    comp = ds.split("competition")
    assert comp.sessions == ["competition00"] and comp.day_index.tolist() == [-1, -1]
    assert not comp.labelled and comp.n_phones.tolist() == [0, 0]


def test_competition_days_keyword(tmp_path):
    write_pickle(tmp_path / "p.pkl", n_comp=1)
    import_pickle(tmp_path / "p.pkl", tmp_path / "out", competition_days=["day01"], progress=False)
    comp = open_prepared(tmp_path / "out").split("competition")
    assert comp.sessions == ["day01"] and comp.day_index.tolist() == [1, 1]
    with pytest.raises(DataError, match="competition-days"):
        import_pickle(
            tmp_path / "p.pkl", tmp_path / "o2", competition_days=["day07"], progress=False
        )


def test_reference_layout_gets_real_dates(tmp_path):
    data = {
        "train": [day_dict(k, n=1) for k in range(24)],
        "test": [day_dict(k, n=1) for k in range(24)],
        "competition": [day_dict(k, n=1) for k in range(15)],
    }
    (tmp_path / "p.pkl").write_bytes(pickle.dumps(data))
    manifest = import_pickle(tmp_path / "p.pkl", tmp_path / "out", progress=False)
    assert manifest.days == REAL_DAYS
    comp = open_prepared(tmp_path / "out").split("competition")
    assert comp.day_index.tolist() == [4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 18, 19, 20]
    assert comp.sessions[0] == "t12.2022.05.24" and comp.sessions[-1] == "t12.2022.08.13"


class Payload:
    """Runs a shell command when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Custom:
    pass


@pytest.mark.parametrize(
    "make, refused",
    [
        (lambda marker: {"train": [Payload(marker)]}, "system"),
        (lambda marker: {"train": [{"sentenceDat": [Custom()]}]}, "Custom"),
    ],
)
def test_refuses_code_in_the_pickle(tmp_path, make, refused):
    marker = tmp_path / "pwned"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(make(marker)))
    with pytest.raises(DataError) as info:
        import_pickle(tmp_path / "evil.pkl", tmp_path / "out", progress=False)
    message = str(info.value)
    assert "evil.pkl" in message and refused in message and "\n" not in message
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.pkl"]


def test_bad_pickles(tmp_path):
    write_pickle(tmp_path / "p.pkl")
    data = (tmp_path / "p.pkl").read_bytes()
    (tmp_path / "cut.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.pkl: not a readable pickle"):
        import_pickle(tmp_path / "cut.pkl", tmp_path / "out", progress=False)
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DataError, match="list.pkl: expected a dict"):
        import_pickle(tmp_path / "list.pkl", tmp_path / "out", progress=False)
    bad = {"train": [day_dict(0)]}
    bad["train"][0]["sentenceDat"][1][2, 7] = np.nan
    (tmp_path / "nan.pkl").write_bytes(pickle.dumps(bad))
    with pytest.raises(DataError, match=r"nan.pkl: train\[0\] trial 1: .*NaN"):
        import_pickle(tmp_path / "nan.pkl", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_output_rules_match_prepare(tmp_path):
    write_pickle(tmp_path / "p.pkl")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(DataError, match="--overwrite"):
        import_pickle(tmp_path / "p.pkl", tmp_path / "out", progress=False)
    import_pickle(tmp_path / "p.pkl", tmp_path / "new", progress=False)
    import_pickle(tmp_path / "p.pkl", tmp_path / "new", overwrite=True, progress=False)
    assert open_prepared(tmp_path / "new").n_days == 2
