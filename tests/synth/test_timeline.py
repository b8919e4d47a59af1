import dataclasses

import numpy as np

from brain2text.phonemes import phonemize, to_ids
from brain2text.synth.params import SynthParams
from brain2text.synth.session import build_world
from brain2text.synth.timeline import trial_latent

PARAMS = SynthParams()
WORLD = build_world(0, PARAMS)
IDS = np.array(to_ids(phonemize("my friend bought a new car yesterday")))


def _latent(params=PARAMS, seed=0):
    rng = np.random.default_rng(seed)
    return trial_latent(IDS, WORLD.embeddings, WORLD.neighbours, params, rng)


def _runs(labels: np.ndarray) -> list[int]:
    change = np.flatnonzero(np.diff(labels)) + 1
    return [int(labels[i]) for i in np.r_[0, change]]


def test_timeline_shape_and_rest():
    lat = _latent()
    n = len(lat.labels)  # state, envelope and labels: one row per bin
    assert lat.state.shape == (n, PARAMS.latent_dim) and lat.envelope.shape == (n,)
    assert PARAMS.rest_before_bins[0] <= lat.onset <= PARAMS.rest_before_bins[1]
    assert PARAMS.rest_after_bins[0] <= n - lat.offset <= PARAMS.rest_after_bins[1]
    assert (lat.labels[: lat.onset] == 0).all() and (lat.labels[lat.offset :] == 0).all()
    assert _runs(lat.labels[lat.onset : lat.offset]) == list(IDS)
    assert lat.envelope[lat.onset + 10] > 0.9 and lat.envelope[0] < 0.01


def test_slips_never_change_the_labels():
    sloppy = dataclasses.replace(PARAMS, slip_substitute=0.5, slip_near_delete=0.5)
    lat = _latent(sloppy)
    assert _runs(lat.labels[lat.onset : lat.offset]) == list(IDS)


def test_same_seed_same_trajectory():
    a, b = _latent(seed=5), _latent(seed=5)
    np.testing.assert_array_equal(a.state, b.state)
    assert not np.array_equal(a.state, _latent(seed=6).state[: a.state.shape[0]])
