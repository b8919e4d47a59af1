"""prepare on Brain-to-Text '25 sessions: the same prepared format, 512 features, the release's
own splits and labels, the label check, and the errors of a malformed release."""

import json

import numpy as np
import pytest

from brain2text.data.dataset import open_prepared
from brain2text.data.prepare import prepare
from brain2text.errors import ConfigError, DataError
from brain2text.phonemes import phonemize, to_ids, to_symbols
from tests.data.test_data_b2t25 import session_file, trial


def _release(root, sessions=("t15.2023.08.11", "t15.2023.08.13")):
    """Two sessions: a train file each, val and test files for the second one."""
    good = to_ids(phonemize("hello world"))
    for _k, name in enumerate(sessions):
        session_file(
            root, "train", name, [trial(ids=good, number=i, block=1 + i % 2) for i in range(4)]
        )
    session_file(root, "val", sessions[-1], [trial(ids=good, number=i, block=3) for i in range(2)])
    session_file(
        root, "test", sessions[-1], [trial(number=i, block=4, labelled=False) for i in range(3)]
    )
    return root


def test_a_release_is_prepared_with_its_own_splits_and_512_features(tmp_path):
    raw = _release(tmp_path / "hdf5_data_final")
    manifest = prepare(tmp_path, tmp_path / "prep", progress=False)  # the folder above works
    assert manifest.kind == "b2t25" and manifest.n_features == 512
    assert manifest.features.normalization == "none" and len(manifest.features.feature_names) == 2
    assert manifest.days == ("t15.2023.08.11", "t15.2023.08.13")
    assert {k: v.n_trials for k, v in manifest.splits.items()} == {
        "train": 8,
        "val": 2,
        "test": 3,
    }
    assert manifest.label_check is not None
    assert manifest.label_check.n_checked == 10 and manifest.label_check.n_mismatched == 0
    data = open_prepared(tmp_path / "prep")
    assert data.n_features == 512 and not data.split("test").labelled
    val = data.split("val")
    assert val.phonemes(0).tolist() == to_ids(phonemize("hello world"))
    assert val.text(0) == "hello world" and val.day_index[0] == 1
    import h5py

    with h5py.File(raw / "t15.2023.08.13" / "data_val.hdf5") as f:  # not re-normalised
        assert np.array_equal(val.features(0), f["trial_0000/input_features"][()])
    again = prepare(raw, tmp_path / "prep2", progress=False)  # hdf5_data_final itself too
    assert again.splits["train"].n_trials == 8


def test_block_normalisation_is_there_when_asked(tmp_path):
    _release(tmp_path / "hdf5_data_final")
    prepare(tmp_path, tmp_path / "prep", progress=False, normalize="block")
    data = open_prepared(tmp_path / "prep")
    assert data.manifest.features.normalization == "block"
    train = data.split("train")
    block = np.concatenate([train.features(i) for i in range(len(train)) if train.block[i] == 1])
    assert np.allclose(block.mean(axis=0), 0, atol=1e-5)


def test_labels_that_differ_from_ours_are_counted_listed_and_kept(tmp_path):
    root = _release(tmp_path / "hdf5_data_final")
    session_file(
        root,
        "train",
        "t15.2023.08.11",
        [trial(ids=(5, 12, 40), number=0), trial(ids=(5, 12, 40), number=1)],
    )
    manifest = prepare(tmp_path, tmp_path / "prep", progress=False)
    check = manifest.label_check
    assert check is not None and check.n_mismatched == 2 and len(check.listed) == 2
    first = check.listed[0]
    assert first.trial == 0 and first.sentence == "hello world"
    assert first.released == " ".join(to_symbols([5, 12, 40]))
    assert first.ours == " ".join(phonemize("hello world"))
    assert open_prepared(tmp_path / "prep").split("train").phonemes(0).tolist() == [5, 12, 40]


def test_a_val_file_without_a_train_file_has_no_day(tmp_path):
    root = _release(tmp_path / "hdf5_data_final")
    session_file(root, "val", "t15.2023.08.20", [trial(number=0)])
    with pytest.raises(DataError, match="t15.2023.08.20 has no data_train.hdf5"):
        prepare(tmp_path, tmp_path / "prep", progress=False)
    assert not (tmp_path / "prep").exists()


def test_a_bad_trial_stops_prepare_naming_it_and_nothing_is_lost(tmp_path):
    root = _release(tmp_path / "hdf5_data_final")
    before = prepare(tmp_path, tmp_path / "prep", progress=False)
    session_file(root, "train", "t15.2023.08.13", [trial(number=0), trial(number=1, seq_len=501)])
    with pytest.raises(DataError) as info:
        prepare(tmp_path, tmp_path / "prep", progress=False, overwrite=True)
    assert "t15.2023.08.13/data_train.hdf5 trial_0001: seq_len is 501" in str(info.value)
    assert open_prepared(tmp_path / "prep").manifest.created == before.created
    with pytest.raises(ConfigError, match="--skip-bad-trials"):
        prepare(tmp_path, tmp_path / "prep2", progress=False, skip_bad_trials=True)
    with pytest.raises(ConfigError, match="--normalize zscore"):
        prepare(tmp_path, tmp_path / "prep3", progress=False, normalize="zscore")


def test_two_layouts_in_one_folder_are_refused(tmp_path):
    _release(tmp_path / "hdf5_data_final")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "t12.2022.04.28.mat").write_bytes(b"")
    with pytest.raises(DataError, match="mixed layouts"):
        prepare(tmp_path, tmp_path / "prep", progress=False)


def test_prepare_on_the_cli_reports_the_label_check(tmp_path, capsys):
    from brain2text.cli import main

    _release(tmp_path / "hdf5_data_final")
    assert main(["prepare", str(tmp_path), str(tmp_path / "prep"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "prepared 2 days (train 8, val 2, test 3 trials)" in out
    assert "0 of 10 differ" in out
    assert json.loads((tmp_path / "prep" / "manifest.json").read_text())["kind"] == "b2t25"
