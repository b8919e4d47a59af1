from __future__ import annotations

import json
import mmap
from pathlib import Path

import numpy as np
import pytest

from brain2text.data.dataset import open_prepared
from brain2text.data.feature_spec import STANDARD_2023
from brain2text.data.prepare import prepare
from brain2text.data.writer import SessionArrays, finish, split_entry, write_session
from brain2text.errors import DataError

DAY = "t12.2022.04.28"


@pytest.fixture
def prepared(tiny_raw: Path, tmp_path: Path) -> Path:
    prepare(tiny_raw, tmp_path / "out", progress=False)
    return tmp_path / "out"


def test_split_api(prepared):
    ds = open_prepared(prepared)
    assert ds.days == [DAY, "t12.2022.05.05"] and ds.n_days == 2 and ds.path == prepared
    assert ds.has_split("competition") and not ds.has_split("val")
    train = ds.split("train")
    assert train.name == "train" and train.labelled and len(train) == 10
    assert train.sessions == ds.days
    for array in (train.n_bins, train.n_phones, train.day_index, train.block, train.trial):
        assert array.dtype == np.int64 and array.shape == (10,)
    assert train.day_index.tolist() == [0] * 5 + [1] * 5
    assert train.trial.tolist() == [0, 1, 2, 3, 4] * 2
    assert train.session_of(7) == "t12.2022.05.05"
    assert train.describe(7) == "train/t12.2022.05.05.mat trial 2"
    assert ds.split("competition").describe(0) == "competitionHoldOut/t12.2022.05.05.mat trial 0"
    assert train.text(6) == "the cat sat on the mat" and train.text(-1) == "we can go there today"
    assert train.phonemes(0).dtype == np.int64 and len(train.phonemes(0)) == train.n_phones[0]
    with pytest.raises(IndexError):
        train.features(10)


def test_features_are_read_only_views_of_the_mapping(prepared):
    split = open_prepared(prepared).split("train")
    x = split.features(3)
    assert not x.flags.owndata and isinstance(x.base, (np.ndarray, mmap.mmap))  # no copy
    assert x.dtype == np.float32 and x.shape == (split.n_bins[3], 256)
    assert not x.flags.writeable
    with pytest.raises(ValueError):
        x[0, 0] = 1.0


def test_copy_features_equals_the_file(prepared):
    split = open_prepared(prepared).split("train")
    for i in range(len(split)):
        file = prepared / "train" / split.session_of(i) / "features.npy"
        rows = np.load(file)
        start = int(np.load(file.with_name("trials.npy"))[split.trial[i], 0])
        want = rows[start : start + split.n_bins[i]]
        got = split.copy_features(i)
        assert got.dtype == np.float32 and got.flags.writeable and got.flags.owndata
        np.testing.assert_array_equal(got, want)
        out = np.full((split.n_bins[i] + 3, 256), 7.0, dtype=np.float32)
        target = out[: split.n_bins[i]]
        assert split.copy_features(i, out=target) is target  # written in place, not a copy
        np.testing.assert_array_equal(out[: split.n_bins[i]], want)
        assert np.all(out[split.n_bins[i] :] == 7.0)  # nothing written past the trial
    np.testing.assert_array_equal(split.copy_features(-1), split.features(-1))


def _big_prepared(root: Path, n_trials: int, n_bins: int) -> Path:
    """A one-session prepared folder of n_trials x n_bins x 256 float32 features."""
    features = np.empty((n_trials * n_bins, 256), dtype=np.float32)
    features[:] = np.arange(n_trials * n_bins, dtype=np.float32)[:, None]  # every page written
    lengths = np.full(n_trials, n_bins, dtype=np.int64)
    ones = np.ones(n_trials, dtype=np.int64)
    trials = np.stack(
        [
            np.arange(n_trials) * n_bins,
            lengths,
            np.arange(n_trials),
            ones,
            ones,
            np.arange(n_trials),
        ],
        axis=1,
    )
    arrays = SessionArrays(features, trials, np.ones(n_trials, np.uint8), ["a"] * n_trials)
    sessions = {DAY: write_session(root / "train" / DAY, arrays, f"train/{DAY}.mat", 0)}
    train = split_entry(True, sessions)
    finish(root, [DAY], {"train": train}, STANDARD_2023, description="test", source="test")
    return root


def _rss_file_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    pytest.skip("no RssFile in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_reading_every_trial_does_not_keep_the_file_resident(tmp_path):
    n_trials, n_bins = 500, 250  # 125,000 bins: 128 MB of float32
    split = open_prepared(_big_prepared(tmp_path / "big", n_trials, n_bins)).split("train")
    size_kib = n_trials * n_bins * 256 * 4 // 1024

    before = _rss_file_kib()
    order = np.random.default_rng(0).permutation(n_trials)  # as training reads: neighbours late
    for i in order:
        x = split.copy_features(int(i))
    assert x[0, 0] == order[-1] * n_bins
    grown = _rss_file_kib() - before
    assert grown < size_kib // 8, f"RssFile grew by {grown} KiB reading a {size_kib} KiB file"

    # The measurement can see the difference: reading through views keeps every page.
    before = _rss_file_kib()
    total = sum(float(split.features(i)[:, 0].sum()) for i in range(len(split)))
    assert total > 0 and _rss_file_kib() - before > size_kib // 2


def test_missing_split_names_the_folder(prepared):
    manifest = json.loads((prepared / "manifest.json").read_text())
    del manifest["splits"]["test"], manifest["splits"]["competition"]
    (prepared / "manifest.json").write_text(json.dumps(manifest))
    ds = open_prepared(prepared)
    with pytest.raises(DataError, match=rf"{prepared}: no 'test' split .*it has: train"):
        ds.split("test")


def error_of(path: Path) -> str:
    with pytest.raises(DataError) as info:
        open_prepared(path)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_not_a_folder(tmp_path):
    assert "no such folder" in error_of(tmp_path / "nothing")
    (tmp_path / "file").write_text("x")
    assert "not a folder" in error_of(tmp_path / "file")


def test_no_manifest(tmp_path):
    (tmp_path / "half").mkdir()
    assert "interrupted" in error_of(tmp_path / "half")


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"format": "something-else"}, "not a brain2text prepared dataset"),
        ({"format_version": 2}, "update brain2text"),
        ({"format_version": 0}, "prepare the dataset again"),
        ({"days": "t12"}, "'days'"),
    ],
)
def test_wrong_format_or_version(prepared, change, expected):
    manifest = json.loads((prepared / "manifest.json").read_text())
    (prepared / "manifest.json").write_text(json.dumps({**manifest, **change}))
    assert expected in error_of(prepared)


def test_unreadable_manifest(prepared):
    (prepared / "manifest.json").write_text("{not json")
    assert "manifest.json: unreadable" in error_of(prepared)


def test_missing_array_file(prepared):
    (prepared / "test" / DAY / "phonemes.npy").unlink()
    message = error_of(prepared)
    assert f"test/{DAY}/phonemes.npy: missing" in message


def test_short_feature_file(prepared):
    file = prepared / "train" / DAY / "features.npy"
    data = file.read_bytes()
    file.write_bytes(data[: len(data) - 1000])
    assert f"train/{DAY}/features.npy" in error_of(prepared)


def test_sizes_checked_against_manifest(prepared):
    manifest = json.loads((prepared / "manifest.json").read_text())
    manifest["splits"]["train"]["sessions"][DAY]["n_bins"] += 1
    (prepared / "manifest.json").write_text(json.dumps(manifest))
    assert "the manifest expects float32 (" in error_of(prepared)


def test_inconsistent_trial_index(prepared):
    file = prepared / "train" / DAY / "trials.npy"
    trials = np.load(file)
    trials[1, 0] += 1  # start no longer follows the previous trial
    np.save(file, trials)
    assert "trial index inconsistent" in error_of(prepared)
