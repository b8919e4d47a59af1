"""One features computation: what ``prepare`` writes is what decoding a raw file recomputes."""

from __future__ import annotations

import numpy as np
import pytest

from brain2text.data.dataset import open_prepared
from brain2text.data.features import block_stats, normalized, pack, zscore
from brain2text.data.prepare import prepare
from brain2text.data.recording import read_recording
from tests.data.test_data_prepare_b2t25 import _release

DAY = "t12.2022.05.05"


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"features": ["tx2", "spikePow"], "arrays": ["6v", "44"]},
        {"normalize": "none"},
    ],
)
def test_a_2023_file_decodes_to_the_features_prepare_wrote(tiny_raw, tmp_path, options):
    prepare(tiny_raw, tmp_path / "p", progress=False, **options)
    data = open_prepared(tmp_path / "p")
    test = data.split("test")
    trials = read_recording(tiny_raw / "test" / f"{DAY}.mat", data.feature_spec)
    prepared = [i for i in range(len(test)) if test.session_of(i) == DAY]
    assert len(trials) == len(prepared)
    for trial, i in zip(trials, prepared, strict=True):
        assert trial.trial == test.trial[i] and trial.day == DAY
        assert np.array_equal(trial.features, test.features(i))  # bit for bit


@pytest.mark.parametrize("normalize", ["none", "block"])
def test_a_b2t25_file_decodes_to_the_features_prepare_wrote(tmp_path, normalize):
    root = _release(tmp_path / "hdf5_data_final")
    prepare(tmp_path, tmp_path / "p", progress=False, normalize=normalize)
    data = open_prepared(tmp_path / "p")
    val = data.split("val")
    trials = read_recording(root / "t15.2023.08.13" / "data_val.hdf5", data.feature_spec)
    assert [t.trial for t in trials] == val.trial.tolist()
    for trial, i in zip(trials, range(len(val)), strict=True):
        assert np.array_equal(trial.features, val.features(i))


def test_training_statistics_are_those_of_every_bin_of_the_day(tiny_raw, tmp_path):
    prepare(tiny_raw, tmp_path / "p", progress=False, normalize="none")
    data = open_prepared(tmp_path / "p")
    train = data.split("train")
    bins = np.concatenate(
        [train.features(i) for i in range(len(train)) if train.session_of(i) == DAY]
    ).astype(np.float64)  # not z-scored: the features as recorded
    stats = data.feature_spec.day_norm[DAY]
    np.testing.assert_allclose(stats.mean, bins.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.std, bins.std(0), rtol=1e-6)


def test_block_normalisation_uses_each_blocks_own_statistics():
    rng = np.random.default_rng(0)
    trials = [rng.normal(k, 1.0 + k, (5 + k, 3)) for k in range(4)]
    blocks = np.array([7, 7, 9, 9])
    out = list(normalized(trials, blocks, "block"))
    stats = block_stats(trials, blocks)
    assert set(stats) == {7, 9}
    both = np.concatenate(out[:2])
    np.testing.assert_allclose(both.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(both.std(0), 1.0, atol=1e-5)
    assert all(x.dtype == np.float32 for x in out)
    assert np.array_equal(out[3], zscore(trials[3], *stats[9]))
    as_recorded = list(normalized(trials, blocks, "none"))
    assert np.array_equal(as_recorded[1], trials[1].astype(np.float32))


def test_pack_lays_trials_end_to_end_and_checks_the_total():
    a, b = np.ones((2, 3)), np.full((4, 3), 2.0)
    packed = pack([a, b], 6, 3)
    assert packed.dtype == np.float32 and packed[:2].sum() == 6 and packed[2:].sum() == 24
    with pytest.raises(ValueError, match="5 bins packed into an array of 6"):
        pack([np.ones((5, 3))], 6, 3)
