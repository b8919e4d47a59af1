"""Realistic synthetic speech-BCI recordings in the layout of the real ``competitionData``.

    from brain2text.synth import generate, dataset_stats
    generate(Path("data/synth"), days=8, train_per_day=60, test_per_day=15, holdout_per_day=20)
    print(dataset_stats(Path("data/synth")))

The generative model and every parameter are described in docs/synthetic-data.md.
"""

from .generate import generate
from .params import DEFAULT_PARAMS, SynthParams
from .schedule import DEFAULT_DAYS, HOLDOUT_DAYS, MOUTHED_DAYS
from .stats import dataset_stats

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_PARAMS",
    "HOLDOUT_DAYS",
    "MOUTHED_DAYS",
    "SynthParams",
    "dataset_stats",
    "generate",
]
