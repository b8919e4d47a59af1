import numpy as np

from brain2text.synth.electrodes import (
    DORSAL_6V,
    INFERIOR_44,
    SUPERIOR_44,
    VENTRAL_6V,
    array_of,
)
from brain2text.synth.generate import simulate_day
from brain2text.synth.params import SynthParams
from brain2text.synth.session import build_world

PARAMS = SynthParams()
WORLD = build_world(0, PARAMS)
DAY = list(simulate_day(WORLD, 2, 30, 0, 0, seed=0, params=PARAMS))[0]


def test_counts_nested_and_dead_channels_silent():
    dead = WORLD.days[2].dead
    for rec in DAY.recordings:
        tx = rec.tx.astype(int)
        assert (tx[:-1] >= tx[1:]).all()
        assert not tx[0][:, dead].any()
        assert (rec.spike_pow > 0).all()


def test_spike_power_floor():
    rest = np.stack([r.spike_pow[:10].mean(axis=0) for r in DAY.recordings])
    floor = np.median(rest, axis=0)[~WORLD.days[2].dead]
    assert 100 < np.percentile(floor, 5) and np.percentile(floor, 95) < 1000
    assert 400 < np.median(floor) < 620


def test_area_6v_columns_carry_the_phoneme_information():
    labels = np.concatenate(DAY.labels)
    tx1 = np.concatenate([r.tx[0] for r in DAY.recordings]).astype(float)
    phonemes = [p for p in np.unique(labels) if p != 0 and (labels == p).sum() >= 100]
    means = np.stack([tx1[labels == p].mean(axis=0) for p in phonemes])  # (P, 256)
    live = tx1.mean(axis=0) > 0.05
    # relative variance of the phoneme-conditioned means (includes an estimation-noise floor)
    spread = (means.std(axis=0) / np.maximum(tx1.mean(axis=0), 1e-9)) ** 2
    arrays = array_of()
    by_array = {a: np.median(spread[(arrays == a) & live]) for a in range(4)}
    area_44 = max(by_array[INFERIOR_44], by_array[SUPERIOR_44])
    assert by_array[VENTRAL_6V] > 3 * area_44
    assert by_array[VENTRAL_6V] > by_array[DORSAL_6V] > area_44
