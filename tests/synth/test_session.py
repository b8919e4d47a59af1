import numpy as np

from brain2text.synth.electrodes import DORSAL_6V, VENTRAL_6V, array_of
from brain2text.synth.params import SynthParams
from brain2text.synth.schedule import DEFAULT_DAYS, MOUTHED_DAYS
from brain2text.synth.session import build_world, correlation_by_gap, tuning_correlation

PARAMS = SynthParams()
WORLD = build_world(0, PARAMS)


def test_tuning_correlation_falls_with_day_gap():
    near, month, two_months = correlation_by_gap(
        tuning_correlation(WORLD), ((2, 7), (25, 35), (55, 65))
    )
    assert near > month > two_months
    assert 0.75 <= near <= 0.95 and 0.45 <= month <= 0.65 and 0.32 <= two_months <= 0.52


def test_ventral_more_informative_than_dorsal_than_area_44():
    arrays = array_of()
    power = {a: (WORLD.channel_scale[arrays == a] ** 2).sum() for a in range(4)}
    assert 1.5 <= power[VENTRAL_6V] / power[DORSAL_6V] <= 3.0
    assert max(power[2], power[3]) < 0.05 * power[DORSAL_6V]


def test_mouthed_days_have_weaker_tuning():
    norms = {d.name: np.linalg.norm(d.tuning[:128]) for d in WORLD.days}
    mouthed = np.mean([norms[d] for d in MOUTHED_DAYS])
    vocal = np.mean([v for d, v in norms.items() if d not in MOUTHED_DAYS])
    assert mouthed < 0.8 * vocal


def test_dead_electrodes_stay_dead():
    dead = np.stack([d.dead for d in WORLD.days])
    assert (dead[1:] >= dead[:-1]).all()
    assert 0.005 < dead[0].mean() < 0.08 and dead[-1].sum() >= dead[0].sum()


def test_world_depends_on_the_seed_only():
    again = build_world(0, PARAMS)
    other = build_world(1, PARAMS)
    assert len(again.days) == len(DEFAULT_DAYS)
    np.testing.assert_array_equal(again.days[5].tuning, WORLD.days[5].tuning)
    assert not np.array_equal(other.days[5].tuning, WORLD.days[5].tuning)
    assert set(np.unique(array_of())) >= {VENTRAL_6V, DORSAL_6V}
