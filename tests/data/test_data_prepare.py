from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from brain2text.data.dataset import open_prepared
from brain2text.data.matfile import read_session
from brain2text.data.prepare import block_stats, prepare, trial_features, zscore
from brain2text.errors import DataError
from brain2text.phonemes import clean_text, phonemize, to_ids

DAYS = ["t12.2022.04.28", "t12.2022.05.05"]


def leftovers(out: Path) -> list[str]:
    return [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


@pytest.fixture
def prepared(tiny_raw: Path, tmp_path: Path) -> Path:
    prepare(tiny_raw, tmp_path / "out", progress=False)
    return tmp_path / "out"


def test_writes_the_format_and_manifest(tiny_raw, tmp_path):
    out = tmp_path / "prepared"
    manifest = prepare(tiny_raw, out, progress=False)

    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["format"] == "brain2text-prepared" and manifest["format_version"] == 1
    assert manifest["days"] == DAYS
    train, test, comp = (manifest["splits"][s] for s in ("train", "test", "competition"))
    assert (train["n_trials"], test["n_trials"], comp["n_trials"]) == (10, 4, 3)
    assert train["labelled"] and not comp["labelled"] and train["n_skipped"] == 0
    entry = train["sessions"]["t12.2022.05.05"]
    assert entry["source"] == "train/t12.2022.05.05.mat" and entry["day_index"] == 1
    assert list(comp["sessions"]) == ["t12.2022.05.05"]
    for name in DAYS:
        folder = out / "train" / name
        assert sorted(p.name for p in folder.iterdir()) == [
            "features.npy", "phonemes.npy", "text.json", "trials.npy"]
        features = np.load(folder / "features.npy")
        assert features.dtype == np.float32 and features.shape == (
            train["sessions"][name]["n_bins"], 256)
    assert leftovers(out) == []


def test_features_are_zscored_per_block(prepared):
    train = open_prepared(prepared).split("train")
    for day in range(2):
        for block in (1, 2):
            rows = [i for i in range(len(train)) if train.day_index[i] == day
                    and train.block[i] == block]
            x = np.concatenate([train.features(i) for i in rows]).astype(np.float64)
            np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
            np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-4)


def test_features_follow_the_reference_recipe(tiny_raw, prepared):
    ds = open_prepared(prepared)
    session = read_session(tiny_raw / "train" / f"{DAYS[0]}.mat")
    block_2 = [i for i in range(session.n_trials) if session.block_idx[i] == 2]
    x = np.concatenate([np.concatenate([session.tx1[i][:, :128], session.spike_pow[i][:, :128]],
                                       axis=1) for i in block_2])
    i = block_2[1]
    want = (trial_features(session.tx1[i], session.spike_pow[i]) - x.mean(0)) / (x.std(0) + 1e-8)
    np.testing.assert_allclose(ds.split("train").features(i), want, rtol=1e-6, atol=1e-6)


def test_block_stats_and_zscore_edges():
    a, b = np.array([[1.0, 5.0], [3.0, 5.0]]), np.array([[10.0, 0.0]])
    stats = block_stats([a, b], [7, 9])
    np.testing.assert_allclose(stats[7][0], [2.0, 5.0])
    np.testing.assert_allclose(stats[7][1], [1.0, 0.0])
    z = zscore(a, *stats[7])
    assert z.dtype == np.float32
    np.testing.assert_allclose(z, [[-1.0, 0.0], [1.0, 0.0]], atol=1e-6)  # constant column -> 0
    np.testing.assert_allclose(zscore(b, *stats[9]), [[0.0, 0.0]])  # one-bin block


def test_phonemes_text_and_days(tiny_raw, prepared):
    ds = open_prepared(prepared)
    for split_name in ("train", "test"):
        split = ds.split(split_name)
        for i in range(len(split)):
            session = read_session(tiny_raw / split_name / f"{split.session_of(i)}.mat")
            sentence = session.sentences[split.trial[i]]
            assert split.text(i) == clean_text(sentence)
            np.testing.assert_array_equal(split.phonemes(i), to_ids(phonemize(sentence)))
            assert split.day_index[i] == DAYS.index(split.session_of(i))
    comp = ds.split("competition")
    assert not comp.labelled and comp.n_phones.tolist() == [0, 0, 0]
    assert comp.day_index.tolist() == [1, 1, 1] and comp.text(0) == ""


def test_failure_leaves_no_output(tmp_path, mk):
    def add_unknown_word(folder, name, day):
        if folder == "test" and name == DAYS[1]:
            day.sentences[1] = "the zzyzxq sat"

    raw = mk.raw(tmp_path / "raw", edit=add_unknown_word)
    out = tmp_path / "out"
    with pytest.raises(DataError) as info:
        prepare(raw, out, progress=False)
    message = str(info.value)
    assert "\n" not in message and "zzyzxq" in message
    assert f"test/{DAYS[1]}.mat trial 1" in message
    assert not out.exists() and leftovers(out) == []


def test_skip_bad_trials_counts_and_records_them(tmp_path, mk, caplog):
    def spoil(folder, name, day):
        if folder == "train" and name == DAYS[0]:
            day.sentences[1] = "the zzyzxq sat"
            day.tx1[3][2, 5] = np.nan

    raw = mk.raw(tmp_path / "raw", edit=spoil)
    manifest = prepare(raw, tmp_path / "out", skip_bad_trials=True, progress=False)

    train = manifest["splits"]["train"]
    assert train["n_skipped"] == 2 and train["n_trials"] == 8
    assert [(s["file"], s["trial"]) for s in train["skipped"]] == [
        (f"train/{DAYS[0]}.mat", 1), (f"train/{DAYS[0]}.mat", 3)]
    assert "zzyzxq" in train["skipped"][0]["reason"] and "NaN" in train["skipped"][1]["reason"]
    assert "skipped 2 bad trials" in caplog.text
    split = open_prepared(tmp_path / "out").split("train")
    assert split.trial[:3].tolist() == [0, 2, 4]
    assert split.describe(1) == f"train/{DAYS[0]}.mat trial 2"


def test_existing_output_needs_overwrite(tiny_raw, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="--overwrite"):
        prepare(tiny_raw, out, progress=False)
    with pytest.raises(DataError, match="not a prepared dataset"):  # never deletes a foreign folder
        prepare(tiny_raw, out, overwrite=True, progress=False)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_overwrite_replaces_only_after_success(tiny_raw, tmp_path):
    out = tmp_path / "out"
    first = prepare(tiny_raw, out, progress=False)
    (tiny_raw / "test" / f"{DAYS[0]}.mat").write_bytes(b"garbage")
    with pytest.raises(DataError, match="MATLAB"):
        prepare(tiny_raw, out, overwrite=True, progress=False)
    assert json.loads((out / "manifest.json").read_text()) == first  # old one intact

    (tiny_raw / "test" / f"{DAYS[0]}.mat").unlink()  # now overwrite for real
    second = prepare(tiny_raw, out, overwrite=True, progress=False)
    assert list(second["splits"]["test"]["sessions"]) == [DAYS[1]]
    assert not (out / "test" / DAYS[0]).exists() and leftovers(out) == []


def test_empty_output_folder_is_fine(tiny_raw, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    prepare(tiny_raw, out, progress=False)
    assert (out / "manifest.json").is_file()


def test_unknown_day(tmp_path, mk):
    raw = mk.raw(tmp_path / "raw")
    mk.v5(raw / "test" / "t12.2022.09.01.mat", mk.day(blocks=(4,)))
    with pytest.raises(DataError, match=r"t12\.2022\.09\.01\.mat: unknown day"):
        prepare(raw, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_needs_train_files(tmp_path):
    (tmp_path / "raw" / "test").mkdir(parents=True)
    with pytest.raises(DataError, match="train"):
        prepare(tmp_path / "raw", tmp_path / "out", progress=False)
    with pytest.raises(DataError, match="no such folder"):
        prepare(tmp_path / "nowhere", tmp_path / "out", progress=False)
