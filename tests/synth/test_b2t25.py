import json

import h5py
import numpy as np
import pytest

from brain2text.errors import ConfigError, DataError
from brain2text.phonemes import phonemize, to_ids
from brain2text.synth.b2t25 import (
    ANSWERS_FILE,
    B2T25_SESSIONS,
    DATA_FOLDER,
    ELECTRODE_ORDER,
    N_FEATURES,
    PAD_LENGTH,
    generate_b2t25,
)
from brain2text.synth.electrodes import (
    DORSAL_6V,
    INFERIOR_44,
    SUPERIOR_44,
    VENTRAL_6V,
    array_of,
)

SMALL = {"sessions": 3, "train_per_session": 8, "val_per_session": 3, "test_per_session": 3,
         "seed": 5}  # fmt: skip
SESSIONS = B2T25_SESSIONS[:3]
LABELLED_DATASETS = {"input_features", "seq_class_ids", "transcription"}
LABELLED_ATTRS = {"n_time_steps", "seq_len", "sentence_label", "session", "block_num",
                  "trial_num"}  # fmt: skip
TEST_ATTRS = {"n_time_steps", "session", "block_num", "trial_num"}


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("b2t25")
    root = generate_b2t25(out, progress=False, **SMALL)
    return out, root


def _trials(path):
    with h5py.File(path, "r") as f:
        return [({k: f[name][k][()] for k in f[name]}, dict(f[name].attrs)) for name in f], list(f)


def test_file_tree_first_session_train_only(release):
    out, root = release
    assert root == out / DATA_FOLDER
    assert sorted(p.name for p in root.iterdir()) == list(SESSIONS)
    assert [p.name for p in (root / SESSIONS[0]).iterdir()] == ["data_train.hdf5"]
    for name in SESSIONS[1:]:
        assert sorted(p.name for p in (root / name).iterdir()) == [
            "data_test.hdf5", "data_train.hdf5", "data_val.hdf5"
        ]  # fmt: skip
    assert not list(out.rglob(".*partial"))


@pytest.mark.parametrize("split,n", [("train", 8), ("val", 3)])
def test_labelled_groups(release, split, n):
    _, root = release
    blocks = []
    for name in SESSIONS if split == "train" else SESSIONS[1:]:
        trials, groups = _trials(root / name / f"data_{split}.hdf5")
        assert groups == [f"trial_{i:04d}" for i in range(n)]
        for data, attrs in trials:
            assert set(data) == LABELLED_DATASETS and set(attrs) == LABELLED_ATTRS
            x = data["input_features"]
            assert x.dtype == np.float32 and x.shape == (attrs["n_time_steps"], N_FEATURES)
            assert np.isfinite(x).all()
            assert attrs["session"] == name
            ids, text = data["seq_class_ids"], data["transcription"]
            assert ids.dtype == np.int32 and ids.shape == (PAD_LENGTH,)
            assert text.dtype == np.int32 and text.shape == (PAD_LENGTH,)
            sentence, k = attrs["sentence_label"], attrs["seq_len"]
            assert isinstance(sentence, str) and ids[:k].tolist() == to_ids(phonemize(sentence))
            assert (ids[k:] == 0).all() and (ids[:k] > 0).all() and ids.max() <= 40
            assert "".join(map(chr, text[: len(sentence)])) == sentence
            assert (text[len(sentence) :] == 0).all()
        blocks.append([(a["block_num"], a["trial_num"]) for _, a in trials])
    for session_blocks in blocks:  # trial_num counts from 0 within each block
        numbers = [b for b, _ in session_blocks]
        for b in set(numbers):
            assert [t for bb, t in session_blocks if bb == b] == list(range(numbers.count(b)))


def test_test_files_are_unlabelled_and_answers_hold_their_sentences(release):
    out, root = release
    answers = json.loads((out / ANSWERS_FILE).read_text())
    assert list(answers) == list(SESSIONS[1:])
    for name in SESSIONS[1:]:
        trials, groups = _trials(root / name / "data_test.hdf5")
        assert len(groups) == 3 and len(answers[name]) == 3
        for data, attrs in trials:
            assert set(data) == {"input_features"} and set(attrs) == TEST_ATTRS
            assert data["input_features"].shape[1] == N_FEATURES
        val, _ = _trials(root / name / "data_val.hdf5")
        train, _ = _trials(root / name / "data_train.hdf5")
        labelled = {a["sentence_label"] for _, a in val + train}
        assert not labelled & set(answers[name])
        # test blocks are recorded first, then train, then the val block
        blocks = [[a["block_num"] for _, a in t] for t in (trials, train, val)]
        assert max(blocks[0]) < min(blocks[1]) and max(blocks[1]) < min(blocks[2])


def test_features_are_zscored_per_block(release):
    _, root = release
    trials, _ = _trials(root / SESSIONS[1] / "data_train.hdf5")
    by_block: dict[int, list[np.ndarray]] = {}
    for data, attrs in trials:
        by_block.setdefault(attrs["block_num"], []).append(data["input_features"])
    assert len(by_block) >= 2
    for xs in by_block.values():
        x = np.concatenate(xs).astype(np.float64)
        assert np.abs(x.mean(axis=0)).max() < 1e-4
        std = x.std(axis=0)
        live = std > 0  # dead electrodes stay at 0
        assert live.sum() > 400
        np.testing.assert_allclose(std[live], 1.0, atol=1e-4)
        assert (x[:, ~live] == 0).all()


def test_electrode_order_keeps_arrays_of_64():
    arrays = array_of()[ELECTRODE_ORDER]
    assert sorted(ELECTRODE_ORDER.tolist()) == list(range(256))
    expected = (VENTRAL_6V, SUPERIOR_44, INFERIOR_44, DORSAL_6V)
    for i, array in enumerate(expected):
        assert (arrays[64 * i : 64 * (i + 1)] == array).all()


def test_equal_seed_gives_identical_arrays_whatever_the_session_count(release, tmp_path):
    _, root = release
    again = generate_b2t25(tmp_path, progress=False, **{**SMALL, "sessions": 2})
    for name in SESSIONS[:2]:
        for path in sorted((root / name).glob("*.hdf5")):
            a, groups_a = _trials(path)
            b, groups_b = _trials(again / name / path.name)
            assert groups_a == groups_b
            for (da, aa), (db, ab) in zip(a, b, strict=True):
                assert aa == ab
                for key in da:
                    np.testing.assert_array_equal(da[key], db[key])


def test_refuses_existing_files_unless_overwrite(tmp_path):
    tiny = {"sessions": 2, "train_per_session": 2, "val_per_session": 1,
            "test_per_session": 1, "progress": False}  # fmt: skip
    root = generate_b2t25(tmp_path, **tiny)
    with pytest.raises(DataError, match=DATA_FOLDER) as err:
        generate_b2t25(tmp_path, **tiny)
    assert "\n" not in str(err.value)
    stale = root / "t15.2099.01.01" / "data_train.hdf5"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    generate_b2t25(tmp_path, **{**tiny, "sessions": 1}, overwrite=True)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "t15.2023.08.11", "t15.2023.08.11/data_train.hdf5"
    ]  # fmt: skip
    assert json.loads((tmp_path / ANSWERS_FILE).read_text()) == {}


@pytest.mark.parametrize("bad", [
    {"sessions": 0}, {"sessions": 46}, {"sessions": 2.5}, {"train_per_session": -1},
    {"val_per_session": -2}, {"test_per_session": -1}, {"seed": -1},
])  # fmt: skip
def test_bad_arguments(tmp_path, bad):
    with pytest.raises(ConfigError) as err:
        generate_b2t25(tmp_path, progress=False, **bad)
    assert "\n" not in str(err.value)
    assert not (tmp_path / DATA_FOLDER).exists()
