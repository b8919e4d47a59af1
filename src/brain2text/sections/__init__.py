"""The typed sections of a run config, one per concern (data, model, augment, optim, train,
adapt, tta, criteria, watch, eval) and :class:`RunConfig`, which holds them: the model section
in :mod:`.encoder`, the training ones in :mod:`.training`, the rest in :mod:`.run`. Loading run
files, overrides and differences are in :mod:`brain2text.config`.
"""

from brain2text.sections.base import Section
from brain2text.sections.encoder import BIN_SECONDS, ModelConfig
from brain2text.sections.run import (
    RUNNABLE,
    AdaptConfig,
    CriteriaConfig,
    DataConfig,
    EvalConfig,
    FasterThanConfig,
    RunConfig,
    TtaConfig,
    WatchConfig,
    WordDecodingConfig,
    unrunnable,
)
from brain2text.sections.training import (
    AugmentConfig,
    OptimConfig,
    TimeMasksConfig,
    TrainConfig,
    onecycle_warmup_end,
    step_boundary,
)

__all__ = [
    "BIN_SECONDS",
    "RUNNABLE",
    "AdaptConfig",
    "AugmentConfig",
    "CriteriaConfig",
    "DataConfig",
    "EvalConfig",
    "FasterThanConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "Section",
    "TimeMasksConfig",
    "TrainConfig",
    "TtaConfig",
    "WatchConfig",
    "WordDecodingConfig",
    "onecycle_warmup_end",
    "step_boundary",
    "unrunnable",
]
